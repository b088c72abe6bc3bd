"""Crash safety: SIGKILL the CLI at random moments while it writes many files.

Every destination must always hold a whole file, the old one or a new one,
never a mix or a truncated one, and the next run must clean up the stage
files a killed run left behind (and only those).  Prints the figure line
``writes attempted: N, kills: K, partial files: 0``.

The kill times come from a seeded random generator (``CRASH_SEED``, printed),
so a failure can be replayed.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Set

import pytest
import yaml

from imdsrender.emulator import Emulator
from tests.helpers import ROOT

RESOURCES = 60
LINES = 1500  # ~20 KB a file: a torn write cannot pass for a whole one
MIN_WRITES = 1000
MIN_KILLS = 20
TIME_BUDGET = 300.0  # seconds: a safety stop, not a performance bound
# When to kill, as fractions of one whole unkilled run measured first: start-up
# takes most of a run, and on a loaded machine it takes several times longer, so
# fixed seconds would kill every run before its first write.
KILL_WINDOW = (0.4, 1.3)
SEED = int(os.environ.get("CRASH_SEED", "7"))
TEMPLATE = ('{% for i in range(' + str(LINES) + ') %}'
            '{{ getv("/meta-data/tags/instance/gen") }} {{ i }}\n{% endfor %}')
OLD = b"the file as it was before any run\n"
# Names a careless cleanup might take for ours; they must survive every run.
FOREIGN = (".f000.imdsr-NOTOURS!.conf", ".f000.imdsr-1234567.conf", "f000.conf.bak",
           ".f000.conf.swp")


def content(gen: str) -> bytes:
    return "".join(f"{gen} {i}\n" for i in range(LINES)).encode()


def make_confdir(root: Path, attempts: Path) -> List[Path]:
    (root / "conf.d").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "templates" / "big.j2").write_text(TEMPLATE)
    out = root.parent / "out"
    out.mkdir()
    dests = [out / f"f{i:03d}.conf" for i in range(RESOURCES)]
    # check_cmd counts the attempt, then is slow: kills land inside it as well
    check = f"echo x >> {attempts}; sleep 0.005"
    resources = [{"src": "big.j2", "dest": str(d), "check_cmd": check} for d in dests]
    (root / "conf.d" / "big.yaml").write_text(yaml.safe_dump({"templates": resources}))
    for dest in dests:
        dest.write_bytes(OLD)
    for name in FOREIGN:
        (out / name).write_bytes(b"not imdsrender's\n")
    return dests


def start(confdir: Path, emulator: Emulator) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    return subprocess.Popen(
        [sys.executable, "-m", "imdsrender", "--onetime", "--confdir", str(confdir),
         "--endpoint", emulator.url, "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env)


def stage_files(out: Path) -> Set[str]:
    return {p.name for p in out.iterdir() if ".imdsr-" in p.name} - set(FOREIGN)


class Ledger:
    """What each destination may hold, and the generation each one last showed."""

    def __init__(self, dests: List[Path]) -> None:
        self.valid: Dict[bytes, int] = {OLD: -1}
        self.last = {d: -1 for d in dests}

    def allow(self, number: int, gen: str) -> None:
        self.valid[content(gen)] = number

    def partial(self) -> List[str]:
        """Destinations holding something no run ever rendered (or going backwards)."""
        bad = []
        for dest, last in self.last.items():
            number = self.valid.get(dest.read_bytes())
            if number is None or number < last:
                bad.append(dest.name)
            else:
                self.last[dest] = number
        return bad


def timed_run(confdir: Path, emulator: Emulator) -> float:
    """Seconds one unkilled run takes on this machine now (its files are rewritten later)."""
    begun = time.monotonic()
    proc = start(confdir, emulator)
    assert proc.wait(timeout=120) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    return time.monotonic() - begun


@pytest.mark.slow
def test_sigkill_never_leaves_a_partial_file(tmp_path: Path, capsys: pytest.CaptureFixture
                                             ) -> None:
    rng = random.Random(SEED)
    attempts = tmp_path / "attempts"
    attempts.touch()
    confdir = tmp_path / "confdir"
    dests = make_confdir(confdir, attempts)
    out = dests[0].parent
    ledger = Ledger(dests)
    kills = runs = strays = 0
    partial: List[str] = []
    started = time.monotonic()
    with Emulator() as emulator:
        emulator.set_value("/meta-data/tags/instance/gen", "gen-calibrate")
        ledger.allow(-1, "gen-calibrate")
        whole_run = timed_run(confdir, emulator)
        kill_window = (KILL_WINDOW[0] * whole_run, KILL_WINDOW[1] * whole_run)
        while time.monotonic() - started < TIME_BUDGET:
            writes = len(attempts.read_bytes().splitlines())
            if writes >= MIN_WRITES and kills >= MIN_KILLS:
                break
            gen = f"gen-{runs:04d}"
            emulator.set_value("/meta-data/tags/instance/gen", gen)
            ledger.allow(runs, gen)
            proc = start(confdir, emulator)
            time.sleep(rng.uniform(*kill_window))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            assert proc.stderr is not None
            stderr = proc.stderr.read().decode()
            proc.stderr.close()
            assert "Traceback" not in stderr and "internal error" not in stderr, stderr
            if proc.returncode != -signal.SIGKILL:
                assert proc.returncode == 0, stderr
            runs += 1
            strays += len(stage_files(out))
            partial += ledger.partial()

        time.sleep(0.1)  # let check_cmds orphaned by the last kill finish
        writes = len(attempts.read_bytes().splitlines())
        # the next, unkilled run cleans up and brings every file to the last generation
        final = start(confdir, emulator)
        assert final.wait(timeout=60) == 0
        assert final.stderr is not None
        final.stderr.close()

    with capsys.disabled():
        print(f"\nwrites attempted: {writes}, kills: {kills}, partial files: {len(partial)}"
              f"  (runs: {runs}, stray stage files seen after kills: {strays}, "
              f"CRASH_SEED={SEED})")
    assert partial == []
    assert writes >= MIN_WRITES and kills >= MIN_KILLS, "time budget ran out first"
    assert stage_files(out) == set()
    assert all((out / name).read_bytes() == b"not imdsrender's\n" for name in FOREIGN)
    last = content(f"gen-{runs - 1:04d}")
    assert all(dest.read_bytes() == last for dest in dests)


def test_ledger_flags_torn_and_stale_files(tmp_path: Path) -> None:
    """The check above would see a partial file: a truncated one, or one going backwards."""
    dests = [tmp_path / "a", tmp_path / "b"]
    ledger = Ledger(dests)
    ledger.allow(0, "gen-0000")
    ledger.allow(1, "gen-0001")
    dests[0].write_bytes(content("gen-0001"))
    dests[1].write_bytes(content("gen-0001")[:4096])
    assert ledger.partial() == ["b"]
    dests[0].write_bytes(content("gen-0000"))  # older than what it already showed
    dests[1].write_bytes(content("gen-0001"))
    assert ledger.partial() == ["a"]
