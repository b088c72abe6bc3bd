"""imdsrender.metrics on its own: hooks -> exposition, textfile, status server, health check.

Expositions are read back with prometheus-client's own text parser, so
what is asserted is what Prometheus and node_exporter would see.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
from typing import Dict, List, Optional, Tuple

import pytest

from imdsrender.client import ImdsUnavailable
from imdsrender.config import ImdsSettings, Resource
from imdsrender.emulator import Emulator
from imdsrender.errors import UsageError
from imdsrender.source import CachedSource
from imdsrender.metrics import (
    Metrics,
    MetricsError,
    MetricsUnavailable,
    Recorder,
    StatusServer,
    error_reason,
    from_flags,
    make_health_check,
    parse_addr,
    path_category,
    retry_reason,
    start_status_server,
    write_textfile,
)
from imdsrender.write import CommandResult, Outcome
from tests.helpers import MetricKey, metric, parse_metrics

SECRET_PATH = "/latest/meta-data/iam/security-credentials/web-role"




def scrape(metrics: Metrics) -> Dict[MetricKey, float]:
    return parse_metrics(metrics.exposition().decode())


class FakeSource:
    """A Source answering from a dict (missing keys: NotFound)."""

    def __init__(self, values: Dict[str, bytes]) -> None:
        self.values = values

    def get(self, path: str) -> bytes:
        from imdsrender.client import NotFound

        if path not in self.values:
            raise NotFound(path, "not found (404)")
        return self.values[path]


def resource(dest: str, check: Optional[str] = None, reload: Optional[str] = None) -> Resource:
    return Resource(origin="conf.d/t.yaml:1", src="/t/t.j2", template="t.j2", dest=dest,
                    keys=(), check_cmd=check, reload_cmd=reload)


# --- labels -------------------------------------------------------------------

@pytest.mark.parametrize("path, category", [
    ("/latest/api/token", "token"),
    (SECRET_PATH, "meta-data"),
    ("/latest/meta-data/", "meta-data"),
    ("/latest/dynamic/instance-identity/document", "dynamic"),
    ("/latest/user-data", "user-data"),
    ("/meta-data/instance-id", "meta-data"),
    ("/latest/", "other"),
    ("/latest/api/other", "other"),
    ("/something/else", "other"),
    ("", "other"),
])
def test_path_category_is_bounded(path: str, category: str) -> None:
    assert path_category(path) == category


@pytest.mark.parametrize("operation, status, reason", [
    ("get", 200, None), ("get", 404, None), ("list", 404, None), ("token", 404, "not_found"),
    ("get", None, "no_answer"), ("get", 401, "unauthorized"), ("token", 403, "forbidden"),
    ("get", 429, "throttled"), ("get", 500, "server_error"), ("get", 503, "server_error"),
    ("get", 301, "redirect"), ("token", 400, "client_error"), ("token", 405, "client_error"),
])
def test_error_reason(operation: str, status: Optional[int], reason: Optional[str]) -> None:
    assert error_reason(operation, status) == reason


@pytest.mark.parametrize("text, label", [
    ("HTTP 503", "http_503"), ("HTTP 429", "http_429"),
    ("connect timed out", "connect_timeout"), ("read timed out", "read_timeout"),
    ("connection failed: [Errno 111] Connection refused", "connection_failed"),
    ("connection error: ('Connection aborted.', RemoteDisconnected())", "connection_error"),
    ("short body (3 of 19 bytes)", "short_body"),
    ("body not complete before the request deadline", "deadline"),
    ("HTTP banana", "other"), ("something new", "other"),
])
def test_retry_reason_is_bounded(text: str, label: str) -> None:
    assert retry_reason(text) == label


# --- hooks -> exposition --------------------------------------------------------

def test_seed_metrics_from_observer_hooks() -> None:
    metrics = Metrics()
    metrics.request("token", "/latest/api/token", 200, 0.002)
    metrics.request("get", SECRET_PATH, 503, 0.004)
    metrics.request("get", SECRET_PATH, 200, 0.003)
    metrics.request("list", "/latest/meta-data/tags/instance/", 404, 0.001)
    metrics.request("get", "/latest/user-data", None, 1.0)
    metrics.retry("get", "HTTP 503")
    metrics.retry("get", "read timed out")
    metrics.token_refresh()
    got = scrape(metrics)

    assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                  code="503") == 1
    assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                  code="200") == 1
    assert metric(got, "confd_backend_request_total", operation="token", category="token",
                  code="200") == 1
    assert metric(got, "confd_backend_request_total", operation="get", category="user-data",
                  code="none") == 1
    assert metric(got, "confd_backend_errors_total", operation="get", category="meta-data",
                  reason="server_error") == 1
    assert metric(got, "confd_backend_errors_total", operation="get", category="user-data",
                  reason="no_answer") == 1
    assert not any(name == "confd_backend_errors_total" and ("operation", "list") in labels
                   for name, labels in got), "a 404 listing is not an error"
    assert metric(got, "confd_backend_request_duration_seconds_count", operation="get",
                  category="meta-data") == 2
    assert metric(got, "confd_backend_request_duration_seconds_sum", operation="get",
                  category="meta-data") == pytest.approx(0.007)
    assert metric(got, "confd_backend_request_duration_seconds_bucket", operation="token",
                  category="token", le="0.0025") == 1
    assert metric(got, "imdsrender_retries_total", reason="http_503") == 1
    assert metric(got, "imdsrender_retries_total", reason="read_timeout") == 1
    assert metric(got, "imdsrender_token_refreshes_total") == 1


def test_labels_never_carry_paths() -> None:
    metrics = Metrics()
    metrics.request("get", SECRET_PATH, 500, 0.01)
    metrics.retry("get", "connection failed: <urllib3 at 0x7f>: web-role refused")
    text = metrics.exposition().decode()
    assert "security-credentials" not in text
    assert "web-role" not in text
    assert "0x7f" not in text


def test_each_metrics_has_its_own_registry() -> None:
    from prometheus_client import REGISTRY

    first, second = Metrics(), Metrics()
    first.token_refresh()
    assert metric(scrape(first), "imdsrender_token_refreshes_total") == 1
    assert metric(scrape(second), "imdsrender_token_refreshes_total") == 0
    assert REGISTRY.get_sample_value("imdsrender_token_refreshes_total") is None


def test_run_finished_records_resources_and_timestamps() -> None:
    clock = iter([1000.0, 2000.0])
    metrics = Metrics(wall=lambda: next(clock))
    metrics.resource_finished("/etc/a", "written", 0.25)
    metrics.resource_finished("/etc/b", "failed", 0.5)
    metrics.run_finished([Outcome("/etc/a", "written"), Outcome("/etc/b", "failed")], 1.5)
    got = scrape(metrics)
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="written") == 1
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="failed") == 0
    assert metric(got, "imdsrender_resource_status", dest="/etc/b", status="failed") == 1
    assert metric(got, "imdsrender_resources_failed") == 1
    assert metric(got, "imdsrender_files_changed_total", dest="/etc/a") == 1
    assert metric(got, "imdsrender_resource_failures_total", dest="/etc/b") == 1
    assert metric(got, "imdsrender_render_duration_seconds", dest="/etc/b") == 0.5
    assert metric(got, "imdsrender_runs_total", result="failed") == 1
    assert metric(got, "imdsrender_last_run_timestamp_seconds") == 1000
    assert metric(got, "imdsrender_last_success_timestamp_seconds") == 0
    assert metric(got, "imdsrender_last_run_duration_seconds") == 1.5
    assert metric(got, "confd_backend_healthy") == 1

    # /etc/b was dropped from the config (SIGHUP): its series go with it.
    metrics.run_finished([Outcome("/etc/a", "unchanged")], 0.5)
    got = scrape(metrics)
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="unchanged") == 1
    assert metric(got, "imdsrender_resource_status", dest="/etc/b", status="failed") is None
    assert metric(got, "imdsrender_render_duration_seconds", dest="/etc/b") is None
    assert metric(got, "imdsrender_resources_failed") == 0
    assert metric(got, "imdsrender_last_success_timestamp_seconds") == 2000
    assert metric(got, "imdsrender_runs_total", result="ok") == 1
    assert metric(got, "imdsrender_files_changed_total", dest="/etc/a") == 1


def test_run_without_imds_is_unhealthy_and_keeps_last_statuses() -> None:
    metrics = Metrics(wall=lambda: 5.0)
    metrics.run_finished([Outcome("/etc/a", "unchanged")], 0.1)
    metrics.run_finished([], 0.2, error=ImdsUnavailable("http://x", "no answer"))
    got = scrape(metrics)
    assert metric(got, "confd_backend_healthy") == 0
    assert metric(got, "imdsrender_runs_total", result="error") == 1
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="unchanged") == 1
    metrics.set_healthy(True)
    assert metric(scrape(metrics), "confd_backend_healthy") == 1


def test_usage_error_in_a_run_is_not_an_imds_health_problem() -> None:
    metrics = Metrics()
    metrics.run_finished([], 0.1, error=UsageError("x", "bad template"))
    got = scrape(metrics)
    assert metric(got, "confd_backend_healthy") == 1
    assert metric(got, "imdsrender_runs_total", result="error") == 1


def test_cache_counters_are_read_at_scrape_time() -> None:
    cache = CachedSource(FakeSource({"/a": b"1"}), 60.0, clock=lambda: 0.0)
    metrics = Metrics()
    got = scrape(metrics)
    assert metric(got, "imdsrender_cache_entries") is None  # no cache: no cache metrics
    cache.get("/a")
    metrics.run_finished([], 0.1, cache=cache)
    cache.get("/a")
    cache.get("/a")
    got = scrape(metrics)
    assert metric(got, "imdsrender_cache_hits_total") == 2
    assert metric(got, "imdsrender_cache_misses_total") == 1
    assert metric(got, "imdsrender_cache_entries") == 1
    assert metric(got, "imdsrender_cache_ttl_seconds") == 60
    assert metrics.details()["cache_hits"] == 2


def test_details_shape() -> None:
    cache = CachedSource(FakeSource({}), 30.0)
    metrics = Metrics(wall=lambda: 0.5)
    assert metrics.details()["resources"] == {}
    metrics.run_finished([Outcome("/etc/b", "failed"), Outcome("/etc/a", "written")], 1.0,
                         cache=cache)
    assert metrics.details() == {
        "cache_entries": 0, "cache_ttl": 30.0, "cache_hits": 0, "cache_misses": 0,
        "last_run": "1970-01-01T00:00:00.500Z", "last_result": "failed", "last_success": None,
        "resources": {"/etc/a": "written", "/etc/b": "failed"},
    }


def test_record_reports_a_pass_and_returns_its_outcomes(tmp_path) -> None:
    prom = tmp_path / "m.prom"
    metrics = Metrics(textfile=str(prom))
    outcomes = [Outcome("/etc/a", "written")]
    assert metrics.record(lambda: outcomes) is outcomes
    assert metric(parse_metrics(prom.read_text()), "imdsrender_runs_total", result="ok") == 1


def test_record_reports_a_failed_pass_and_reraises(tmp_path) -> None:
    prom = tmp_path / "m.prom"
    metrics = Metrics(textfile=str(prom))

    def unavailable() -> List[Outcome]:
        raise ImdsUnavailable("http://127.0.0.1:9", "no answer from IMDS")

    with pytest.raises(ImdsUnavailable):
        metrics.record(unavailable)
    got = parse_metrics(prom.read_text())  # written although the run failed
    assert metric(got, "imdsrender_runs_total", result="error") == 1
    assert metric(got, "confd_backend_healthy") == 0


def test_recorder_record_without_metrics() -> None:
    assert Recorder().record(lambda: []) == []
    with pytest.raises(KeyboardInterrupt):
        Recorder().record(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


# --- commands -------------------------------------------------------------------

def fake_runner(codes: List[int], seen: List[str]):
    def run(cmd: str, timeout: float) -> CommandResult:
        seen.append(cmd)
        return CommandResult(cmd, codes[len(seen) - 1], False, b"", b"")
    return run


def test_command_runner_records_check_and_reload() -> None:
    metrics = Metrics()
    seen: List[str] = []
    run = metrics.command_runner(resource("/etc/a", check="true", reload="false"),
                                 fake_runner([0, 3], seen))
    assert run("check one", 5.0).returncode == 0
    assert run("reload one", 5.0).returncode == 3
    assert seen == ["check one", "reload one"]
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="check") == 0
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="reload") == 3
    seconds = metric(got, "imdsrender_command_duration_seconds", dest="/etc/a", command="reload")
    assert seconds is not None and seconds >= 0


def test_command_runner_reload_only_and_unstartable() -> None:
    metrics = Metrics()

    def broken(cmd: str, timeout: float) -> CommandResult:
        raise OSError(errno.ENOENT, "No such file or directory")

    run = metrics.command_runner(resource("/etc/a", reload="x"), broken)
    with pytest.raises(OSError):
        run("x", 1.0)
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="reload") == 127
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="check") is None


def test_command_runner_runs_real_commands() -> None:
    metrics = Metrics()
    run = metrics.command_runner(resource("/etc/a", check="exit 4"))
    assert run("exit 4", 10.0).returncode == 4
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="check") == 4


def test_recorder_is_a_no_op_with_the_plain_runner() -> None:
    from imdsrender.write import run_command

    recorder = Recorder()
    recorder.request("get", "/x", 200, 0.1)
    recorder.resource_finished("/etc/a", "written", 0.1)
    recorder.run_finished([Outcome("/etc/a", "written")], 0.1)
    assert recorder.command_runner(resource("/etc/a")) is run_command


# --- textfile ---------------------------------------------------------------------

def test_textfile_is_written_atomically_and_parses_back(tmp_path) -> None:
    path = tmp_path / "imdsrender.prom"
    path.write_text("old\n")
    metrics = Metrics(textfile=str(path))
    metrics.request("get", SECRET_PATH, 200, 0.01)
    metrics.run_finished([Outcome("/etc/a", "written")], 0.3)
    got = parse_metrics(path.read_text())
    assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                  code="200") == 1
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="written") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["imdsrender.prom"]
    assert path.read_bytes() == metrics.exposition()


def test_textfile_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    path = tmp_path / "imdsrender.prom"
    path.write_text("old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(MetricsError) as caught:
        write_textfile(str(path), Metrics())
    assert str(caught.value).startswith("--metrics-textfile: writing ")
    assert path.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["imdsrender.prom"]


def test_textfile_error_in_run_finished_is_logged_not_raised(tmp_path, caplog) -> None:
    metrics = Metrics(textfile=str(tmp_path / "gone" / "x.prom"))
    metrics.run_finished([], 0.1)
    assert "--metrics-textfile: writing" in caplog.text
    assert "gone" in caplog.text


# --- flags ------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9100", ("127.0.0.1", 9100)),
    ("localhost:0", ("localhost", 0)),
    (":9100", ("0.0.0.0", 9100)),
    ("[::1]:9100", ("::1", 9100)),
    ("[::]:65535", ("::", 65535)),
])
def test_parse_addr(text: str, expected: Tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize("text", ["9100", "127.0.0.1", "127.0.0.1:", "host:port", ":65536",
                                  "::1:9100", "[::1:9100", "a b:1", "http://x:1", ":-1", "",
                                  ":\u00b2", "127.0.0.1:\u0669"])
def test_parse_addr_refuses_garbage(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_addr(text)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith("--metrics-addr: expected HOST:PORT")


def test_from_flags(tmp_path) -> None:
    assert type(from_flags(None, None, interval=False)) is Recorder
    assert isinstance(from_flags("127.0.0.1:0", None, interval=True), Metrics)
    built = from_flags(None, str(tmp_path / "m.prom"), interval=False)
    assert isinstance(built, Metrics) and built.textfile == str(tmp_path / "m.prom")


@pytest.mark.parametrize("addr, textfile, interval, message", [
    ("127.0.0.1:9100", None, False, "--metrics-addr: serves metrics only in --interval mode"),
    ("nope", None, True, "--metrics-addr: expected HOST:PORT"),
    (None, "/nonexistent-dir/m.prom", False, "--metrics-textfile: directory /nonexistent-dir"),
    (None, "/", False, "--metrics-textfile: '/' is not a file path"),
])
def test_from_flags_refuses(addr: Optional[str], textfile: Optional[str], interval: bool,
                            message: str) -> None:
    with pytest.raises(UsageError) as caught:
        from_flags(addr, textfile, interval=interval)
    assert str(caught.value).startswith(message)
    assert caught.value.exit_code == 2


def test_without_prometheus_client(monkeypatch, tmp_path) -> None:
    for name in [m for m in sys.modules if m.startswith("prometheus_client")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import -> ImportError
    with pytest.raises(MetricsUnavailable) as caught:
        Metrics()
    assert caught.value.exit_code == 2
    with pytest.raises(MetricsUnavailable) as caught:
        from_flags(None, str(tmp_path / "m.prom"), interval=False)
    assert str(caught.value) == ("--metrics-textfile: metrics need prometheus-client, which is "
                                 "not installed; pip install 'imdsrender[metrics]'")
    assert type(from_flags(None, None, interval=True)) is Recorder


def test_module_imports_without_prometheus_client() -> None:
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "import imdsrender.metrics as m\n"
            "m.Recorder().run_finished([], 0.0)\n"
            "print('imported')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "imported\n"


# --- status server -----------------------------------------------------------------

class Switch:
    """A health check whose answer the test flips."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def __call__(self) -> Tuple[bool, str]:
        self.calls += 1
        return (True, "IMDS issued a token") if self.up else (False, "IMDS down")


