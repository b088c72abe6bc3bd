"""Interval mode: values that change between polls, with a failing poll in between.

The matrix rows run ``--onetime``; this one keeps one ``--interval`` process
alive while the test changes IMDS under it, step by step, and checks after
each step what is on disk and what was reloaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

from imdsrender.emulator import Emulator
from tests.helpers import ROOT, ConfDir

from .harness import stray_files


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _polls(log_path: Path) -> List[dict]:
    """The poll outcome lines logged so far (a line still being written is skipped)."""
    entries = []
    for line in log_path.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            entries.append(json.loads(line))
    return [e for e in entries if e["msg"].startswith(("poll done", "poll failed"))]


def test_values_changing_between_polls(tmp_path: Path) -> None:
    reloads = tmp_path / "reloads"
    log_path = tmp_path / "log"
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", 'id={{ getv("/meta-data/instance-id") }}\n',
                     reload_cmd=f"cat {{{{ dest }}}} >> {reloads}")
    dest = confdir.dest("id")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    with Emulator() as emulator, log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imdsrender", "--interval", "100ms", "--imds-cache-ttl",
             "10ms", "--log-format", "json", *confdir.flags(emulator)],
            stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT, env=env)
        try:

            _wait(lambda: dest.exists() and dest.read_text() == "id=i-0123456789abcdef0\n",
                  "the first render")
            emulator.set_value("/meta-data/instance-id", "i-second")
            _wait(lambda: dest.read_text() == "id=i-second\n", "the changed value")

            # IMDS fails for good: polls fail, the file keeps the last good value
            emulator.add_fault("/meta-data/instance-id", status=503)
            emulator.set_value("/meta-data/instance-id", "i-unseen")
            def failed() -> int:
                return sum(p["status"] == "failed" for p in _polls(log_path))

            failed_before = failed()
            _wait(lambda: failed() >= failed_before + 3, "failing polls")
            assert dest.read_text() == "id=i-second\n"

            # IMDS recovers with yet another value: written and reloaded once
            emulator.clear_faults()
            emulator.set_value("/meta-data/instance-id", "i-third")
            _wait(lambda: dest.read_text() == "id=i-third\n", "recovery")
            settled = len(_polls(log_path))
            _wait(lambda: len(_polls(log_path)) >= settled + 5, "a few quiet polls")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert reloads.read_text() == "id=i-0123456789abcdef0\nid=i-second\nid=i-third\n"
    assert {p["status"] for p in _polls(log_path)} == {"ok", "failed"}
    assert stray_files(confdir.out) == []
    assert "Traceback" not in log_path.read_text()
