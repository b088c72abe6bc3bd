"""metrics.server: /metrics /health /ready /ready/detailed over real HTTP."""

from __future__ import annotations

import errno
import json
import socket
from typing import Tuple

import pytest

from imdsrender.emulator import Emulator
from imdsrender.errors import UsageError
from imdsrender.metrics import (
    Metrics,
    Recorder,
    StatusServer,
    start_status_server,
)
from imdsrender.model import ImdsSettings, Outcome
from imdsrender.source import CachedSource
from tests.helpers import metric, parse_metrics
from tests.metrics.helpers import SECRET_PATH, FakeSource, Switch, get, scrape

# --- status server -----------------------------------------------------------------


def test_health_and_metrics_over_http(served) -> None:
    server, metrics, _ = served
    metrics.request("get", SECRET_PATH, 200, 0.01)
    assert get(server, "/health") == (200, "text/plain; charset=utf-8", b"ok\n")
    status, ctype, body = get(server, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=")
    assert metric(parse_metrics(body.decode()), "confd_backend_request_total", operation="get",
                  category="meta-data", code="200") == 1
    assert get(server, "/nope")[0] == 404


def test_health_is_the_cached_imds_check_as_in_confd(served) -> None:
    server, metrics, switch = served
    switch.up = False
    assert get(server, "/health") == (503, "text/plain; charset=utf-8",
                                      b"not ready: IMDS down\n")
    assert metric(scrape(metrics), "confd_backend_healthy") == 0
    switch.up = True
    assert get(server, "/health") == (200, "text/plain; charset=utf-8", b"ok\n")


def test_health_reuses_a_fresh_check() -> None:
    switch = Switch()
    with StatusServer("127.0.0.1:0", Metrics(), switch, min_interval=60.0) as server:
        assert get(server, "/ready")[0] == 200
        switch.up = False
        assert get(server, "/health")[0] == 200  # the /ready result, not a new IMDS request
    assert switch.calls == 1


def test_ready_follows_the_health_check(served) -> None:
    server, metrics, switch = served
    assert get(server, "/ready") == (200, "text/plain; charset=utf-8", b"ok\n")
    assert metric(scrape(metrics), "confd_backend_healthy") == 1
    switch.up = False
    assert get(server, "/ready") == (503, "text/plain; charset=utf-8", b"not ready: IMDS down\n")
    assert metric(scrape(metrics), "confd_backend_healthy") == 0
    switch.up = True
    assert get(server, "/ready")[0] == 200


def test_ready_detailed_json_shape(served) -> None:
    server, metrics, switch = served
    cache = CachedSource(FakeSource({"/a": b"1"}), 60.0)
    cache.get("/a")
    cache.get("/a")
    metrics.run_finished([Outcome("/etc/app.conf", "written")], 0.1, cache=cache)
    status, ctype, body = get(server, "/ready/detailed")
    assert (status, ctype) == (200, "application/json")
    report = json.loads(body)
    assert sorted(report) == ["checked_at", "details", "duration_ms", "healthy", "message"]
    assert report["healthy"] is True and report["message"] == "IMDS issued a token"
    assert report["checked_at"] == "2024-05-01T08:31:02.250Z"
    assert isinstance(report["duration_ms"], float) and report["duration_ms"] >= 0
    details = report["details"]
    assert {k: details[k] for k in ("cache_entries", "cache_ttl", "cache_hits", "cache_misses",
                                    "resources")} == {
        "cache_entries": 1, "cache_ttl": 60.0, "cache_hits": 1, "cache_misses": 1,
        "resources": {"/etc/app.conf": "written"}}
    switch.up = False
    status, _, body = get(server, "/ready/detailed")
    assert status == 503
    assert json.loads(body)["healthy"] is False
    assert json.loads(body)["message"] == "IMDS down"


def test_checks_are_reused_within_min_interval() -> None:
    now = [0.0]
    switch = Switch()
    server = StatusServer("127.0.0.1:0", Metrics(), switch, min_interval=5.0,
                          clock=lambda: now[0])
    with server:
        assert get(server, "/ready")[0] == 200
        switch.up = False
        assert get(server, "/ready")[0] == 200  # within 5 s: the last answer stands
        assert switch.calls == 1
        now[0] = 5.0
        assert get(server, "/ready")[0] == 503
        assert switch.calls == 2


def test_a_crashing_check_answers_503() -> None:
    def boom() -> Tuple[bool, str]:
        raise RuntimeError("bug")

    with StatusServer("127.0.0.1:0", Metrics(), boom, min_interval=0.0) as server:
        assert get(server, "/ready") == (503, "text/plain; charset=utf-8",
                                         b"not ready: health check failed: bug\n")


def test_binds_only_the_address_given(served) -> None:
    server, _, _ = served
    assert server._server.server_address[0] == "127.0.0.1"
    probe = socket.socket()
    try:
        probe.settimeout(5)
        # 127.0.0.2 is this machine too, but not the address we were given.
        assert probe.connect_ex(("127.0.0.2", server.port)) == errno.ECONNREFUSED
    finally:
        probe.close()


def test_stop_releases_the_port() -> None:
    server = StatusServer("127.0.0.1:0", Metrics(), Switch()).start()
    port = server.port
    assert get(server, "/health")[0] == 200
    server.stop()
    server.stop()  # idempotent
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) == errno.ECONNREFUSED
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))


def test_port_in_use_is_a_usage_error() -> None:
    with StatusServer("127.0.0.1:0", Metrics(), Switch()) as first, \
            pytest.raises(UsageError) as caught:
        StatusServer(f"127.0.0.1:{first.port}", Metrics(), Switch())
    assert str(caught.value).startswith(f"--metrics-addr: cannot listen on 127.0.0.1:{first.port}")


def test_access_log_goes_to_logging_not_stderr(served, capfd) -> None:
    server, _, _ = served
    get(server, "/health")
    assert capfd.readouterr().err == ""


def test_ready_with_real_imds_up_then_down(emulator: Emulator) -> None:
    metrics = Metrics()
    server = start_status_server("127.0.0.1:0", metrics, ImdsSettings(), endpoint=emulator.url,
                                 min_interval=0.0)
    try:
        assert get(server, "/ready")[0] == 200
        emulator.stop()
        status, _, body = get(server, "/ready")
        assert status == 503 and body.startswith(b"not ready: ")
        report = json.loads(get(server, "/ready/detailed")[2])
        assert report["healthy"] is False
    finally:
        server.stop()


def test_start_status_server_needs_metrics() -> None:
    with pytest.raises(UsageError):
        start_status_server("127.0.0.1:0", Recorder(), ImdsSettings())
