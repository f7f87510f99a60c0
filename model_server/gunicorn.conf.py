"""gunicorn settings for the model service; the deployment-specific ones come from the
environment.

The worker is gevent's, as the Flask monitor's (flask_monitor/gunicorn.conf.py): a
connection whose request headers have not arrived within ``keepalive`` seconds is closed, so
clients that send one byte and then nothing cannot hold the service. Each worker loads every
champion and follows promotions itself; predictions are CPU-bound, so more workers than
cores gain nothing.

MODEL_SERVER_BIND, _WORKERS, _CONNECTIONS and _LOG_LEVEL default to
model_server.config.GUNICORN_DEFAULTS; MODEL_SERVER_PIDFILE and _ACCESS_LOG to none
(docs/configuration.md lists them all).
"""

import os

from model_server.config import GUNICORN_DEFAULTS


def _setting(key: str) -> str:
    return os.environ.get(f"MODEL_SERVER_{key}") or str(GUNICORN_DEFAULTS[key])


bind = _setting("BIND")
workers = int(_setting("WORKERS"))
worker_class = "model_server.worker.ModelServerWorker"
worker_connections = int(_setting("CONNECTIONS"))
timeout = 30
graceful_timeout = 10
# Also the most a connection gets to send a request's headers (the gevent worker's bound).
keepalive = 5
accesslog = os.environ.get("MODEL_SERVER_ACCESS_LOG") or None
errorlog = "-"
loglevel = _setting("LOG_LEVEL")
pidfile = os.environ.get("MODEL_SERVER_PIDFILE") or None
proc_name = "model-server"
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
