"""Start-up, the unchanged run, the first run and CPU per request, as users run it.

Every command runs from the installed wheel (bench/installed.py) and is
reaped with ``wait4``, which gives its wall time and its own user+sys CPU.
Commands are interleaved round by round (round 0 is a warm-up, not
counted) so machine noise hits the floor and imdsrender alike, and each
figure is a median, shown as a ratio to the import floor
(``python -c "import urllib3, jinja2, yaml"``) and to ``python -c pass``
of the same venv measured in the same rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from imdsrender.emulator import Emulator

from . import measure, profiles
from .installed import Installation
from .measure import FLOOR, median
from .tables import Table
from .workloads import Built

PASS, FLOOR_NAME = "python -c pass", "floor: " + FLOOR
VERSION, CHECK = "imdsrender --version", "imdsrender check (seed)"
FIRST, UNCHANGED = "--onetime first run (seed, 0 ms)", "--onetime unchanged run (seed, 0 ms)"
CONFD_FIRST = "--onetime first run (confd 8 keys, 0 ms)"
CONFD_UNCHANGED = "--onetime unchanged run (confd 8 keys, 0 ms)"
TAGS, BASELINE = "--onetime 300-tag directory (0 ms)", "--onetime 3-tag directory (0 ms)"
QUIET_FLOOR = 0.117  # s: the import floor on the machine issue 16 measured (quiet)
# What single imports cost, so a path's budget can be checked against its needs
# (e.g. the unchanged run cannot be under 0.5x floor if urllib3 alone is more).
MODULES = ("urllib3", "jinja2", "yaml", "http.client", "socket, json", "imdsrender.cli",
           "imdsrender.metrics", "dataclasses", "logging", "argparse", "concurrent.futures")


@dataclass(frozen=True)
class Site:
    """A confdir and the emulator serving it."""

    built: Built
    emulator: Emulator


@dataclass
class Command:
    """One measured command; *fresh* removes the dests first (a first run)."""

    argv: List[str]
    site: Optional[Site] = None
    fresh: bool = False
    usages: List[measure.Usage] = field(default_factory=list)
    requests: int = 0

    def run(self, env: Dict[str, str]) -> measure.Usage:
        if self.site is not None:
            self.site.emulator.latency_ms = 0.0
            self.site.emulator.reset_counters()
            if self.fresh:
                self.site.built.clean_outputs()
        usage = measure.spawn(self.argv, env)
        if usage.code != 0:
            raise RuntimeError(f"{' '.join(self.argv)}: exit {usage.code}: {usage.stderr}")
        if self.site is not None:
            self.requests = self.site.emulator.count()
        return usage

    def wall(self) -> float:
        return median([u.seconds for u in self.usages])

    def cpu(self) -> float:
        return median([u.cpu for u in self.usages])


def onetime_argv(site: Site, cli: List[str]) -> List[str]:
    """``--onetime`` on *site* with its own state dir, so a second run is the unchanged run."""
    return measure.onetime(site.built.confdir, site.emulator.url, "--state-dir",
                           site.built.state, cli=cli)


def commands(inst: Installation, seed: Site, confd: Site, tags: Site, baseline: Site
             ) -> Dict[str, Command]:
    """The commands of one round, in the order they run."""
    def onetime(site: Site, fresh: bool) -> Command:
        return Command(onetime_argv(site, inst.cli), site, fresh)

    return {
        PASS: Command([inst.python, "-c", "pass"]),
        FLOOR_NAME: Command([inst.python, "-c", FLOOR]),
        VERSION: Command([*inst.cli, "--version"]),
        CHECK: Command([*inst.cli, "check", "--confdir", seed.built.confdir]),
        FIRST: onetime(seed, fresh=True),
        UNCHANGED: onetime(seed, fresh=False),  # right after FIRST: nothing changed
        CONFD_FIRST: onetime(confd, fresh=True),
        CONFD_UNCHANGED: onetime(confd, fresh=False),
        TAGS: onetime(tags, fresh=True),
        BASELINE: onetime(baseline, fresh=True),
        **{f"import {m}": Command([inst.python, "-c", f"import {m}"]) for m in MODULES},
    }


def measure_rounds(inst: Installation, table: Dict[str, Command], runs: int,
                   log: Callable[[str], None]) -> None:
    env = inst.env()
    for i in range(runs + 1):
        log(f"as installed: round {i}/{runs}")
        for command in table.values():
            usage = command.run(env)
            if i:  # round 0 warms the page cache; not counted
                command.usages.append(usage)


def ratio(value: float, bound: float) -> str:
    return "-" if bound <= 0 or math.isnan(value) else f"{value / bound:.2f}"


def startup_rows(table: Dict[str, Command], imports: Dict[str, Tuple[str, ...]]
                 ) -> List[Tuple[str, ...]]:
    floor, bare = table[FLOOR_NAME].wall(), table[PASS].wall()
    floor_cpu = table[FLOOR_NAME].cpu()
    rows: List[Tuple[str, ...]] = []
    for name, command in table.items():
        if name.startswith("import "):
            continue  # module_rows
        shown = imports.get(name)
        rows.append((name, f"{command.wall() * 1000:.0f}",
                     f"{min(u.seconds for u in command.usages) * 1000:.0f}",
                     ratio(command.wall(), floor), ratio(command.wall(), bare),
                     f"{command.cpu() * 1000:.0f}", ratio(command.cpu(), floor_cpu),
                     "-" if shown is None else (", ".join(shown) or "none")))
    return rows


def module_rows(table: Dict[str, Command]) -> List[Tuple[str, ...]]:
    """Each single import: wall, x floor, and its share of the floor's imports."""
    floor, bare = table[FLOOR_NAME], table[PASS]
    return [(name, f"{command.wall() * 1000:.0f}", ratio(command.wall(), floor.wall()),
             f"{(command.wall() - bare.wall()) * 1000:.0f}",
             ratio(command.wall() - bare.wall(), floor.wall() - bare.wall()),
             ratio(command.cpu(), floor.cpu()))
            for name, command in table.items() if name.startswith("import ")]


