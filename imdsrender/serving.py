"""Threaded HTTP server scaffolding that a hostile client cannot exhaust.

One home for what the IMDS emulator and the metrics status server both need
from ``http.server``: a thread per connection, but with bounds.  A plain
``ThreadingHTTPServer`` gives every connection a thread forever, so 1,000
half-sent requests pin 1,000 threads and a pids limit (systemd ``TasksMax``)
then kills whatever else in the process wants a thread.  Here:

- at most ``max_connections`` connections (and so handler threads) at once.
  When full, the connection that has waited longest for request bytes (idle
  keep-alive or half-sent) is closed to make room, so a flood of stalled
  clients cannot lock out a real one; if every slot is busy answering, the
  newcomer is closed instead;
- a connection that has not delivered a complete request head within
  ``timeout`` seconds of becoming idle is closed (checked every
  ``timeout / 4``), however slowly it drips bytes; the same ``timeout`` is
  the socket timeout, so a client that stops reading cannot pin a thread
  on a send either;
- daemon handler threads, ``TCP_NODELAY`` on every accepted socket, no DNS
  lookup at bind, and ``stop()`` that returns promptly and frees the port.

Handlers derive from :class:`BoundedHandler` and call ``working()`` once
they hold a complete request (``parse_request`` does it for http.server's
own parser), so a slow answer is never mistaken for a stalled client.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, Optional, Tuple

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS = 64
DEFAULT_TIMEOUT = 5.0
_SLOT_WAIT = 1.0        # how long the accept loop waits for an evicted connection to go


class _Connection:
    """Book-keeping for one open connection; guarded by the server's lock."""

    __slots__ = ("idle_since", "busy", "closing")

    def __init__(self, now: float) -> None:
        self.idle_since = now
        self.busy = False
        self.closing = False


class BoundedServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer with a connection cap and an idle/half-sent deadline.

    :param address: ``(host, port)``; port 0 picks a free one.  An address
        with ``:`` binds IPv6.
    :param handler: a :class:`BoundedHandler` subclass.
    :param max_connections: connections (and handler threads) open at once.
    :param timeout: seconds a connection may wait for a complete request head.
    :param logger: where unexpected handler errors are logged.
    """

    daemon_threads = True
    block_on_close = False          # stop() must not wait for idle keep-alive clients
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], handler: type, *,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 timeout: float = DEFAULT_TIMEOUT,
                 logger: Optional[logging.Logger] = None) -> None:
        if max_connections < 1 or not timeout > 0:
            raise ValueError("max_connections must be >= 1 and timeout > 0")
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.max_connections = max_connections
        self.connection_timeout = timeout
        self._log = logger or log
        self._conns: Dict[socket.socket, _Connection] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread: Optional[threading.Thread] = None
        super().__init__(address, handler)

    # -- lifecycle

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self, name: str) -> BoundedServer:
        """Serve in a daemon thread called *name*."""
        if self._thread is None:
            poll = min(0.5, self.connection_timeout / 4)
            self._thread = threading.Thread(target=self.serve_forever,
                                            kwargs={"poll_interval": poll},
                                            name=name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake every handler blocked on a read, free the port."""
        if self._thread is not None:
            self._shutdown_now()
            self._thread.join()
            self._thread = None
        self.close_connections()
        self.server_close()

    def _shutdown_now(self) -> None:
        """shutdown(), without waiting out the accept loop's poll interval.

        The loop only sees the stop flag when select() returns, so connect
        until it has: tests start and stop hundreds of servers.
        """
        stopper = threading.Thread(target=self.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.socket(self.address_family) as sock:
                sock.settimeout(0.1)
                sock.connect(self.server_address[:2])
            stopper.join(0.01)

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn() lookup, which can stall on DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    # -- connections

    def active_count(self) -> int:
        """Connections open now (idle keep-alive ones included)."""
        with self._lock:
            return len(self._conns)

    def mark(self, sock: socket.socket, busy: bool) -> None:
        """A handler holds a complete request (busy) or waits for the next one."""
        with self._lock:
            conn = self._conns.get(sock)
            if conn is not None:
                conn.busy = busy
                if not busy:
                    conn.idle_since = time.monotonic()

    def close_connections(self) -> None:
        """Wake handler threads blocked on their sockets."""
        with self._lock:
            socks = list(self._conns)
        for sock in socks:
            _hang_up(sock)

    def process_request(self, request: object, client_address: object) -> None:
        """Take a slot (evicting the longest-idle connection if full), then a thread."""
        assert isinstance(request, socket.socket)
        if not self._take_slot():
            self._log.debug("closing connection from %s: %d busy", client_address,
                            self.max_connections)
            self.shutdown_request(request)
            return
        with self._lock:
            self._conns[request] = _Connection(time.monotonic())
        try:
            super().process_request(request, client_address)  # type: ignore[arg-type]
        except RuntimeError as exc:  # "can't start new thread": a pids limit (TasksMax)
            self._release(request)
            self._log.warning("closing connection from %s: cannot start a thread for it "
                              "(%s)", client_address, exc)
            self.shutdown_request(request)
        except BaseException:
            self._release(request)
            raise

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            self._release(request)

    def _release(self, request: object) -> None:
        with self._lock:
            known = self._conns.pop(request, None)  # type: ignore[call-overload]
        if known is not None:
            self._slots.release()

    def _take_slot(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        victim = self._longest_idle()
        if victim is None:
            return False
        _hang_up(victim)
        return self._slots.acquire(timeout=_SLOT_WAIT)

    def _longest_idle(self) -> Optional[socket.socket]:
        with self._lock:
            waiting = [(c.idle_since, s) for s, c in self._conns.items()
                       if not c.busy and not c.closing]
            if not waiting:
                return None
            sock = min(waiting, key=lambda pair: pair[0])[1]
            self._conns[sock].closing = True
            return sock

    def service_actions(self) -> None:
        """Called by the accept loop every poll: close connections past their deadline."""
        deadline = time.monotonic() - self.connection_timeout
        with self._lock:
            stale = [s for s, c in self._conns.items()
                     if not c.busy and not c.closing and c.idle_since < deadline]
            for sock in stale:
                self._conns[sock].closing = True
        for sock in stale:
            _hang_up(sock)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that went away is routine; anything else is a bug worth a warning."""
        if isinstance(sys.exc_info()[1], OSError):
            self._log.debug("connection from %s ended: %s", client_address, sys.exc_info()[1])
            return
        self._log.warning("error serving %s", client_address, exc_info=True)


def _hang_up(sock: socket.socket) -> None:
    """Make the handler's blocked read return end-of-stream; its thread then closes."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class BoundedHandler(BaseHTTPRequestHandler):
    """Base handler for :class:`BoundedServer`: HTTP/1.1, TCP_NODELAY, deadlines."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # TCP_NODELAY on every accepted socket
    server: BoundedServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.connection_timeout)

    def working(self) -> None:
        """A complete request is in hand: the idle deadline no longer applies."""
        self.server.mark(self.connection, True)

    def waiting(self) -> None:
        """Back to reading: the idle deadline starts now."""
        self.server.mark(self.connection, False)

    def parse_request(self) -> bool:
        parsed = super().parse_request()
        if parsed:
            self.working()
        return parsed

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.waiting()
