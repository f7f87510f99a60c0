"""gunicorn settings for the Flask monitor; the deployment-specific ones come from the
environment.

Requests are I/O-bound (they wait on Airflow) and answered from one status cache per worker
process, so the default is one worker: Airflow then sees at most one round of calls per cache
TTL, and /metrics speaks for the whole service. The master restarts the worker if it dies.

The worker is gevent's: each connection waits in a greenlet of its own, and a connection
whose request headers have not arrived within ``keepalive`` seconds is closed. With threads
(gthread), a handful of clients that send one byte and then nothing hold every thread, and
/health stops answering (tests/monitor/test_monitor_slow_clients.py).

    FLASK_MONITOR_BIND         address to listen on (default adclick_contract.FLASK_MONITOR_BIND)
    FLASK_MONITOR_WORKERS      worker processes (default 1)
    FLASK_MONITOR_CONNECTIONS  connections one worker serves at once (default 1000)
    FLASK_MONITOR_PIDFILE      where the master writes its pid (default: none)
    FLASK_MONITOR_ACCESS_LOG   a line per request to this file, "-" for the log (default: none)
"""

import os

from adclick_contract import FLASK_MONITOR_BIND

bind = os.environ.get("FLASK_MONITOR_BIND") or FLASK_MONITOR_BIND
workers = int(os.environ.get("FLASK_MONITOR_WORKERS", "1"))
worker_class = "gevent"
worker_connections = int(os.environ.get("FLASK_MONITOR_CONNECTIONS", "1000"))
timeout = 30
graceful_timeout = 10
# Also the most a connection gets to send a request's headers (the gevent worker's bound).
keepalive = 5
# No access log by default: under load it is what the worker's threads queue on (each takes
# the log handler's lock and writes a line per request; ~30 % of a loaded worker's samples,
# bench/monitor_service.py --measure load). /metrics counts requests by route and status instead.
accesslog = os.environ.get("FLASK_MONITOR_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("FLASK_MONITOR_LOG_LEVEL", "info")
pidfile = os.environ.get("FLASK_MONITOR_PIDFILE") or None
proc_name = "flask-monitor"
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# every gunicorn on the machine would fight over; nothing here uses it.
control_socket_disable = True
# Heartbeat files on tmpfs: a slow disk (or a container's overlay) must not stall workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