@dataclass(frozen=True)
class CpuPerRequest:
    """CPU per request of the 300-tag run: plain (all CPU / requests) and marginal."""

    requests: int
    total: float      # s, median CPU of the 300-tag run
    plain: float      # s per request: total / requests (start-up included)
    marginal: float   # s per extra request: (total - baseline) / (requests - baseline's)


def cpu_per_request(table: Dict[str, Command]) -> CpuPerRequest:
    tags, base = table[TAGS], table[BASELINE]
    extra = tags.requests - base.requests
    return CpuPerRequest(tags.requests, tags.cpu(), tags.cpu() / tags.requests,
                         (tags.cpu() - base.cpu()) / extra if extra > 0 else float("nan"))


def cpu_rows(table: Dict[str, Command]) -> List[Tuple[str, ...]]:
    floor = table[FLOOR_NAME]
    rows: List[Tuple[str, ...]] = []
    for name in (PASS, FLOOR_NAME, BASELINE, TAGS):
        command = table[name]
        per = command.cpu() / command.requests if command.requests else float("nan")
        rows.append((name, str(command.requests) if command.site else "-",
                     f"{command.wall() * 1000:.0f}", f"{command.cpu() * 1000:.1f}",
                     ratio(command.cpu(), floor.cpu()),
                     "-" if math.isnan(per) else f"{per * 1000:.3f}"))
    return rows


def budget_rows(table: Dict[str, Command], cpu: CpuPerRequest
                ) -> List[Tuple[str, str, bool]]:
    """(budget, this run, met) for the issue's start-up and CPU budgets."""
    floor, floor_cpu = table[FLOOR_NAME].wall(), table[FLOOR_NAME].cpu()

    def x(name: str) -> float:
        return table[name].wall() / floor

    def shown(name: str) -> str:
        return f"{x(name):.2f}x (CPU: {table[name].cpu() / floor_cpu:.2f}x)"

    return [
        ("unchanged timer run (seed, 0 ms) <= 0.5x floor", shown(UNCHANGED), x(UNCHANGED) <= 0.5),
        ("unchanged timer run (confd 8 keys, 0 ms) <= 0.5x floor", shown(CONFD_UNCHANGED),
         x(CONFD_UNCHANGED) <= 0.5),
        ("first run --onetime (seed, 0 ms) <= 1.1x floor", shown(FIRST), x(FIRST) <= 1.1),
        ("--version <= 0.5x floor", shown(VERSION), x(VERSION) <= 0.5),
        ("CPU per request, 300-tag directory at 0 ms <= 0.2 ms (all CPU / requests)",
         f"{cpu.plain * 1000:.3f} ms", cpu.plain <= 0.0002),
        ("same, marginal (CPU above the 3-tag run / extra requests)",
         f"{cpu.marginal * 1000:.3f} ms", cpu.marginal <= 0.0002),
    ]


def check_requests(table: Dict[str, Command], expected: Dict[str, int]) -> None:
    """The timed runs must have made the minimum of requests (else the figures lie)."""
    for name, want in expected.items():
        if table[name].requests != want:
            raise RuntimeError(f"{name}: {table[name].requests} requests, minimum {want}")



# --- the section: tables for the console and RESULTS.md -----------------------------

