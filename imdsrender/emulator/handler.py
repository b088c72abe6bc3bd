"""The emulator's connection handler and server: framing, faults on the wire.

Each response (status line, headers and body) is written with one
``sendall`` on a ``TCP_NODELAY`` socket: http.server's usual split writes
make keep-alive clients stall on delayed ACKs (~40 ms a request).  Threads,
deadlines and the connection cap come from :mod:`imdsrender.serving`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from ..serving import BoundedHandler, BoundedServer
from .protocol import BadRequest, Request, error, head, read_request

if TYPE_CHECKING:  # pragma: no cover
    from .core import Emulator, Reply

log = logging.getLogger("imdsrender.emulator")

SHORT_BODY_EXTRA = 16   # bytes a short_body fault claims beyond what it sends


class Handler(BoundedHandler):
    """Reads requests and writes each answer in one sendall (see module docstring)."""

    server: Server
    _in_flight = False

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.waiting()
        try:
            request = read_request(self.rfile)
        except BadRequest as exc:
            answer = error(exc.status)
            with contextlib.suppress(OSError):
                self._send(head(answer, length=len(answer.body), close=True, http10=False)
                           + answer.body)
            return
        except OSError:
            return
        if request is None:
            return
        self.working()
        emulator = self.server.emulator
        emulator._begin()
        self._in_flight = True
        started = time.monotonic()
        reply: Optional[Reply] = None
        try:
            reply = emulator._handle(request)
            self._deliver(request, reply, emulator._sleep)
        except OSError:
            self.close_connection = True
        finally:
            self._finished()
            if reply is not None:
                emulator._log_access(request, reply, time.monotonic() - started)

    def _finished(self) -> None:
        """Leave the in-flight count once, before the client can see the last byte.

        Otherwise a client reading its answer could still find its own
        request counted as in flight.
        """
        if self._in_flight:
            self._in_flight = False
            self.server.emulator._end()

    def _deliver(self, request: Request, reply: Reply, sleep: Callable[[float], None]) -> None:
        if reply.wait > 0:
            sleep(reply.wait)
        fault = reply.fault
        if reply.answer is None:
            self._finished()
            if fault is not None and fault.hold:
                self.server.emulator._hold()
                self._hang_up()
            else:
                self._abort()
            return
        body = reply.answer.body
        announced = request.wants_close() or bool(fault and (fault.close or fault.http10))
        # short bodies and resets look like a crash mid-answer: not announced
        closing = announced or bool(fault and (fault.short_body or fault.reset))
        length = len(body) + (SHORT_BODY_EXTRA if fault and fault.short_body else 0)
        framed = head(reply.answer, length=length, close=announced,
                      http10=bool(fault and fault.http10))
        if request.method == "HEAD":
            body = b""
        if fault is not None and fault.reset:
            body = body[:len(body) // 2]
        if fault is not None and fault.drip is not None:
            self._drip(framed, body, fault.drip, sleep)
        else:
            self._finished()
            self._send(framed + body)
        if fault is not None and fault.reset:
            self._abort()
        self.close_connection = closing

    def _drip(self, framed: bytes, body: bytes, every: float,
              sleep: Callable[[float], None]) -> None:
        """The head at once, then the body one byte every *every* seconds."""
        self._send(framed)
        for i in range(len(body)):
            sleep(every)
            if i == len(body) - 1:
                self._finished()
            self._send(body[i:i + 1])
        self._finished()

    def _send(self, data: bytes) -> None:
        self.connection.sendall(data)

    def _hang_up(self) -> None:
        """Close without answering (FIN): the end of a held request."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _abort(self) -> None:
        """Close with a TCP RST: linger 0, and no FIN from a shutdown() first."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.rfile.close()          # drop the makefile reference so close() is real
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """No stderr access log from http.server (``--log`` has its own)."""


class Server(BoundedServer):
    """The bounded server, plus the emulator's own ``max_connections`` refusal."""

    def __init__(self, address: Tuple[str, int], emulator: Emulator, *,
                 max_threads: int, timeout: float) -> None:
        self.emulator = emulator
        super().__init__(address, Handler, max_connections=max_threads, timeout=timeout,
                         logger=log)

    def verify_request(self, request: object, client_address: object) -> bool:
        """Refuse beyond ``emulator.max_connections`` (a test knob, unlike the thread cap)."""
        limit: Optional[int] = self.emulator.max_connections
        if limit is not None and self.active_count() >= limit:
            log.debug("refusing connection from %s: %d open", client_address, limit)
            return False
        return True
