"""The bounded threaded HTTP server, attacked on loopback the way a hostile client would."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator, List

import pytest

from imdsrender.serving import BoundedHandler, BoundedServer

HALF_SENT = b"GET / HTTP/1.1\r\nHost: x\r\n"      # no blank line: the head never ends
FLOOD = 300
CAP = 16
TIMEOUT = 1.0


class _Hello(BoundedHandler):
    release = threading.Event()
    entered = threading.Semaphore(0)
    blocking = False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.blocking:
            self.entered.release()
            self.release.wait(10)
        _answer_ok(self)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet."""


def _answer_ok(handler: BaseHTTPRequestHandler) -> None:
    body = b"ok\n"
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


@pytest.fixture
def server() -> Iterator[BoundedServer]:
    srv = BoundedServer(("127.0.0.1", 0), _Hello, max_connections=CAP, timeout=TIMEOUT)
    srv.start("test-serving")
    try:
        yield srv
    finally:
        srv.stop()


def get_ok(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read()
    finally:
        conn.close()


def half_sent(port: int, count: int) -> List[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(HALF_SENT)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closed *sock* (EOF or reset) before *within* seconds."""
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def _eventually(condition: Callable[[], bool], within: float = 5.0) -> bool:
    """Poll *condition* for up to *within* seconds (threads finish just after the EOF)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_flood_of_half_sent_requests_stays_under_the_cap(server: BoundedServer) -> None:
    baseline = threading.active_count()
    peak = [0, 0]
    socks = []
    try:
        for sock in half_sent(server.port, FLOOD):
            socks.append(sock)
            peak[0] = max(peak[0], server.active_count())
            peak[1] = max(peak[1], threading.active_count() - baseline)
        assert 0 < peak[0] <= CAP
        assert peak[1] <= CAP + 1       # + a thread that was evicted and is exiting
        assert get_ok(server.port) == b"ok\n"
        # every half-sent request is closed: evicted at once or by the deadline
        assert all(closed_by_server(sock, TIMEOUT + 4) for sock in socks)
        assert _eventually(lambda: server.active_count() == 0)
    finally:
        for sock in socks:
            sock.close()


def test_the_same_flood_pins_a_thread_each_on_a_plain_server() -> None:
    """What the bounded server prevents (issue 13 item 6), shown on http.server itself."""
    class Plain(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def do_GET(self) -> None:  # noqa: N802
            _answer_ok(self)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            """Quiet."""

    plain = ThreadingHTTPServer(("127.0.0.1", 0), Plain, bind_and_activate=False)
    plain.daemon_threads = True
    plain.request_queue_size = 128
    plain.server_bind()
    plain.server_activate()
    thread = threading.Thread(target=plain.serve_forever, daemon=True)
    thread.start()
    baseline = threading.active_count()
    socks = half_sent(plain.server_address[1], 2 * CAP)
    try:
        get_ok(plain.server_address[1])
        assert threading.active_count() - baseline >= 2 * CAP
    finally:
        for sock in socks:
            sock.close()
        plain.shutdown()
        plain.server_close()


def _dripped_until_closed(sock: socket.socket, most: int) -> int:
    """Send one byte per recv timeout until the server closes; how many were sent."""
    for drips in range(most):
        try:
            sock.sendall(b"G")
            if sock.recv(1) == b"":
                return drips
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return drips
    return most


def test_a_request_dripped_byte_by_byte_is_closed_at_the_deadline(
        server: BoundedServer) -> None:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.settimeout(TIMEOUT / 4)
    try:
        assert _dripped_until_closed(sock, 40) < 40, "the server kept a dripping connection open"
    finally:
        sock.close()


def test_when_every_slot_is_busy_a_newcomer_is_closed_not_queued_forever() -> None:
    _Hello.blocking = True
    _Hello.release.clear()
    srv = BoundedServer(("127.0.0.1", 0), _Hello, max_connections=2, timeout=TIMEOUT)
    srv.start("test-serving-busy")
    answers: List[bytes] = []
    workers = [threading.Thread(target=lambda: answers.append(get_ok(srv.port)))
               for _ in range(2)]
    try:
        for worker in workers:
            worker.start()
        for _ in workers:                       # both requests are being answered
            assert _Hello.entered.acquire(timeout=10)
        newcomer = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        newcomer.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_by_server(newcomer, 5)
        newcomer.close()
        _Hello.release.set()
        for worker in workers:
            worker.join(10)
        assert answers == [b"ok\n", b"ok\n"]
    finally:
        _Hello.blocking = False
        _Hello.release.set()
        srv.stop()


def test_stop_frees_the_port_and_wakes_idle_connections() -> None:
    srv = BoundedServer(("127.0.0.1", 0), _Hello, timeout=60)
    srv.start("test-serving-stop")
    port = srv.port
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    get_ok(port)
    srv.stop()
    assert closed_by_server(idle, 5)
    idle.close()
    again = BoundedServer(("127.0.0.1", port), _Hello)
    again.server_close()


def test_accepted_sockets_have_tcp_nodelay(server: BoundedServer) -> None:
    seen: List[int] = []

    class Probe(_Hello):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            super().do_GET()

    srv = BoundedServer(("127.0.0.1", 0), Probe)
    srv.start("test-serving-nodelay")
    try:
        get_ok(srv.port)
    finally:
        srv.stop()
    assert seen and seen[0] != 0


def test_limits_must_make_sense() -> None:
    with pytest.raises(ValueError):
        BoundedServer(("127.0.0.1", 0), _Hello, max_connections=0)
    with pytest.raises(ValueError):
        BoundedServer(("127.0.0.1", 0), _Hello, timeout=0)
