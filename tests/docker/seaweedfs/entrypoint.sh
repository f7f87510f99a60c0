#!/bin/sh
# The upstream image's entrypoint, for the subcommands the stack uses: `server` gets the data
# directory and volume defaults upstream adds; root drops to the seaweed user first (upstream
# uses su-exec, Debian's setpriv does the same); anything else runs as `weed ARGS`.
set -e
if [ "$(id -u)" = 0 ]; then
    chown seaweed:seaweed /data
    exec setpriv --reuid=1000 --regid=1000 --init-groups "$0" "$@"
fi
case "$1" in
server)
    shift
    exec /usr/bin/weed -logtostderr=true server -dir=/data -volume.max=0 \
        -master.volumeSizeLimitMB=1024 "$@"
    ;;
mini)
    shift
    exec /usr/bin/weed -logtostderr=true mini "$@"
    ;;
*)
    exec /usr/bin/weed "$@"
    ;;
esac
