"""A --onetime run ends within its whole-run deadline (imds.run_timeout)."""

from __future__ import annotations

from pathlib import Path

from imdsrender.emulator import Emulator
from tests.helpers import ConfDir, run_cli

TEMPLATE = "".join(f'{{{{ getv("/meta-data/tags/instance/k{i}", "-") }}}}\n' for i in range(12))


def test_a_onetime_run_stops_at_its_run_timeout(tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("slow.j2", TEMPLATE)
    (confdir.path_obj / "imdsrender.yaml").write_text(
        "imds:\n  run_timeout: 1s\n  timeout: 5s\nconcurrency: 1\n")
    with Emulator(latency_ms=400) as emulator:
        result = run_cli("--onetime", *confdir.flags(emulator), timeout=60)
        requests = emulator.count()
    # 12 keys one at a time at 400 ms is ~5 s; the run deadline cuts it after ~1 s.
    assert result.returncode == 1, result.stderr
    assert "deadline" in result.stderr and "Traceback" not in result.stderr
    assert not confdir.dest("slow").exists()
    assert requests < 8
