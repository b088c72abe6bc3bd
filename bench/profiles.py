"""Where the time goes: ``-X importtime`` per command path, and a per-thread cProfile.

Both run in the installed venv (bench/installed.py).  cProfile only sees
the thread that enabled it, and imdsrender fetches on worker threads, so
the profiling driver below wraps ``threading.Thread.run`` to give every
thread its own profiler and merges them all at exit.  The profiler's own
overhead inflates every figure (a run takes ~2x its CPU under it): read the
table as shares and calls per request, not as absolute costs.
"""

from __future__ import annotations

import os
import pstats
import subprocess
from typing import Dict, List, Sequence, Tuple

from . import measure
from .installed import Installation

HEAVY = ("urllib3", "jinja2", "yaml", "imdsrender.metrics", "imdsrender.config",
         "imdsrender.client")

_DRIVER = r"""
import cProfile, pstats, sys, threading, time
out, argv = sys.argv[1], sys.argv[2:]
profiles = []
original = threading.Thread.run
def run(self):
    profile = cProfile.Profile(time.thread_time)
    profiles.append(profile)
    profile.runcall(original, self)
threading.Thread.run = run
main = cProfile.Profile(time.thread_time)
profiles.append(main)
main.enable()
from imdsrender.cli import main as cli_main
code = cli_main(argv)
main.disable()
import imdsrender
assert "site-packages" in imdsrender.__file__, imdsrender.__file__
def merged(chosen):
    stats = pstats.Stats(chosen[0])
    for profile in chosen[1:]:
        stats.add(profile)
    return stats
merged(profiles).dump_stats(out)
workers = [p for p in profiles if p is not main]
if workers:
    merged(workers).dump_stats(out + ".workers")
merged([main]).dump_stats(out + ".main")
sys.exit(code)
"""


def import_times(inst: Installation, args: Sequence[str], runs: int) -> Dict[str, float]:
    """Module -> median cumulative import ms over *runs* runs of ``-X importtime``."""
    samples: Dict[str, List[float]] = {}
    for _ in range(runs):
        found = measure.imported_modules(args, python=inst.python, cli=inst.cli, env=inst.env())
        for name, micros in found.items():
            samples.setdefault(name, []).append(micros / 1000.0)
    return {name: measure.median(values) for name, values in samples.items()
            if len(values) * 2 > runs}


def top(modules: Dict[str, float], count: int = 20) -> List[Tuple[str, float]]:
    return sorted(modules.items(), key=lambda item: -item[1])[:count]


def heavy_present(modules: Dict[str, float]) -> Tuple[str, ...]:
    """Which of the modules worth naming (HEAVY) a path imports."""
    return tuple(name for name in HEAVY if name in modules)


def cpu_profile(inst: Installation, args: Sequence[str], out: str
                ) -> Dict[str, pstats.Stats]:
    """Run imdsrender *args* under the per-thread profiler.

    Stats by thread kind: "all", "workers" (the fetch threads: the
    per-request hot path) and "main" (start-up, planning, render, write).
    """
    # cwd: ``python -c`` puts the working directory first on sys.path, and
    # from the repository that would profile the source tree, not the wheel.
    done = subprocess.run([inst.python, "-c", _DRIVER, out, *args], capture_output=True,
                          text=True, env=inst.env(), cwd=inst.venv, check=False)
    if done.returncode != 0 or not os.path.exists(out):
        raise RuntimeError(f"profile of {' '.join(args)}: exit {done.returncode}: "
                           f"{done.stderr[-2000:]}")
    kinds = {"all": out, "workers": out + ".workers", "main": out + ".main"}
    return {kind: pstats.Stats(path) for kind, path in kinds.items() if os.path.exists(path)}


Row = Tuple[str, int, float, float]  # function, calls, own s, cumulative s


def hot_functions(stats: pstats.Stats, count: int = 25) -> List[Row]:
    """The functions with the most own time (tottime), any module."""
    rows: List[Row] = []
    for (path, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((_where(path, line, func), calls, own, cumulative))
    return sorted(rows, key=lambda row: -row[2])[:count]


def imdsrender_functions(stats: pstats.Stats, count: int = 15) -> List[Row]:
    """imdsrender's own functions by cumulative time (what each call pulls in)."""
    rows: List[Row] = []
    for (path, line, func), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if f"{os.sep}imdsrender{os.sep}" in path:
            rows.append((_where(path, line, func), calls, own, cumulative))
    return sorted(rows, key=lambda row: -row[3])[:count]


def _where(path: str, line: int, func: str) -> str:
    if path == "~":
        return func  # a builtin, e.g. <method 'recv_into' of '_socket.socket' objects>
    parts = path.split(os.sep)
    keep = parts.index("site-packages") + 1 if "site-packages" in parts else len(parts) - 1
    parts = parts[keep:]
    return f"{'/'.join(parts)}:{line} {func}"
