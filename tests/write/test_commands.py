"""write.commands: process groups, deadlines, bounded output, placeholders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imdsrender.write import (
    describe_failure,
    fill_placeholders,
    run_command,
)
from tests.write.helpers import wait_gone


def test_run_command_escalates_to_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # an ignored SIGTERM is inherited by the child: only SIGKILL ends it
    result = run_command(f"trap '' TERM; sleep 100 & echo $! > {pidfile}; wait", 0.3,
                         kill_grace=0.2)
    assert result.timed_out and not result.ok
    assert wait_gone(int(pidfile.read_text()))


def test_run_command_captures_bounded_output_and_inherits_env(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMDSR_TEST_VAR", "from-parent")
    result = run_command("head -c 100000 /dev/zero | tr '\\0' a; echo; "
                         "echo \"$IMDSR_TEST_VAR\" >&2; exit 7", 30)
    assert (result.returncode, result.timed_out, result.ok) == (7, False, False)
    assert len(result.stdout) == 4096 and result.stdout.endswith(b"aaa\n")
    assert result.stderr == b"from-parent\n"


def test_run_command_success_and_signal_description() -> None:
    assert run_command("exit 0", 30).ok
    killed = run_command("kill -9 $$", 30)
    assert killed.returncode == -9
    assert describe_failure("check_cmd", killed, 30, sensitive=False) == \
        "check_cmd killed by SIGKILL (no output)"


def test_run_command_does_not_wait_for_a_daemonised_child(tmp_path: Path) -> None:
    # a reload that leaves a background process holding stdout must still return
    pidfile = tmp_path / "daemon.pid"
    result = run_command(f"sleep 100 & echo $! > {pidfile}; echo started", 30)
    try:
        assert result.ok and not result.timed_out
        assert result.stdout == b"started\n"
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_fill_placeholders_passes_paths_as_arguments() -> None:
    cmd = fill_placeholders("check {{ src }} {{src}} '{{.src}}' --for \"{{ dest }}\"",
                            src="/etc/my app/.a.imdsr-00000000.conf", dest="/etc/x.conf")
    assert cmd == ('check "$1" "$1" "$1" --for "$2"',
                   ("/etc/my app/.a.imdsr-00000000.conf", "/etc/x.conf"))
