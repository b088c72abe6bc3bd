"""Running imdsrender as a user would (a fresh process each time) and measuring it.

Every figure comes from outside the process under test: wall time around
``subprocess.run``, request counts and the fetch span from the emulator's
request log, peak RSS from a wrapper process's ``RUSAGE_CHILDREN``.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, List, Optional, Sequence, Tuple

from imdsrender.emulator import Emulator

FLOOR = "import urllib3, jinja2, yaml"
HEAVY = ("urllib3", "jinja2", "yaml")
PYCACHE = os.path.join(tempfile.gettempdir(), f"imdsrender-bench-pycache-{os.getuid()}")
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def imdsrender_command() -> List[str]:
    """The console script next to this interpreter (what users run), else ``-m``."""
    script = Path(sys.executable).with_name("imdsrender")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "imdsrender"]


def child_env() -> Dict[str, str]:
    """The environment for measured processes.

    Nothing that would redirect or disable IMDS access; and byte-code caching
    on, in a cache of its own: with PYTHONDONTWRITEBYTECODE (set in CI and
    dev shells) imdsrender's modules would be compiled from source on every
    start while the floor's site-packages use their .pyc files, which is not
    how an installed package runs.
    """
    env = dict(os.environ)
    for name in ("IMDS_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                 "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_DISABLED",
                 "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    env["PYTHONPYCACHEPREFIX"] = PYCACHE
    return env


@dataclass(frozen=True)
class Result:
    """One finished command: wall seconds, exit code, stderr (for diagnostics)."""

    seconds: float
    code: int
    stderr: str


def run(command: Sequence[str], *, env: Optional[Dict[str, str]] = None) -> Result:
    started = time.perf_counter()
    done = subprocess.run(list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env or child_env(), check=False)
    seconds = time.perf_counter() - started
    return Result(seconds, done.returncode, done.stderr.decode("utf-8", "replace"))


def run_with_rss(command: Sequence[str]) -> Tuple[Result, int]:
    """Run through a wrapper whose only child is *command*: (result, peak RSS in KiB)."""
    wrapper = [sys.executable, "-c", _RSS_WRAPPER, *command]
    started = time.perf_counter()
    done = subprocess.run(wrapper, capture_output=True, env=child_env(), check=False)
    seconds = time.perf_counter() - started
    rss, code = done.stdout.split()
    return Result(seconds, int(code), done.stderr.decode("utf-8", "replace")), int(rss)


@dataclass(frozen=True)
class Usage:
    """One finished command measured by the kernel: wall, the child's own CPU, peak RSS."""

    seconds: float
    cpu: float        # user + sys seconds of the command's process (its children too)
    rss_kib: int
    code: int
    stderr: str


def spawn(command: Sequence[str], env: Dict[str, str]) -> Usage:
    """Run *command* (absolute path first) and reap it with ``wait4``.

    ``wait4`` returns the rusage of exactly that child, so the CPU figure is
    imdsrender's own, not the emulator's (a thread of this process) nor a
    wrapper's.
    """
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        actions = [(os.POSIX_SPAWN_DUP2, null.fileno(), 1),
                   (os.POSIX_SPAWN_DUP2, err.fileno(), 2)]
        pid = os.posix_spawn(command[0], list(command), env, file_actions=actions)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return Usage(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
                 os.waitstatus_to_exitcode(status), stderr)


def onetime(confdir: str, endpoint: str, *extra: str,
            cli: Optional[Sequence[str]] = None) -> List[str]:
    return [*(imdsrender_command() if cli is None else cli), "--onetime", "--confdir", confdir,
            "--endpoint", endpoint, "--log-level", "warning", *extra]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- what the emulator saw --------------------------------------------------

@dataclass(frozen=True)
class Wire:
    """The requests of one run as the emulator logged them."""

    count: int
    paths: Tuple[str, ...]        # GET paths without /latest, in arrival order
    span: float                   # first request in .. last request answered (s)

    def duplicates(self) -> FrozenSet[str]:
        """Paths requested more than once."""
        return frozenset(p for p, n in Counter(self.paths).items() if n > 1)


def wire(emulator: Emulator) -> Wire:
    records = sorted(emulator.requests, key=lambda r: r.started)
    paths = tuple(r.path.split("?", 1)[0][len("/latest"):] for r in records
                  if r.method == "GET")
    span = 0.0
    if records:
        span = records[-1].started - records[0].started + emulator.latency_ms / 1000.0
    return Wire(len(records), paths, span)


# --- imports ------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"^import time:\s+\d+\s+\|\s+(\d+)\s+\|\s+(\s*)(\S+)\s*$")


def imported_modules(args: Sequence[str], *, python: str = sys.executable,
                     cli: Optional[Sequence[str]] = None,
                     env: Optional[Dict[str, str]] = None) -> Dict[str, int]:
    """Module -> cumulative import µs, from ``python -X importtime``.

    *python*, *cli* and *env* select another installation (bench/installed.py);
    by default the console script next to this interpreter.
    """
    command = list(cli) if cli is not None else imdsrender_command()
    if command[0] == python:
        command = command[1:]
    done = subprocess.run([python, "-X", "importtime", *command, *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env or child_env(), check=False)
    modules: Dict[str, int] = {}
    for line in done.stderr.decode("utf-8", "replace").splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            modules[match.group(3)] = int(match.group(1))
    return modules


def heavy_imports(args: Sequence[str]) -> Tuple[str, ...]:
    """Which of urllib3/jinja2/yaml the command imports."""
    modules = imported_modules(args)
    return tuple(name for name in HEAVY if name in modules)


# --- interval mode --------------------------------------------------------------

@dataclass(frozen=True)
class IntervalResult:
    first_poll: int          # requests of the first (cold) poll
    warm_polls: int          # polls after the first
    warm_requests: int       # requests during those polls


def interval_polls(confdir: str, emulator: Emulator, *, seconds: float = 3.5,
                   interval: str = "1s", cache_ttl: str = "60s") -> IntervalResult:
    """Run ``--interval`` for a few polls, count requests after the first, then SIGTERM."""
    emulator.reset_counters()
    command = [*imdsrender_command(), "--interval", interval, "--imds-cache-ttl", cache_ttl,
               "--confdir", confdir, "--endpoint", emulator.url, "--log-level", "info"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=child_env())
    polls: List[int] = []  # emulator count at each "poll done"
    first = threading.Event()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if b"poll done" in line or b"poll failed" in line:
                polls.append(emulator.count())
                first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not first.wait(15):
            raise RuntimeError("interval mode did not finish its first poll in 15 s")
        time.sleep(seconds)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
        reader.join(5)
    return IntervalResult(polls[0], len(polls) - 1, emulator.count() - polls[0])
