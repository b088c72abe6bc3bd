"""End to end observability: the real CLI in a subprocess against the emulator.

- ``--log-format json``: every stderr line is one JSON object, and no secret
  (role credentials, IMDS tokens) is in any output of a credentials run.
- ``--interval --metrics-addr``: /metrics scraped over HTTP and parsed with
  prometheus-client's parser after a run with injected faults; /health,
  /ready (IMDS up, then down: 503) and /ready/detailed; binds only where
  told; SIGTERM stops it and frees the port.
- ``--onetime --metrics-textfile``: the file parsed back matches the run,
  also when IMDS is unavailable (exit 3).
- Without prometheus-client the metrics flags exit 2 naming the extra.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from imdsrender.emulator import Emulator
from imdsrender.fixture import default_fixture
from tests.helpers import (
    ROOT,
    SAFE_ENDPOINT,
    ConfDir,
    MetricKey,
    metric,
    parse_metrics,
    run_cli,
)

Record = Dict[str, Any]
JSON_LOGS = ("--log-format", "json", "--log-level", "debug")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CREDS_TEMPLATE = (ROOT / "examples" / "templates" / "aws-credentials.j2").read_text()


# --- helpers --------------------------------------------------------------------

def json_lines(stderr: str) -> List[Record]:
    """Every stderr line parsed as one JSON log object (fails on any other line)."""
    records = []
    for number, line in enumerate(stderr.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"stderr line {number} is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"ts", "level", "logger", "msg"} <= set(record), line
        assert TS.match(record["ts"]), line
        assert record["level"] in ("debug", "info", "warning", "error", "critical"), line
        records.append(record)
    return records




def total(samples: Dict[MetricKey, float], name: str, **labels: str) -> float:
    """Sum of *name* over every series whose labels include *labels*."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def secrets_of_fixture() -> List[str]:
    """SecretAccessKey and Token of every credentials document in the default fixture."""
    found = []
    for path, body in default_fixture().items():
        if "/security-credentials/" in path:
            doc = json.loads(body)
            found += [doc["SecretAccessKey"], doc["Token"]]
    assert len(found) >= 2
    return found


def issued_tokens(emulator: Emulator) -> List[str]:
    tokens = {r.header("X-aws-ec2-metadata-token") for r in emulator.requests} - {None}
    assert tokens, "no token was used: the test proves nothing"
    return sorted(t for t in tokens if t)


def assert_no_secrets(emulator: Emulator, *outputs: str) -> None:
    for secret in [*secrets_of_fixture(), *issued_tokens(emulator)]:
        for output in outputs:
            assert secret not in output


def credentials_confdir(tmp_path: Path) -> ConfDir:
    """Examples' credentials + instance resources, and a credentials resource whose
    check prints the staged file on both streams and fails."""
    confdir = ConfDir.from_examples(tmp_path, "credentials.yaml", "instance.yaml")
    confdir.resource("leaky.j2", CREDS_TEMPLATE,
                     keys=["/meta-data/iam/security-credentials/"],
                     check_cmd="cat {{ src }}; cat {{ src }} >&2; exit 1")
    return confdir


def http_get(port: int, path: str, host: str = "127.0.0.1") -> Tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read()
    finally:
        conn.close()


