"""Request deadlines enforced at the socket: no read waits past the time left.

urllib3's read timeout bounds each ``recv()``, not a request: a server
dripping its status line and headers one byte every half second never
trips it, and the header read happens before the client sees a response
it could time.  Here every read of a connection first shrinks the socket's
timeout to what is left of the current request's deadline, so a request
ends by its deadline however the bytes arrive, headers included.

The deadline is per thread (:func:`deadline_scope`): urllib3 runs a request
on the caller's thread, and a pooled connection serves one request at a
time.  Outside a scope the connection behaves as urllib3 made it.
"""

from __future__ import annotations

import functools
import io
import socket
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

_current = threading.local()


@contextmanager
def deadline_scope(clock: Callable[[], float], deadline: float) -> Iterator[None]:
    """Reads on this thread end by *deadline* (on *clock*) while the block runs."""
    _current.until = (clock, deadline)
    try:
        yield
    finally:
        _current.until = None


def time_left() -> Optional[float]:
    """Seconds left of this thread's deadline, None outside a scope."""
    until = getattr(_current, "until", None)
    if until is None:
        return None
    clock, deadline = until
    return float(deadline - clock())


class _DeadlineReader(socket.SocketIO):
    """The raw reader under http.client's response: each read waits at most the time left."""

    def __init__(self, owner: DeadlineSocket) -> None:
        super().__init__(owner.raw, "rb")
        self._owner = owner
        # What socket.makefile() does: the socket really closes only once
        # this reader is closed too (http.client closes the connection
        # before the body of a "Connection: close" answer is read).
        owner.raw._io_refs += 1  # type: ignore[attr-defined]

    def readinto(self, buffer: Any) -> Optional[int]:
        left = time_left()
        if left is not None:
            if left <= 0:
                raise socket.timeout("request deadline reached")
            base = self._owner.base_timeout
            self._owner.raw.settimeout(left if base is None else min(base, left))
        return super().readinto(buffer)


class DeadlineSocket:
    """A connected socket whose binary reader honours :func:`deadline_scope`.

    Everything else (send, close, fileno for urllib3's liveness check) is the
    socket's own.
    """

    def __init__(self, raw: socket.socket) -> None:
        self.raw = raw
        self.base_timeout = raw.gettimeout()

    def settimeout(self, value: Optional[float]) -> None:
        """urllib3 sets the read timeout per request: remember it as the per-read cap."""
        self.base_timeout = value
        self.raw.settimeout(value)

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if mode != "rb":
            return self.raw.makefile(mode, *args, **kwargs)  # type: ignore[call-overload]
        return io.BufferedReader(_DeadlineReader(self))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@functools.cache
def _pool_class() -> Any:
    """An HTTP connection pool whose connections read under the deadline (built once)."""
    from urllib3.connection import HTTPConnection
    from urllib3.connectionpool import HTTPConnectionPool

    class DeadlineConnection(HTTPConnection):  # type: ignore[misc]
        def connect(self) -> None:
            super().connect()
            self.sock = DeadlineSocket(self.sock)

    class DeadlinePool(HTTPConnectionPool):  # type: ignore[misc]
        ConnectionCls = DeadlineConnection

    return DeadlinePool


def deadline_pool_manager(**kwargs: Any) -> Any:
    """A urllib3 PoolManager (*kwargs* as urllib3 takes them) whose http:// reads
    end by the deadline of :func:`deadline_scope`."""
    import urllib3

    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = dict(manager.pool_classes_by_scheme, http=_pool_class())
    return manager
