"""imds.probe: how far a request got, against raw loopback sockets that misbehave."""

from __future__ import annotations

import socket
import struct
import threading
from typing import Iterator

import pytest

from imdsrender.imds.probe import BAD_ANSWER, REFUSED, RESET, TIMEOUT, Prober


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket that listens (the kernel completes connects) but never reads."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def answer_once(sock: socket.socket, reply: bytes, reset: bool = False) -> threading.Thread:
    def serve() -> None:
        conn, _ = sock.accept()
        conn.recv(4096)
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            conn.sendall(reply)
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_connected_but_never_answered_is_a_timeout_not_a_refusal(listener: socket.socket) -> None:
    prober = Prober(url(listener), timeout=0.2)
    assert prober.connect().ok
    seen = prober.token(60)
    assert seen.outcome == TIMEOUT
    assert "connected, sent PUT" in seen.detail
    assert seen.attempts == 1  # a timeout is not retried: it is the diagnosis


def test_nothing_listening_is_refused(listener: socket.socket) -> None:
    address = url(listener)
    listener.close()
    seen = Prober(address, timeout=0.2).connect()
    assert seen.outcome == REFUSED and not seen.ok


def test_garbage_is_a_bad_answer(listener: socket.socket) -> None:
    answer_once(listener, b"SSH-2.0-OpenSSH_9.6\r\n")
    seen = Prober(url(listener), timeout=2).request("GET", "/latest/meta-data/")
    assert seen.outcome == BAD_ANSWER


def test_reset_is_retried_then_reported(listener: socket.socket) -> None:
    threads = [answer_once(listener, b"", reset=True) for _ in range(3)]
    seen = Prober(url(listener), timeout=2).get("/meta-data/instance-id", None)
    assert seen.outcome == RESET and seen.attempts == 3
    for thread in threads:
        thread.join(5)


def test_an_answer_carries_status_body_and_headers(listener: socket.socket) -> None:
    answer_once(listener, b"HTTP/1.1 200 OK\r\nX-aws-ec2-metadata-token-ttl-seconds: 2\r\n"
                          b"Content-Length: 3\r\n\r\nabc")
    seen = Prober(url(listener), timeout=2).token(21600)
    assert (seen.ok, seen.body, seen.headers["x-aws-ec2-metadata-token-ttl-seconds"]) == (
        True, b"abc", "2")
