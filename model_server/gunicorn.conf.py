"""gunicorn settings for the model service; the deployment-specific ones come from the
environment.

The worker is gevent's, as the Flask monitor's (flask_monitor/gunicorn.conf.py): a
connection whose request headers have not arrived within ``keepalive`` seconds is closed, so
clients that send one byte and then nothing cannot hold the service. Each worker loads every
champion and follows promotions itself; predictions are CPU-bound, so more workers than
cores gain nothing.

    MODEL_SERVER_BIND         address to listen on (default 0.0.0.0:5002)
    MODEL_SERVER_WORKERS      worker processes (default 1)
    MODEL_SERVER_CONNECTIONS  connections one worker serves at once (default 1000)
    MODEL_SERVER_PIDFILE      where the master writes its pid (default: none)
    MODEL_SERVER_ACCESS_LOG   a line per request to this file, "-" for the log (default: none)
"""

import os

bind = os.environ.get("MODEL_SERVER_BIND", "0.0.0.0:5002")
workers = int(os.environ.get("MODEL_SERVER_WORKERS", "1"))
worker_class = "model_server.worker.ModelServerWorker"
worker_connections = int(os.environ.get("MODEL_SERVER_CONNECTIONS", "1000"))
timeout = 30
graceful_timeout = 10
# Also the most a connection gets to send a request's headers (the gevent worker's bound).
keepalive = 5
accesslog = os.environ.get("MODEL_SERVER_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("MODEL_SERVER_LOG_LEVEL", "info")
pidfile = os.environ.get("MODEL_SERVER_PIDFILE") or None
proc_name = "model-server"
control_socket_disable = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
