"""The per-request deadline enforced at the socket (imdsrender.imds.deadline).

Behaviour pinned here: outside a scope nothing changes; inside one, every
read first shrinks the socket timeout to what is left of the deadline (never
above urllib3's own read timeout), a read past the deadline fails with the
documented text, and a urllib3 request whose server never answers its
headers ends by the deadline rather than by the (long) read timeout.
No timing assertions: clocks are fake, and the one real request checks the
failure kind, not its duration.
"""

from __future__ import annotations

import socket
import threading

import pytest
import urllib3

from imdsrender.imds.deadline import (
    DeadlineSocket,
    deadline_pool_manager,
    deadline_scope,
    time_left,
)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_time_left_is_none_outside_a_scope_and_counts_down_inside():
    clock = Clock(100.0)
    assert time_left() is None
    with deadline_scope(clock, 104.5):
        assert time_left() == 4.5
        assert isinstance(time_left(), float)
        clock.now = 106.0
        assert time_left() == -1.5
    assert time_left() is None


def test_scope_ends_even_when_the_block_raises():
    with pytest.raises(RuntimeError), deadline_scope(Clock(), 200.0):
        raise RuntimeError("boom")
    assert time_left() is None


def test_scope_is_per_thread():
    seen = []
    with deadline_scope(Clock(0.0), 10.0):
        t = threading.Thread(target=lambda: seen.append(time_left()))
        t.start()
        t.join()
        assert time_left() == 10.0
    assert seen == [None]


def test_socket_remembers_urllib3s_timeout_as_the_cap(pair):
    raw, _ = pair
    raw.settimeout(7.0)
    sock = DeadlineSocket(raw)
    assert sock.base_timeout == 7.0
    sock.settimeout(3.0)
    assert sock.base_timeout == 3.0 and raw.gettimeout() == 3.0
    sock.settimeout(None)
    assert sock.base_timeout is None and raw.gettimeout() is None
    # everything else is the socket's own
    assert sock.fileno() == raw.fileno()


@pytest.mark.parametrize(
    "base, left, expected",
    [(None, 2.5, 2.5), (5.0, 2.5, 2.5), (1.0, 2.5, 1.0), (None, 0.5, 0.5)],
)
def test_each_read_waits_at_most_the_time_left(pair, base, left, expected):
    raw, peer = pair
    raw.settimeout(base)
    sock = DeadlineSocket(raw)
    reader = sock.makefile("rb")
    peer.sendall(b"HTTP/1.1 200 OK\r\n")
    with deadline_scope(Clock(0.0), left):
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
    assert raw.gettimeout() == expected
    reader.close()


def test_reads_outside_a_scope_keep_urllib3s_timeout(pair):
    raw, peer = pair
    raw.settimeout(9.0)
    reader = DeadlineSocket(raw).makefile("rb")
    peer.sendall(b"abc")
    assert reader.read(3) == b"abc"
    assert raw.gettimeout() == 9.0
    reader.close()


@pytest.mark.parametrize("left", [0.0, -1.0])
def test_a_read_at_or_past_the_deadline_fails_without_waiting(pair, left):
    raw, peer = pair
    raw.settimeout(None)  # a real wait would hang the test
    reader = DeadlineSocket(raw).makefile("rb")
    peer.sendall(b"data")  # even with bytes ready, the deadline wins
    late = pytest.raises(socket.timeout, match="^request deadline reached$")
    with deadline_scope(Clock(50.0), 50.0 + left), late:
        reader.read(1)
    reader.close()


def test_text_files_are_the_sockets_own(pair):
    raw, peer = pair
    text = DeadlineSocket(raw).makefile("r")
    peer.sendall(b"line\n")
    assert text.readline() == "line\n"
    text.close()


def test_text_and_write_files_get_every_argument(pair):
    raw, _ = pair
    sock = DeadlineSocket(raw)
    unbuffered = sock.makefile("wb", 0)
    assert isinstance(unbuffered, socket.SocketIO) and unbuffered.mode == "wb"
    text = sock.makefile("w", encoding="latin-1")
    assert (text.mode, text.encoding) == ("w", "latin-1")
    unbuffered.close()
    text.close()


def test_the_socket_stays_open_until_the_reader_is_closed(pair):
    """http.client closes the connection before a "Connection: close" body is read."""
    raw, peer = pair
    reader = DeadlineSocket(raw).makefile("rb")
    raw.close()
    peer.sendall(b"body")
    assert reader.read(4) == b"body"
    reader.close()
    assert raw.fileno() == -1


@pytest.fixture
def silent_server():
    """Accepts, reads the request, never answers (a header read would hang)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    conns = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conns.append(conn)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()
    for c in conns:
        c.close()


def test_a_request_whose_headers_never_come_ends_by_the_deadline(silent_server):
    manager = deadline_pool_manager(retries=False, timeout=urllib3.Timeout(connect=5, read=600))
    clock = Clock(0.0)
    url = f"http://127.0.0.1:{silent_server}/latest"
    # The read timeout of 600 s is capped to the 0.2 s left: a timeout.
    timed_out = pytest.raises(urllib3.exceptions.ReadTimeoutError)
    with deadline_scope(clock, 0.2), timed_out:
        manager.request("GET", url)
    manager.clear()


def test_pool_manager_takes_urllib3s_arguments_and_only_wraps_http():
    manager = deadline_pool_manager(maxsize=3, headers={"X-A": "1"})
    pool = manager.connection_from_url("http://127.0.0.1:9/")
    assert pool.ConnectionCls.__name__ == "DeadlineConnection"
    assert pool.pool.maxsize == 3
    assert manager.headers == {"X-A": "1"}
    https = manager.connection_from_url("https://127.0.0.1:9/")
    assert https.ConnectionCls.__name__ != "DeadlineConnection"
    # built once: every manager shares the pool class
    assert type(pool) is type(deadline_pool_manager().connection_from_url("http://127.0.0.1:9/"))
