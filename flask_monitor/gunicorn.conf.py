"""gunicorn settings for the Flask monitor; every value can be overridden from the environment.

One worker process with threads by default: requests are I/O-bound and share one status
cache, so the whole service makes at most one Airflow call per cache TTL.
"""

import os

bind = os.environ.get("FLASK_MONITOR_BIND", "0.0.0.0:5000")
workers = int(os.environ.get("FLASK_MONITOR_WORKERS", "1"))
worker_class = "gthread"
threads = int(os.environ.get("FLASK_MONITOR_THREADS", "8"))
timeout = int(os.environ.get("FLASK_MONITOR_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("FLASK_MONITOR_LOG_LEVEL", "info")
pidfile = os.environ.get("FLASK_MONITOR_PIDFILE") or None
proc_name = "flask-monitor"
