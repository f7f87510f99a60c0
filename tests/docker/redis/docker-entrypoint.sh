#!/bin/sh
# Mirror the official image: a bare `redis-server` (or `redis-server --flags`) gets protected
# mode off and listens on every interface of the container; a config file path is left alone.
set -eu
if [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" = redis-server ]; then
    case "${2:-}" in
        "" | -*)
            shift
            set -- redis-server --protected-mode no --bind 0.0.0.0 --dir /data "$@"
            ;;
    esac
fi
exec "$@"
