"""Flags and inputs at their edges (issue 14): each is exit 0 or one line with exit 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import pytest

from imdsrender.cli.parser import COMMANDS
from imdsrender.emulator import Emulator
from tests.helpers import ConfDir, run_cli


def assert_one_line_usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 2, no traceback, one line on stderr that starts with 'imdsrender:'."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("imdsrender: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("command", [[]] + [[name] for name in COMMANDS if name != "main"])
def test_help_of_every_command_exits_0(command: List[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("usage: imdsrender")


@pytest.mark.parametrize("flags, words", [
    (["--onetime", "--timeout", "0"], ["--timeout", "timeout must be 0.001s..3600s, not 0s"]),
    (["--onetime", "--timeout", "3000000h"], ["--timeout", "not 1.08e+10s"]),
    (["--onetime", "--boot-wait", "3000000h"], ["--boot-wait", "not 1.08e+10s"]),
    (["--interval", "0"], ["--interval", "interval must be 0.1s..604800s, not 0s"]),
    (["--interval", "50ms"], ["--interval", "not 0.05s"]),
    (["--interval", "3000000h"], ["--interval", "not 1.08e+10s"]),
    (["--interval", "1m", "--imds-cache-ttl", "3000000h"], ["--imds-cache-ttl", "cache ttl"]),
])
def test_duration_flags_out_of_bounds_are_one_line_exit_2(confdir: ConfDir, flags: List[str],
                                                          words: List[str]) -> None:
    confdir.resource("a.j2", "x\n")
    assert_one_line_usage_error(run_cli("--confdir", confdir.path, *flags, timeout=20), *words)


def test_json_mode_reports_an_internal_error_as_json(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    from imdsrender import cli
    from imdsrender.cli import parser

    class Broken:
        @staticmethod
        def run(args: object) -> int:
            raise RuntimeError("a bug")

    monkeypatch.setattr(parser, "load_command", lambda name: Broken)
    assert cli.main(["--log-format", "json", "--onetime"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["status"] == "failed"
    assert entry["msg"].startswith("internal error: RuntimeError: a bug; rerun with")


def test_interval_poll_that_raises_a_bug_is_logged_counted_and_the_loop_goes_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import argparse
    import threading

    from imdsrender.cli import interval
    from imdsrender.cli.pipeline import Job
    from imdsrender.metrics import Recorder
    from imdsrender.model import Settings

    class Counting(Recorder):
        errors: List[str] = []

        def run_finished(self, outcomes: object, seconds: float, cache: object = None,
                         error: object = None) -> None:
            self.errors.append(repr(error))

    stop, reread = threading.Event(), threading.Event()
    polls: List[int] = []

    def fetch(job: object, source: object) -> None:
        polls.append(1)
        if len(polls) == 3:
            stop.set()
        raise RuntimeError("poll bug")

    monkeypatch.setattr(interval, "fetch_snapshot", fetch)
    monkeypatch.setattr(interval, "open_source",
                        lambda job, observer=None, one_run=True: object())
    metrics = Counting()
    args = argparse.Namespace(interval=0.01)
    job = Job(Settings(), (), "", data="unused")
    sources = interval._Sources(metrics)
    guard = threading.Timer(30, stop.set)  # a loop that never reaches fetch must not hang CI
    guard.start()
    try:
        assert interval._poll_loop(job, args, metrics, sources, stop, reread) == 0
    finally:
        guard.cancel()
    assert len(polls) == 3
    failed = [r.getMessage() for r in caplog.records if "poll failed" in r.getMessage()]
    assert failed == ["poll failed: internal error: RuntimeError: poll bug"] * 3
    assert metrics.errors == [repr(RuntimeError("poll bug"))] * 3  # each poll counted


@pytest.mark.parametrize("field, words", [
    ('dest: "/x/b\\0c"', ["b.yaml:3: dest contains a NUL byte"]),
    ('owner: "ro\\0ot"', ["b.yaml:4: owner contains a NUL byte"]),
    ("owner: " + "9" * 5000, ["b.yaml:4: number too long"]),
    ("owner: '" + "9" * 5000 + "'", ["b.yaml:4: unknown user '999"]),
    ('check_cmd: "true\\0"', ["b.yaml:4: check_cmd contains a NUL byte"]),
], ids=["nul-dest", "nul-owner", "long-int-owner", "long-str-owner", "nul-check-cmd"])
def test_check_refuses_unusable_values_with_file_and_line(confdir: ConfDir, field: str,
                                                          words: List[str]) -> None:
    confdir.resource("a.j2", "x\n")
    (confdir.path_obj / "conf.d" / "b.yaml").write_text(
        f"templates:\n- src: a.j2\n  dest: {confdir.dest('b')}\n  {field}\n".replace(
            f"  dest: {confdir.dest('b')}\n  dest:", "  dest:"))
    for command in (["check"], ["--onetime", "--data", "/nonexistent"]):
        result = run_cli(*command, "--confdir", confdir.path)
        assert_one_line_usage_error(result, *words)
        assert len(result.stderr) < 300


@pytest.mark.parametrize("target, words", [
    ("missing/x.json", ["--output", "does not exist"]),
    (".", ["--output", "is a directory"]),
])
def test_snapshot_output_that_cannot_be_written_is_exit_2(tmp_path: Path, target: str,
                                                          words: List[str]) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text('{"/meta-data/instance-id": "i-1"}')
    result = run_cli("snapshot", "/meta-data/instance-id", "--data", str(fixture),
                     "-o", str(tmp_path / target))
    assert_one_line_usage_error(result, *words)


@pytest.mark.parametrize("command", [["snapshot", "/meta-data/a"], ["--onetime"], ["check"]])
def test_deeply_nested_fixture_is_exit_2(confdir: ConfDir, tmp_path: Path,
                                         command: List[str]) -> None:
    confdir.resource("a.j2", "x\n")
    fixture = tmp_path / "deep.json"
    fixture.write_text('{"/meta-data/a": ' + "[" * 100000 + "]" * 100000 + "}")
    result = run_cli(*command, "--confdir", confdir.path, "--data", str(fixture))
    assert_one_line_usage_error(result, "deep.json: JSON nested too deeply")


@pytest.mark.parametrize("concurrency, most", [("16", 16), ("2", 2)])
def test_get_honours_concurrency_above_and_below_the_default(
        make_emulator: Callable[..., Emulator], concurrency: str, most: int) -> None:
    emulator = make_emulator(latency_ms=300)  # slow answers, so requests overlap
    result = run_cli("get", "--concurrency", concurrency, "--endpoint", emulator.url,
                     "/meta-data/")
    assert result.returncode == 0, result.stderr
    assert emulator.max_in_flight == most  # 16 is past the default cap of 8


def test_sighup_applies_a_new_endpoint(make_emulator: Callable[..., Emulator],
                                       confdir: ConfDir) -> None:
    from tests.test_cli_run import ROOT, wait_for

    first, second = make_emulator(), make_emulator()
    second.set_value("/meta-data/instance-id", "i-second")
    settings = confdir.path_obj / "imdsrender.yaml"
    settings.write_text(f"imds:\n  endpoint: {first.url}\ncache_ttl: 0s\n")
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    proc = subprocess.Popen([sys.executable, "-m", "imdsrender", "--interval", "100ms",
                             "--confdir", confdir.path], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=env)
    try:
        wait_for(confdir.dest("id").exists, "the first render")
        settings.write_text(f"imds:\n  endpoint: {second.url}\ncache_ttl: 0s\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: confdir.dest("id").read_text() == "i-second\n",
                 "a poll of the new endpoint")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "settings changed: new IMDS client and cache" in stderr


def _group_members(pgid: int) -> List[int]:
    """Live (not zombie) processes in process group *pgid*, read from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_onetime_kills_the_check_and_removes_the_stage_file(
        emulator: Emulator, confdir: ConfDir, tmp_path: Path, sig: int, code: int) -> None:
    from tests.test_cli_run import ROOT, wait_for

    pidfile = tmp_path / "check.pid"
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n',
                     check_cmd=f"echo $$ > {pidfile}; sleep 60; true")
    proc = subprocess.Popen([sys.executable, "-m", "imdsrender", "--onetime",
                             *confdir.flags(emulator)], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "",
                 "the check command")
        pgid = int(pidfile.read_text())
        assert _group_members(pgid)  # the check (its own session) is running
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == code
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
    wait_for(lambda: not _group_members(pgid), "the check's process group to be gone")
    assert list(confdir.out.iterdir()) == []  # no stage file, no dest


@pytest.mark.parametrize("argv", [
    ["--log-format", "json", "--onetime", "--timeout", "0"],
    ["get", "--log-format=json", "--concurrency", "x", "/instance-id"],
    ["--log-format", "json", "--onetime", "--confdir", "/nonexistent-confdir", "--config",
     "/nonexistent.yaml"],
])
def test_json_mode_refused_flags_are_json_too(argv: List[str]) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    entry = json.loads(lines[0])
    assert entry["level"] == "error" and entry["status"] == "failed"
