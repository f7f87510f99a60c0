"""gunicorn's gevent worker, with real threads, queues and selectors for the champion poller.

Each connection still waits for its headers in a greenlet, for at most ``keepalive`` seconds
(slow clients cannot hold the service). Threads and selectors are left as they are: the
poller reads the registries, and on an object store s3fs runs its own asyncio loop in a
thread of its own. With threads turned into greenlets, that loop and the poller would share
one OS thread, and s3fs refuses to wait on its loop from there ("Calling sync() from within a
running loop"); with gevent's selector and queues, the loop's thread and its resolver's
executor have no hub to wait on.
"""

from __future__ import annotations

import socket
from typing import Any

from gevent import monkey
from gunicorn.workers.ggevent import GeventWorker


class ModelServerWorker(GeventWorker):
    sockets: list[Any]  # gunicorn's listening sockets, then gevent's

    def patch(self) -> None:
        monkey.patch_all(thread=False, select=False, queue=False)
        # As gunicorn's own: the listening sockets again, as gevent's.
        self.sockets = [
            socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach())
            for s in self.sockets
        ]
