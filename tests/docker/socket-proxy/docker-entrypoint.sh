#!/bin/sh
# Render the HAProxy template (only the bind address is substituted; everything else is read
# from the environment by HAProxy itself at run time) and run HAProxy in the foreground.
set -eu
case "$(echo "${DISABLE_IPV6:-0}" | tr '[:upper:]' '[:lower:]')" in
    1 | true | yes) bind=":2375" ;;
    *) bind="[::]:2375 v4v6" ;;
esac
sed "s/\${BIND_CONFIG}/$bind/g" /usr/local/etc/haproxy/haproxy.cfg.template >/tmp/haproxy.cfg

if [ "${1#-}" != "$1" ]; then
    set -- haproxy "$@"
fi
if [ "$1" = haproxy ]; then
    shift
    # -W: master-worker mode, -db: stay in the foreground.
    set -- haproxy -W -db "$@"
fi
exec "$@"
