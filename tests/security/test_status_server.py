"""Issue 13 item 6: the status server cannot be flooded into starving the poll loop.

The attack: 1,000 half-sent requests to ``--metrics-addr`` pinned 1,002
threads on a plain ThreadingHTTPServer, and under a ``TasksMax``-like pids
limit the poll loop died with ``RuntimeError: can't start new thread``.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Iterator, List

import pytest

from imdsrender.fetch import Plan, fetch
from imdsrender.metrics import Metrics, StatusServer
from imdsrender.model import FetchLimits
from tests.metrics.helpers import FakeSource, Switch, get
from tests.test_serving import HALF_SENT, _eventually, closed_by_server

FLOOD = 1_000
CAP = 16
TIMEOUT = 1.0


@pytest.fixture
def status() -> Iterator[StatusServer]:
    server = StatusServer("127.0.0.1:0", Metrics(), Switch(), min_interval=0.0,
                          max_connections=CAP, timeout=TIMEOUT).start()
    yield server
    server.stop()


def test_a_flood_of_half_sent_requests_neither_pins_threads_nor_stops_a_poll(
        status: StatusServer) -> None:
    baseline = threading.active_count()
    peak = 0
    socks: List[socket.socket] = []
    try:
        for _ in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", status.port), timeout=10)
            sock.sendall(HALF_SENT)
            socks.append(sock)
            peak = max(peak, threading.active_count() - baseline)
        assert peak <= CAP + 1  # + one evicted thread on its way out
        assert get(status, "/metrics")[0] == 200  # answers during the flood
        # a poll during the flood: its fetch threads start and finish
        snapshot = fetch(Plan.of([["/meta-data/a", "/meta-data/b"]]),
                         FakeSource({"/meta-data/a": b"1", "/meta-data/b": b"2"}),
                         FetchLimits(concurrency=8))
        assert snapshot.values == {"/meta-data/a": b"1", "/meta-data/b": b"2"}
        # every half-sent request is closed: evicted at once or by the deadline
        assert all(closed_by_server(sock, TIMEOUT + 4) for sock in socks)
    finally:
        for sock in socks:
            sock.close()


def test_a_thread_that_cannot_start_costs_one_connection_not_the_server(
        status: StatusServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Under a pids limit ``Thread.start`` raises; the server closes that one connection."""
    real_start = threading.Thread.start
    refused = threading.Event()

    def start(thread: threading.Thread) -> None:
        target = getattr(thread, "_target", None)  # the handler thread of one connection
        if getattr(target, "__name__", "") == "process_request_thread" and not refused.is_set():
            refused.set()
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with caplog.at_level(logging.WARNING, logger="imdsrender.metrics.server"):
        victim = socket.create_connection(("127.0.0.1", status.port), timeout=10)
        victim.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_by_server(victim, 5)
        victim.close()
        assert get(status, "/metrics")[0] == 200
    assert refused.is_set()
    warnings = [r for r in caplog.records if "cannot start a thread" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].exc_info is None
    assert _eventually(lambda: status._server.active_count() == 0)


def test_a_fetch_that_cannot_start_a_thread_fails_the_poll_not_the_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The poll loop goes on after an Error; a bare RuntimeError used to end it."""
    from imdsrender.errors import Error

    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        if thread.name.startswith("imds-fetch"):
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    with pytest.raises(Error, match="cannot start a fetch thread .*; raise the service's "):
        fetch(Plan.of([["/meta-data/a"]]), FakeSource({"/meta-data/a": b"1"}))