def refused(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(10)
        return probe.connect_ex((host, port)) == errno.ECONNREFUSED


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env() -> Dict[str, str]:
    """Loopback only: no AWS_/IMDS_ variables or proxies from the caller leak in."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    env["IMDS_ENDPOINT"] = SAFE_ENDPOINT
    return env


class Daemon:
    """``python -m imdsrender ARGS`` running in the background, stderr collected by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "imdsrender", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     cwd=ROOT, env=cli_env())
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, predicate: Callable[[Record], bool], count: int = 1,
                 timeout: float = 60) -> Record:
        """The *count*-th JSON record matching *predicate* (waits for it)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matches = [r for r in map(_loads, self.lines) if r and predicate(r)]
                if len(matches) >= count:
                    return matches[count - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no such log record; stderr so far:\n{chr(10).join(self.lines)}")
                self._cond.wait(min(left, 0.5))

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self._reader.join(timeout=60)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=60)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def _loads(line: str) -> Optional[Record]:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def listening_port(daemon: Daemon) -> int:
    record = daemon.wait_for(lambda r: "serving /metrics" in r["msg"])
    match = re.search(r"http://127\.0\.0\.1:(\d+)$", record["msg"])
    assert match, record
    return int(match.group(1))


# --- JSON logs (no metrics needed) ------------------------------------------------

def test_json_logs_parse_line_by_line_and_carry_fields(make_emulator: Callable[..., Emulator],
                                                       tmp_path: Path) -> None:
    emulator = make_emulator()
    emulator.add_fault("/meta-data/instance-id", status=503, times=1)
    confdir = ConfDir.from_examples(tmp_path, "instance.yaml")
    confdir.resource("broken.j2", '{{ getv("/meta-data/no-such-key") }}\n')
    result = run_cli("--onetime", *confdir.flags(emulator), *JSON_LOGS)
    assert result.returncode == 1, result.stderr
    records = json_lines(result.stderr)
    levels = {r["level"] for r in records}
    assert {"debug", "info", "error"} <= levels
    written = [r for r in records if r.get("status") == "written"]
    assert written and written[0]["resource"].startswith("conf.d/instance.yaml")
    failed = [r for r in records if r.get("status") == "failed" and "resource" in r]
    assert failed and "/meta-data/no-such-key" in failed[0]["msg"]
    assert any("retry" in r["msg"] and "HTTP 503" in r["msg"] for r in records)
    assert result.stdout == ""


def test_no_secret_or_token_in_any_output_of_a_credentials_run(emulator: Emulator,
                                                                tmp_path: Path) -> None:
    confdir = credentials_confdir(tmp_path)
    runs = [run_cli("--onetime", *confdir.flags(emulator), *JSON_LOGS, *extra)
            for extra in (("--noop",), ())]
    assert [run.returncode for run in runs] == [0, 1], runs[1].stderr
    for run in runs:
        json_lines(run.stderr)
    rendered = confdir.dest("aws-credentials").read_text()
    assert all(secret in rendered for secret in secrets_of_fixture()[:2])  # really rendered
    assert not confdir.dest("leaky").exists()  # its check failed, printing the file
    leaky = [r for r in json_lines(runs[1].stderr) if r.get("status") == "failed"]
    assert leaky and "check_cmd" in leaky[0]["msg"]
    assert "<redacted>" in runs[0].stdout  # the noop diff of the credentials file
    assert_no_secrets(emulator, *(run.stderr for run in runs), *(run.stdout for run in runs))


# --- the wiring: these need cli.py to build Metrics from the flags -----------------

def test_interval_metrics_health_ready_and_sigterm(make_emulator: Callable[..., Emulator],
                                                   tmp_path: Path) -> None:
    emulator = make_emulator()
    emulator.add_fault("/meta-data/instance-id", status=503, times=2)
    emulator.add_fault("/meta-data/ami-id", status=500, times=1)
    confdir = credentials_confdir(tmp_path)
    daemon = Daemon("--interval", "1h", "--metrics-addr", "127.0.0.1:0",
                    *confdir.flags(emulator), *JSON_LOGS)
    try:
        port = listening_port(daemon)
        daemon.wait_for(lambda r: r["msg"].startswith("poll done"))
        requests_seen = emulator.count()

        status, ctype, body = http_get(port, "/metrics")
        assert status == 200 and ctype.startswith("text/plain; version=")
        got = parse_metrics(body.decode())
        # the seed's four names, with the faults counted
        assert total(got, "confd_backend_request_total") == requests_seen
        assert total(got, "confd_backend_request_duration_seconds_count") == requests_seen
        assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                     code="503") == 2
        assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                     code="500") == 1
        assert metric(got, "confd_backend_request_total", operation="token", category="token",
                     code="200") == 1
        assert metric(got, "confd_backend_errors_total", operation="get", category="meta-data",
                     reason="server_error") == 3
        assert metric(got, "confd_backend_healthy") == 1
        # imdsrender's own
        assert metric(got, "imdsrender_retries_total", reason="http_503") == 2
        assert metric(got, "imdsrender_retries_total", reason="http_500") == 1
        assert metric(got, "imdsrender_token_refreshes_total") == 1
        dests = {name: str(confdir.dest(name)) for name in ("aws-credentials", "instance.conf",
                                                             "leaky")}
        assert metric(got, "imdsrender_resource_status", dest=dests["aws-credentials"],
                     status="written") == 1
        assert metric(got, "imdsrender_resource_status", dest=dests["leaky"],
                     status="failed") == 1
        assert metric(got, "imdsrender_resources_failed") == 1
        assert metric(got, "imdsrender_command_exit_status", dest=dests["leaky"],
                     command="check") == 1
        assert metric(got, "imdsrender_cache_misses_total") == len(
            {r.path for r in emulator.requests if r.method == "GET"})
        assert metric(got, "imdsrender_cache_ttl_seconds") == 60
        labels = {v for (_, ls) in got for _, v in ls}
        assert not any("security-credentials" in v or "web-role" in v for v in labels)

        assert http_get(port, "/health") == (200, "text/plain; charset=utf-8", b"ok\n")
        assert http_get(port, "/ready")[0] == 200
        status, ctype, body = http_get(port, "/ready/detailed")
        assert (status, ctype) == (200, "application/json")
        report = json.loads(body)
        assert sorted(report) == ["checked_at", "details", "duration_ms", "healthy", "message"]
        assert report["healthy"] is True
        assert TS.match(report["checked_at"])
        details = report["details"]
        assert details["resources"] == {dests["aws-credentials"]: "written",
                                        dests["instance.conf"]: "written",
                                        dests["leaky"]: "failed"}
        assert details["cache_ttl"] == 60
        assert details["cache_entries"] == metric(got, "imdsrender_cache_misses_total")
        assert {"cache_hits", "cache_misses"} <= set(details)

        # binds only where told: 127.0.0.2 is this machine too
        assert refused("127.0.0.2", port)

        emulator.stop()  # IMDS goes away
        deadline = time.monotonic() + 30
        while http_get(port, "/ready")[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.2)  # a /ready answer is reused for up to a second
        status, _, body = http_get(port, "/ready")
        assert status == 503 and body.startswith(b"not ready: ")
        status, _, body = http_get(port, "/ready/detailed")
        assert status == 503 and json.loads(body)["healthy"] is False
        assert metric(parse_metrics(http_get(port, "/metrics")[2].decode()),
                     "confd_backend_healthy") == 0

        assert daemon.terminate() == 0
    finally:
        daemon.kill()
    assert refused("127.0.0.1", port)  # the port is released
    records = json_lines(daemon.stderr)
    assert records[-1]["msg"] == "stopping"
    assert_no_secrets(emulator, daemon.stderr)


def test_onetime_textfile_matches_the_run(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir.from_examples(tmp_path, "instance.yaml")
    confdir.resource("broken.j2", '{{ getv("/meta-data/no-such-key") }}\n')
    prom = tmp_path / "imdsrender.prom"
    result = run_cli("--onetime", *confdir.flags(emulator), "--metrics-textfile", str(prom))
    assert result.returncode == 1, result.stderr
    got = parse_metrics(prom.read_text())
    assert metric(got, "imdsrender_resource_status", dest=str(confdir.dest("instance.conf")),
                 status="written") == 1
    assert metric(got, "imdsrender_resource_status", dest=str(confdir.dest("broken")),
                 status="failed") == 1
    assert metric(got, "imdsrender_resources_failed") == 1
    assert metric(got, "imdsrender_runs_total", result="failed") == 1
    assert metric(got, "imdsrender_files_changed_total",
                 dest=str(confdir.dest("instance.conf"))) == 1
    assert total(got, "confd_backend_request_total") == emulator.count()
    assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                 code="404") == 1
    assert total(got, "confd_backend_errors_total") == 0  # a missing key is no IMDS error
    assert metric(got, "confd_backend_healthy") == 1
    assert metric(got, "imdsrender_last_success_timestamp_seconds") == 0
    assert (metric(got, "imdsrender_last_run_timestamp_seconds") or 0) > 0
    assert sorted(os.listdir(tmp_path)) == ["confdir", "imdsrender.prom", "out"]  # no temp


def test_onetime_textfile_written_when_imds_is_unavailable(tmp_path: Path) -> None:
    closed = closed_port()
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    prom = tmp_path / "imdsrender.prom"
    result = run_cli("--onetime", "--confdir", confdir.path, "--boot-wait", "200ms",
                     "--endpoint", f"http://127.0.0.1:{closed}", "--metrics-textfile", str(prom))
    assert result.returncode == 3, result.stderr
    got = parse_metrics(prom.read_text())
    assert metric(got, "imdsrender_runs_total", result="error") == 1
    assert metric(got, "confd_backend_healthy") == 0
    assert metric(got, "confd_backend_request_total", operation="token", category="token",
                 code="none") == total(got, "confd_backend_request_total") > 0
    assert metric(got, "confd_backend_errors_total", operation="token", category="token",
                 reason="no_answer") > 0


def test_metrics_addr_needs_interval(tmp_path: Path) -> None:
    result = run_cli("--onetime", "--confdir", str(tmp_path), "--metrics-addr", "127.0.0.1:0")
    assert result.returncode == 2
    assert result.stderr == ("imdsrender: --metrics-addr: serves metrics only in --interval "
                             "mode; use --metrics-textfile PATH for --onetime runs\n")


def test_bad_metrics_addr_exits_2(tmp_path: Path) -> None:
    result = run_cli("--interval", "1h", "--confdir", str(tmp_path), "--metrics-addr", "9100")
    assert result.returncode == 2
    assert result.stderr.startswith("imdsrender: --metrics-addr: expected HOST:PORT, got '9100'")


# --- without prometheus-client -----------------------------------------------------

WITHOUT_PROM = ("import sys; sys.modules['prometheus_client'] = None\n"
                "from imdsrender.cli import main\n"
                "sys.exit(main(sys.argv[1:]))")


def run_without_prometheus(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_PROM, *args], capture_output=True,
                          text=True, cwd=ROOT, env=cli_env(), timeout=60)


def test_metrics_flags_without_prometheus_client_exit_2(tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    fixture = str(ROOT / "imdsrender" / "data" / "default-fixture.json")
    result = run_without_prometheus("--onetime", "--confdir", confdir.path, "--data", fixture,
                                    "--metrics-textfile", str(tmp_path / "m.prom"))
    assert result.returncode == 2
    assert result.stderr == ("imdsrender: --metrics-textfile: metrics need prometheus-client, "
                             "which is not installed; pip install 'imdsrender[metrics]'\n")
    assert not confdir.dest("a").exists()
    result = run_without_prometheus("--interval", "1h", "--confdir", confdir.path, "--data",
                                    fixture, "--metrics-addr", "127.0.0.1:0")
    assert result.returncode == 2
    assert "--metrics-addr: metrics need prometheus-client" in result.stderr
    # everything else works without it
    result = run_without_prometheus("--onetime", "--confdir", confdir.path, "--data", fixture)
    assert result.returncode == 0, result.stderr
    assert confdir.dest("a").read_text() == "i-0123456789abcdef0\n"


def test_json_logs_for_a_fatal_error(tmp_path: Path) -> None:
    closed = closed_port()
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    result = run_cli("--onetime", "--confdir", confdir.path, "--boot-wait", "200ms",
                     "--endpoint", f"http://127.0.0.1:{closed}", *JSON_LOGS)
    assert result.returncode == 3
    records = json_lines(result.stderr)
    assert records[-1]["level"] == "error"
    assert "no answer from IMDS" in records[-1]["msg"]
