"""``imdsrender emulator`` end to end (a subprocess on 127.0.0.1), and its flag parsing."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
import sys
from typing import Iterator, List, Tuple

import pytest

from imdsrender.emulator import SCENARIOS, parse_fault_spec
from imdsrender.errors import UsageError

from ..helpers import run_cli
from .test_core import TTL_HEADER

LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+) ")


class Served:
    """A running ``imdsrender emulator`` and the port it chose."""

    def __init__(self, proc: subprocess.Popen, port: int) -> None:
        self.proc = proc
        self.port = port

    def call(self, method: str, path: str, **headers: str) -> Tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def stop(self) -> Tuple[int, List[str]]:
        """SIGTERM; (exit code, stderr lines)."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, err.splitlines()


@pytest.fixture
def serve_cli() -> Iterator:
    started: List[subprocess.Popen] = []

    def start(*flags: str) -> Served:
        proc = subprocess.Popen([sys.executable, "-m", "imdsrender", "emulator", "--port", "0",
                                 *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        started.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = LISTENING.search(line)
        assert match, line
        return Served(proc, int(match.group(1)))

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serves_faults_and_a_scenario_and_logs_each_request_without_tokens(serve_cli) -> None:
    served = serve_cli("--host", "127.0.0.1", "--log", "--scenario", "tags-disabled",
                       "--fault", "/meta-data/instance-id=503:1")
    status, tok = served.call("PUT", "/latest/api/token", **{TTL_HEADER: "60"})
    assert status == 200
    headers = {"X-aws-ec2-metadata-token": tok.decode()}
    assert served.call("GET", "/latest/meta-data/instance-id", **headers)[0] == 503
    assert served.call("GET", "/latest/meta-data/instance-id", **headers)[0] == 200
    assert served.call("GET", "/latest/meta-data/tags/instance/", **headers)[0] == 404
    code, lines = served.stop()
    assert code == 0
    logged = [line for line in lines if not line.startswith(("INFO", "imdsrender:"))]
    # a line is written once its answer is sent, so two may swap places
    assert sorted(line.rsplit(" ", 1)[0] for line in logged) == [
        "GET /latest/meta-data/instance-id 200",
        "GET /latest/meta-data/instance-id 503",
        "GET /latest/meta-data/tags/instance/ 404",
        "PUT /latest/api/token 200",
    ]
    assert all(re.fullmatch(r"\d+\.\dms", line.rsplit(" ", 1)[1]) for line in logged)
    assert tok.decode() not in "\n".join(lines)


def test_without_log_nothing_per_request_is_printed(serve_cli) -> None:
    served = serve_cli()
    assert served.call("GET", "/latest/meta-data/instance-id")[0] == 401
    code, lines = served.stop()
    assert code == 0 and not [line for line in lines if "instance-id" in line]


def test_a_held_request_does_not_delay_shutdown(serve_cli) -> None:
    served = serve_cli("--scenario", "hop-limit", "--log")
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=0.5)
    conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: "60"})
    with pytest.raises(OSError):
        conn.getresponse()
    conn.close()
    code, lines = served.stop()           # communicate() would time out if the hold blocked
    assert code == 0
    assert any(line.startswith("PUT /latest/api/token - ") for line in lines)


@pytest.mark.parametrize(("flags", "message"), [
    (["--scenario", "nope"], "--scenario nope: unknown scenario; choose one of hop-limit"),
    (["--fault", "/x=999"], "--fault /x=999: status '999' is not an HTTP status"),
    (["--fault", "/x"], "--fault /x: expected PATH=STATUS[:COUNT]"),
    (["--fault", "/x=503:0"], "--fault /x=503:0: count '0' is not a positive number"),
    (["--host", "localhost.example"], "--host localhost.example: not an IP address"),
    (["--port", "70000"], "--port: expected a whole number 0..65535, got '70000'"),
    (["--latency-ms", "-5"], "--latency-ms -5.0: not a latency"),
    (["--host", "192.0.2.1", "--port", "0"], "cannot listen on 192.0.2.1:0"),
])
def test_bad_values_are_one_line_exit_2(flags: List[str], message: str) -> None:
    result = run_cli("emulator", *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("imdsrender: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_help_names_every_scenario() -> None:
    result = run_cli("emulator", "--help")
    text = " ".join(result.stdout.split())
    assert all(name in text for name in SCENARIOS)


@pytest.mark.parametrize(("spec", "parsed"), [
    ("/meta-data/instance-id=503", ("/meta-data/instance-id", 503, None)),
    ("/api/token=403:2", ("/api/token", 403, 2)),
    ("/a=b=500", ("/a=b", 500, None)),
    ("*=429:1", ("*", 429, 1)),
])
def test_fault_specs(spec: str, parsed: Tuple[str, int, object]) -> None:
    assert parse_fault_spec(spec) == parsed


@pytest.mark.parametrize("spec", ["", "=500", "x=500", "/x=", "/x=99", "/x=600", "/x=5O3",
                                  "/x=500:", "/x=500:-1", "/x=500:two", "/x=\u00b2\u00b2\u00b2"])
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_fault_spec(spec)
