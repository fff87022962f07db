"""The gunicorn worker of ``slatewise serve``: gthread with a read timeout, so stalled clients free threads.

gunicorn's gthread worker waits for a connection's first bytes in its poller,
but once a request has begun it reads the rest (headers and body) in a worker
thread with a blocking socket and no timeout: a handful of clients that send
part of a request and stop hold every thread, and the service stops answering.
:class:`TimeoutThreadWorker` gives the socket of every request a timeout of
``client_timeout_s`` (``serving.client_timeout_s``) once the thread has it, so a
read that waits longer fails: a stalled body is answered 408
(:func:`serving.http.read_body`), stalled headers close the connection, and the
thread serves others. The timeout is per read, so a client that keeps sending
a byte at a time within it still holds a thread: in front of untrusted clients
put a buffering proxy (see ``docs/serving.md``).
"""

from __future__ import annotations

from typing import Any

from gunicorn.workers.gthread import ThreadWorker


class TimeoutThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker whose request reads time out after :attr:`client_timeout_s` seconds."""

    client_timeout_s = 5.0

    def handle(self, conn: Any) -> Any:
        """Serve a connection as gthread does, with the read timeout set once the socket is blocking."""
        if not getattr(conn, "slatewise_timed", False):
            init = conn.init
            timeout = self.client_timeout_s

            def timed_init() -> None:  # gthread calls it in the thread, after making the socket blocking
                init()
                conn.sock.settimeout(timeout)

            conn.init = timed_init
            conn.slatewise_timed = True
        return super().handle(conn)


def worker_class(client_timeout_s: float) -> type[TimeoutThreadWorker]:
    """A :class:`TimeoutThreadWorker` whose reads time out after ``client_timeout_s`` seconds."""
    return type("TimeoutThreadWorker", (TimeoutThreadWorker,), {"client_timeout_s": float(client_timeout_s)})