def get(server: StatusServer, path: str, host: str = "127.0.0.1") -> Tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(host, server.port, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read()
    finally:
        conn.close()


@pytest.fixture
def served():
    metrics = Metrics()
    switch = Switch()
    server = StatusServer("127.0.0.1:0", metrics, switch, min_interval=0.0,
                          wall=lambda: 1714552262.25).start()
    yield server, metrics, switch
    server.stop()


def test_health_and_metrics_over_http(served) -> None:
    server, metrics, _ = served
    metrics.request("get", SECRET_PATH, 200, 0.01)
    assert get(server, "/health") == (200, "text/plain; charset=utf-8", b"ok\n")
    status, ctype, body = get(server, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=")
    assert metric(parse_metrics(body.decode()), "confd_backend_request_total", operation="get",
                  category="meta-data", code="200") == 1
    assert get(server, "/nope")[0] == 404


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


# --- the real IMDS health check ---------------------------------------------------------

def test_health_check_asks_imds_for_a_fresh_token_each_time(emulator: Emulator) -> None:
    check = make_health_check(ImdsSettings(), endpoint=emulator.url)
    assert check() == (True, "IMDS issued a token")
    assert check() == (True, "IMDS issued a token")
    assert emulator.count("PUT", "/latest/api/token") == 2


def test_health_check_sees_faults_and_no_answer(emulator: Emulator) -> None:
    check = make_health_check(ImdsSettings(), endpoint=emulator.url)
    emulator.add_fault("/latest/api/token", method="PUT", status=500, times=1)
    healthy, message = check()
    assert not healthy and "HTTP 500" in message
    assert emulator.count("PUT", "/latest/api/token") == 1  # no retries in a probe
    emulator.stop()
    healthy, message = check()
    assert not healthy and "no answer from IMDS" in message


def test_health_check_with_fixture_data() -> None:
    healthy, message = make_health_check(ImdsSettings(), data="/tmp/f.json")()
    assert healthy and "--data" in message


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