def section(inst: Installation, sites: Tuple[Site, Site, Site, Site],
            expected: Dict[str, int], runs: int, import_runs: int, profile_out: str,
            log: Callable[[str], None]) -> List[Table]:
    """Time, profile and judge the installed wheel (seed, confd, tags, baseline sites)."""
    seed, confd, tags, baseline = sites
    table = commands(inst, seed, confd, tags, baseline)
    measure_rounds(inst, table, runs, log)
    check_requests(table, expected)
    log("as installed: -X importtime per path")
    paths = import_paths(inst, seed, import_runs)
    imports = {name: profiles.heavy_present(modules) for name, modules in paths.items()}
    cpu = cpu_per_request(table)
    tables = [
        Table(f"As installed: wheel in a fresh venv, byte-code compiled at install "
              f"(medians of {runs} interleaved rounds)",
              ("command", "wall ms", "min ms", "x floor", "x pass", "CPU ms", "CPU x floor's",
               "imports (of the heavy ones)"), startup_rows(table, imports),
              [f"heavy ones: {', '.join(profiles.HEAVY)}",
               "CPU x floor's: the same ratio on user+sys CPU, which a busy machine "
               "distorts less than wall time",
               "unchanged run = the same --onetime right after the first run: dests "
               "exist and match, nothing is written"]),
        Table("CPU per request at 0 ms (user+sys of the imdsrender process via wait4)",
              ("command", "requests", "wall ms", "CPU ms", "CPU x floor's", "CPU/request ms"),
              cpu_rows(table),
              [f"plain: {cpu.plain * 1000:.3f} ms/request (all CPU of the 300-tag run, "
               f"start-up included, / {cpu.requests} requests)",
               f"marginal: {cpu.marginal * 1000:.3f} ms/request ((300-tag CPU - 3-tag "
               f"CPU) / extra requests): the fetch hot path alone",
               f"in floor units, which a busy machine distorts less: marginal = "
               f"{cpu.marginal / table[FLOOR_NAME].cpu():.4f} x the floor's CPU per request "
               f"= {cpu.marginal / table[FLOOR_NAME].cpu() * QUIET_FLOOR * 1000:.3f} ms on a "
               f"machine whose floor is {QUIET_FLOOR * 1000:.0f} ms (issue 16's)"]),
        Table("Import cost of single modules (python -c 'import X', same venv and rounds)",
              ("command", "wall ms", "x floor", "ms above pass", "share of the floor's imports",
               "CPU x floor's"),
              module_rows(table)),
    ]
    tables += import_tables(paths)
    log("as installed: cProfile of the 300-tag run")
    tables += profile_tables(inst, tags, cpu.requests, profile_out)
    tables.append(Table("Budgets as installed (issue 16)", ("budget", "this run", "verdict"),
                        [(name, figure, "met" if met else "NOT MET")
                         for name, figure, met in budget_rows(table, cpu)]))
    return tables


def import_paths(inst: Installation, seed: Site, runs: int) -> Dict[str, Dict[str, float]]:
    """Median ``-X importtime`` of each path; the unchanged run after a first run."""
    seed.built.clean_outputs()
    onetime = onetime_argv(seed, [])
    paths = {VERSION: profiles.import_times(inst, ["--version"], runs),
             CHECK: profiles.import_times(inst, ["check", "--confdir", seed.built.confdir],
                                          runs)}
    paths[FIRST] = profiles.import_times(inst, onetime, 1)  # the only run on clean dests
    paths[UNCHANGED] = profiles.import_times(inst, onetime, runs)
    return paths


def import_tables(paths: Dict[str, Dict[str, float]]) -> List[Table]:
    tables = []
    for name, modules in paths.items():
        own = sorted(m for m in modules if m.startswith("imdsrender"))
        tables.append(Table(f"-X importtime: {name} (cumulative ms, top 20)",
                            ("module", "cumulative ms"),
                            [(m, f"{v:.1f}") for m, v in profiles.top(modules)],
                            [f"imdsrender modules imported: {', '.join(own)}"]))
    return tables


def profile_tables(inst: Installation, tags: Site, requests: int, out: str) -> List[Table]:
    tags.built.clean_outputs()
    tags.emulator.latency_ms = 0.0
    stats = profiles.cpu_profile(
        inst, measure.onetime(tags.built.confdir, tags.emulator.url, cli=[]), out)

    def rows(found: List[profiles.Row]) -> List[Tuple[str, ...]]:
        return [(where, str(calls), f"{calls / requests:.1f}", f"{own * 1000:.1f}",
                 f"{own * 1e6 / requests:.1f}", f"{cumulative * 1e6 / requests:.1f}")
                for where, calls, own, cumulative in found]

    header = ("function", "calls", "calls/request", "own ms", "own us/request",
              "cumulative us/request")
    note = (f"one --onetime of the 300-tag directory at 0 ms ({requests} requests) under "
            "cProfile on every thread, clocked by each thread's own CPU time; the "
            "profiler inflates each cost: read shares and calls per request")
    return [Table("cProfile, fetch worker threads (the per-request hot path): most own time",
                  header, rows(profiles.hot_functions(stats["workers"])), [note]),
            Table("cProfile, main thread (start-up, plan, render, write): most own time",
                  header, rows(profiles.hot_functions(stats["main"], 15)), [note]),
            Table("cProfile, every thread: imdsrender functions by cumulative time", header,
                  rows(profiles.imdsrender_functions(stats["all"], 20)), [note])]
