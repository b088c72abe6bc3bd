"""metrics.registry and recorder: hooks and outcomes -> exposition, read back with
prometheus-client's own parser (what Prometheus and node_exporter would see)."""

from __future__ import annotations

import errno
import subprocess
import sys
from typing import List, Optional, Sequence, Tuple

import pytest

from imdsrender.errors import UsageError
from imdsrender.metrics import (
    Metrics,
    MetricsUnavailable,
    Recorder,
    from_flags,
    parse_addr,
)
from imdsrender.model import CHECK, NOT_STARTED, RELOAD, Outcome, StepResult
from imdsrender.source import CachedSource, SourceUnavailable
from imdsrender.write import CommandResult, sync
from tests.helpers import metric, parse_metrics
from tests.metrics.helpers import SECRET_PATH, FakeSource, resource, scrape

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
    metrics.run_finished([Outcome("/etc/a", "written", seconds=0.25),
                          Outcome("/etc/b", "failed", seconds=0.5)], 1.5)
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
    metrics.run_finished([], 0.2, error=SourceUnavailable("http://x", "no answer"))
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


def test_run_pass_reports_a_pass_and_returns_its_outcomes(tmp_path) -> None:
    prom = tmp_path / "m.prom"
    metrics = Metrics(textfile=str(prom))
    outcomes = [Outcome("/etc/a", "written")]
    assert metrics.run_pass(lambda: outcomes) is outcomes
    assert metric(parse_metrics(prom.read_text()), "imdsrender_runs_total", result="ok") == 1


def test_run_pass_reports_a_failed_pass_and_reraises(tmp_path) -> None:
    prom = tmp_path / "m.prom"
    metrics = Metrics(textfile=str(prom))

    def unavailable() -> List[Outcome]:
        raise SourceUnavailable("http://127.0.0.1:9", "no answer from IMDS")

    with pytest.raises(SourceUnavailable):
        metrics.run_pass(unavailable)
    got = parse_metrics(prom.read_text())  # written although the run failed
    assert metric(got, "imdsrender_runs_total", result="error") == 1
    assert metric(got, "confd_backend_healthy") == 0


def test_recorder_run_pass_without_metrics() -> None:
    assert Recorder().run_pass(lambda: []) == []
    with pytest.raises(KeyboardInterrupt):
        Recorder().run_pass(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


# --- commands -------------------------------------------------------------------

def fake_runner(codes: List[int], seen: List[str]):
    def run(cmd: str, timeout: float, args: Sequence[str] = ()) -> CommandResult:
        seen.append(cmd)
        return CommandResult(cmd, codes[len(seen) - 1], False, b"", b"")
    return run


def test_commands_of_an_outcome_are_recorded_by_step() -> None:
    metrics = Metrics()
    outcome = Outcome("/etc/a", "failed", steps=(StepResult(CHECK, 0.1, 0),
                                                 StepResult(RELOAD, 0.2, 3)))
    metrics.run_finished([outcome], 0.5)
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="check") == 0
    assert metric(got, "imdsrender_command_exit_status", dest="/etc/a", command="reload") == 3
    assert metric(got, "imdsrender_command_duration_seconds", dest="/etc/a",
                  command="reload") == 0.2


def test_sync_then_metrics_records_check_and_reload(tmp_path) -> None:
    """The whole route: write.sync runs the commands, metrics reads the outcome."""
    metrics = Metrics()
    seen: List[str] = []
    dest = str(tmp_path / "a")
    outcome = sync(resource(dest, check="check one", reload="reload one"), b"x\n",
                   run=fake_runner([0, 3], seen))
    assert seen == ["check one", "reload one"]
    metrics.run_finished([outcome], 0.1)
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest=dest, command="check") == 0
    assert metric(got, "imdsrender_command_exit_status", dest=dest, command="reload") == 3
    seconds = metric(got, "imdsrender_command_duration_seconds", dest=dest, command="reload")
    assert seconds is not None and seconds >= 0


def test_reload_only_and_unstartable_command(tmp_path) -> None:
    metrics = Metrics()

    def broken(cmd: str, timeout: float, args: Sequence[str] = ()) -> CommandResult:
        raise OSError(errno.ENOENT, "No such file or directory")

    dest = str(tmp_path / "a")
    outcome = sync(resource(dest, reload="x"), b"x\n", run=broken)
    assert outcome.failed and outcome.steps[0].returncode == NOT_STARTED
    metrics.run_finished([outcome], 0.1)
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest=dest, command="reload") == 127
    assert metric(got, "imdsrender_command_exit_status", dest=dest, command="check") is None


def test_real_commands_are_recorded(tmp_path) -> None:
    metrics = Metrics()
    dest = str(tmp_path / "a")
    outcome = sync(resource(dest, check="exit 4"), b"x\n")
    metrics.run_finished([outcome], 0.1)
    got = scrape(metrics)
    assert metric(got, "imdsrender_command_exit_status", dest=dest, command="check") == 4


def test_a_dropped_resource_loses_its_command_series() -> None:
    metrics = Metrics()
    metrics.run_finished([Outcome("/etc/a", "written", steps=(StepResult(RELOAD, 0.1, 0),))], 1)
    metrics.run_finished([Outcome("/etc/a", "unchanged")], 1)  # reload result is kept
    assert metric(scrape(metrics), "imdsrender_command_exit_status", dest="/etc/a",
                  command="reload") == 0
    metrics.run_finished([Outcome("/etc/b", "unchanged")], 1)
    assert metric(scrape(metrics), "imdsrender_command_exit_status", dest="/etc/a",
                  command="reload") is None


def test_recorder_is_a_no_op() -> None:
    recorder = Recorder()
    recorder.request("get", "/x", 200, 0.1)
    recorder.run_finished([Outcome("/etc/a", "written", seconds=0.1)], 0.1)
    assert not hasattr(recorder, "command_runner")  # write is never wrapped by metrics


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
