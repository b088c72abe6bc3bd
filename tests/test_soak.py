"""Soak: the client and emulator under concurrency, and interval mode over 200 polls.

- 50 clients in parallel, IMDSv2 only, with 1-second tokens, all fetch the
  same tree over and over for a few seconds: every client converges on the
  right values (tokens renewed on time, a 401 at most retried once) and the
  emulator never fails a request.
- ``--interval`` with a 10 ms cache and a stream of seeded random faults for
  200 polls: no growth in open file descriptors or memory, no duplicate
  reloads, and every poll's outcome is a JSON log line.

Both are seeded (``SOAK_SEED``) and print what they saw.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

from imdsrender.config import ImdsSettings
from imdsrender.emulator import Emulator
from imdsrender.fetch import Plan, Snapshot, fetch
from imdsrender.fixture import FixtureSource, default_fixture
from imdsrender.imds.client import ImdsClient
from imdsrender.model import FetchLimits
from tests.helpers import ROOT, ConfDir

SEED = int(os.environ.get("SOAK_SEED", "11"))
CLIENTS = 50
CLIENT_SECONDS = 3.0
KEYS = ["/meta-data/instance-id", "/meta-data/placement/", "/meta-data/tags/instance/",
        "/meta-data/network/interfaces/macs/"]


def _client_rounds(url: str, plan: Plan) -> Tuple[int, List[Snapshot], int]:
    """One client fetching the plan again and again: (rounds, snapshots, token PUTs)."""
    puts = []

    class Counting:
        def request(self, *args: Any) -> None: ...
        def retry(self, *args: Any) -> None: ...
        def token_refresh(self) -> None:
            puts.append(1)

    client = ImdsClient(ImdsSettings(token_ttl=1, timeout=5.0, boot_wait=10.0), endpoint=url,
                        concurrency=2, environ={}, observer=Counting())  # type: ignore[arg-type]
    snapshots: List[Snapshot] = []
    end = time.monotonic() + CLIENT_SECONDS
    while not snapshots or time.monotonic() < end:
        snapshots.append(fetch(plan, client, FetchLimits(concurrency=2)))
    return len(snapshots), snapshots, len(puts)


@pytest.mark.slow
def test_fifty_v2_clients_with_one_second_tokens_converge(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture) -> None:
    plan = Plan.of([KEYS])
    expected = fetch(plan, FixtureSource(default_fixture()))
    caplog.set_level(logging.WARNING, logger="imdsrender.emulator")
    with Emulator() as emulator:
        with ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(lambda _: _client_rounds(emulator.url, plan),
                                    range(CLIENTS)))
        # still serving after the storm
        after = fetch(plan, ImdsClient(ImdsSettings(), endpoint=emulator.url, environ={}))
        statuses = [r.status for r in emulator.requests]
    rounds = sum(r[0] for r in results)
    failed = [s.errors for r in results for s in r[1] if s.errors]
    with capsys.disabled():
        print(f"\nsoak: {CLIENTS} clients, {rounds} rounds, {len(statuses)} requests, "
              f"{sum(r[2] for r in results)} tokens, {statuses.count(401)} answered 401, "
              f"{len(failed)} rounds with errors")
    for _, snapshots, puts in results:
        assert snapshots[-1].values == expected.values and not snapshots[-1].errors
        assert puts >= 2  # the 1 s tokens really were renewed
    assert failed == []
    assert after.values == expected.values and not after.errors
    assert not [r for r in caplog.records if r.name == "imdsrender.emulator"]
    assert set(statuses) <= {200, 401}


# --------------------------------------------------------------- interval soak

POLLS = 200
POOL = 8  # the CLI's default --concurrency: at most that many keep-alive sockets


class PollLog:
    """Reads the child's JSON log lines as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: List[Dict[str, Any]] = []
        self.bad: List[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            try:
                entry = json.loads(raw)
            except ValueError:
                with self._lock:
                    self.bad.append(raw)
                continue
            with self._lock:
                self.lines.append(entry)

    def polls(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [e for e in self.lines if e["msg"].startswith(("poll done", "poll failed"))]

    def wait_for_polls(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.polls()) < count:
            assert time.monotonic() < deadline, f"fewer than {count} polls logged in time"
            time.sleep(0.005)

    def join(self) -> None:
        self._thread.join(timeout=10)


def _fds(pid: int) -> Tuple[int, int]:
    """(sockets, everything else) open in *pid*.

    Sockets are the client's keep-alive pool and vary with it (up to
    --concurrency); files and pipes must not vary at all.
    """
    sockets = other = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except FileNotFoundError:
            continue  # closed while we looked
        if target.startswith("socket:"):
            sockets += 1
        else:
            other += 1
    return sockets, other


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _random_fault(rng: random.Random, emulator: Emulator) -> str:
    path = rng.choice(["/meta-data/instance-id", "/meta-data/tags/instance/",
                       "/meta-data/tags/instance/Name", "/meta-data/*"])
    kind = rng.choice(["503", "429", "reset", "short", "slow", "401", "burst"])
    times = rng.randint(1, 3)
    options: Dict[str, Any] = {
        "503": {"status": 503}, "429": {"status": 429, "headers": {"Retry-After": "0"}},
        "reset": {"reset": True}, "short": {"short_body": True}, "slow": {"delay": 0.5},
        "401": {"status": 401}, "burst": {"status": 503},
    }[kind]  # type: ignore[assignment]
    if kind == "burst":
        times = 6  # more than the retries: this poll fails for that key
    emulator.add_fault(path, times=times, **options)
    return kind


@pytest.mark.slow
def test_interval_soak_200_polls_with_random_faults(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    rng = random.Random(SEED)
    reloads = tmp_path / "reloads"
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n',
                     reload_cmd=f"cat {{{{ dest }}}} >> {reloads}")
    confdir.resource("tags.j2", '{% for k in ls("/meta-data/tags/instance/") %}{{ k }}='
                     '{{ getv("/meta-data/tags/instance/" ~ k, "?") }}\n{% endfor %}',
                     keys=["/meta-data/tags/instance/"])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    injected: List[str] = []
    gens: List[str] = []
    with Emulator() as emulator:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imdsrender", "--interval", "100ms", "--imds-cache-ttl",
             "10ms", "--timeout", "300ms", "--log-format", "json", *confdir.flags(emulator)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        log = PollLog(proc)
        try:
            log.wait_for_polls(20)
            base_fds, base_rss = _fds(proc.pid), _rss_kib(proc.pid)
            while len(log.polls()) < POLLS:
                assert proc.poll() is None, "the interval process died"
                log.wait_for_polls(len(log.polls()) + 1)  # at most one change a poll
                roll = rng.random()
                if roll < 0.1:
                    gens.append(f"i-gen{len(gens):03d}")
                    emulator.set_value("/meta-data/instance-id", gens[-1])
                elif roll < 0.4:
                    injected.append(_random_fault(rng, emulator))
            emulator.clear_faults()
            final = len(log.polls())
            log.wait_for_polls(final + 5)  # a few clean polls
            end_fds, end_rss = _fds(proc.pid), _rss_kib(proc.pid)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.join()
    polls = log.polls()
    outcomes = [p.get("status") for p in polls]
    lines = reloads.read_text().splitlines()
    with capsys.disabled():
        print(f"\ninterval soak: {len(polls)} polls ({outcomes.count('ok')} ok, "
              f"{outcomes.count('failed')} failed), {len(injected)} faults injected, "
              f"{len(gens)} value changes, {len(lines)} reloads; fds (sockets, other) "
              f"{base_fds}->{end_fds}, "
              f"RSS {base_rss}->{end_rss} KiB (SOAK_SEED={SEED})")
    assert log.bad == [], "every log line is JSON"
    assert not [e for e in log.lines if "traceback" in e or "internal error" in e["msg"]]
    assert len(polls) >= POLLS
    assert set(outcomes) == {"ok", "failed"}  # the faults did bite, and polls recovered
    assert end_fds[0] <= POOL + 1, f"sockets: {end_fds[0]}"  # the pool, and no more
    assert end_fds[1] <= base_fds[1] + 1, f"files grew {base_fds} -> {end_fds}"  # +lock file
    assert end_rss <= base_rss + 16 * 1024, f"RSS grew {base_rss} -> {end_rss} KiB"
    # no duplicate reloads: each reload shows a value not reloaded before, in order
    assert len(lines) == len(set(lines)), lines
    assert lines[0] == "i-0123456789abcdef0"
    assert lines[1:] == [g for g in gens if g in lines[1:]]
    assert lines[-1] == gens[-1] and confdir.dest("id").read_text() == gens[-1] + "\n"
    assert [p.name for p in confdir.out.iterdir() if p.name.startswith(".")] == []
