"""The benchmark runner: ``python -m bench [--requests-only] [--markdown FILE]``.

Sections (each a table of medians, with ratios to the bound it is judged by):

1. requests per run against the theoretical minimum (the one hard check:
   the exit status is 1 when any workload makes more requests than that);
2. wall time and fetch span at 0/1/10/50 ms emulated latency against the
   sequential bound (requests x latency) and the parallel bounds (critical
   path x latency; and with the client's concurrency cap);
3. start-up of ``--version``, ``check`` and ``--onetime`` against the import
   floor ``python -c "import urllib3, jinja2, yaml"`` measured in the same run;
4. scale: 1,000 resources x 300 shared keys, wall time and peak RSS;
5. interval mode: requests per poll with a warm cache;
6. as installed (bench/asusers.py, also alone with ``--as-installed``): the
   wheel in a fresh venv, byte-code compiled; start-up, the first and the
   unchanged run, CPU per request, ``-X importtime`` per path and a cProfile
   of the 300-tag run, judged against issue 16's budgets.

Commands are interleaved run by run, so machine noise hits every command
alike, and only medians are reported.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from imdsrender.emulator import Emulator

from . import asusers, installed, measure
from .measure import FLOOR, median
from .tables import Table
from .workloads import (
    Built,
    Workload,
    materialise,
    request_workloads,
    scale,
    seed_instance,
    tag_directory,
)

LATENCIES = (0.0, 1.0, 10.0, 50.0)
DEFAULT_CONCURRENCY = 8  # imdsrender's default (Settings.concurrency)
WIDE_CONCURRENCY = (16, 64)  # extra rows: what a wider --concurrency buys


@dataclass(frozen=True)
class Budget:
    """One budget from the issue and whether this run met it."""

    name: str
    figure: str
    met: bool


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f}"


def ratio(value: float, bound: float) -> str:
    return "-" if bound <= 0 or math.isnan(value) else f"{value / bound:.2f}"


# --- 1. requests ----------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A workload on disk with its own emulator, ready to run."""

    workload: Workload
    built: Built
    emulator: Emulator
    extra: Tuple[str, ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.workload.name

    def run_once(self) -> Tuple[measure.Result, measure.Wire]:
        """One ``--onetime`` run writing every file (outputs removed first)."""
        self.emulator.reset_counters()
        self.built.clean_outputs()
        result = measure.run(measure.onetime(self.built.confdir, self.emulator.url, *self.extra))
        return result, measure.wire(self.emulator)


def check_requests(case: Case, result: measure.Result, seen: measure.Wire) -> Tuple[str, bool]:
    """(verdict, ok): the count must equal the minimum and the run must succeed."""
    expected = case.workload.expectation()
    if result.code != 0:
        return f"FAILED: exit {result.code}: {result.stderr.strip()[-300:]}", False
    dupes = sorted(seen.duplicates())
    extra = sorted(set(seen.paths) - expected.paths)
    missing = sorted(expected.paths - set(seen.paths))
    details = "; ".join(f"{what}: {', '.join(paths[:5])}" for what, paths in
                        (("twice", dupes), ("unneeded", extra), ("not fetched", missing)) if paths)
    if seen.count > expected.requests:
        return f"EXCEEDS by {seen.count - expected.requests} ({details})", False
    if seen.count < expected.requests:
        return f"BELOW minimum ({details}): bench or fetcher bug", False
    return "= minimum", True


def requests_table(cases: Sequence[Case]) -> Tuple[Table, bool]:
    table = Table("Requests per run vs the theoretical minimum",
                  ("workload", "resources", "requests", "minimum", "verdict"))
    ok = True
    for case in cases:
        result, seen = case.run_once()
        verdict, good = check_requests(case, result, seen)
        ok = ok and good
        table.rows.append((case.name, str(case.workload.resource_count), str(seen.count),
                           str(case.workload.expectation().requests), verdict))
    table.notes.append("minimum = 1 token PUT + one GET per distinct leaf + one per listing "
                       "walked, computed from the emulator's fixture by bench/minimum.py")
    return table, ok


# --- 2. latency -------------------------------------------------------------------

@dataclass
class Timings:
    walls: List[float] = field(default_factory=list)
    spans: List[float] = field(default_factory=list)
    requests: int = 0


def latency_table(cases: Sequence[Case], runs: int, latencies: Sequence[float],
                  log: Callable[[str], None]) -> Tuple[Table, Dict[Tuple[str, float], Timings]]:
    timings: Dict[Tuple[str, float], Timings] = {}
    for case in cases:  # warm-up (byte-code cache), not counted
        case.emulator.latency_ms = 0.0
        case.run_once()
    for i in range(runs):
        log(f"latency: run {i + 1}/{runs}")
        for latency in latencies:
            for case in cases:
                case.emulator.latency_ms = latency
                result, seen = case.run_once()
                if result.code != 0:
                    raise RuntimeError(f"{case.name}: exit {result.code}: {result.stderr}")
                slot = timings.setdefault((case.name, latency), Timings())
                slot.walls.append(result.seconds)
                slot.spans.append(seen.span)
                slot.requests = seen.count
    table = Table(f"Latency: wall time and fetch span (medians of {runs})",
                  ("workload", "latency ms", "requests", "wall ms", "seq bound ms", "wall/seq",
                   "fetch ms", "depth bound ms", "fetch/depth", "C bound ms", "fetch/C"))
    for case in cases:
        concurrency = _concurrency(case)
        for latency in latencies:
            slot = timings[(case.name, latency)]
            expected = case.workload.expectation()
            seconds = latency / 1000.0
            sequential = slot.requests * seconds
            depth_bound = expected.depth * seconds
            c_bound = max(expected.depth,
                          1 + math.ceil((expected.requests - 1) / concurrency)) * seconds
            wall, span = median(slot.walls), median(slot.spans)
            table.rows.append((case.name, f"{latency:g}", str(slot.requests), ms(wall),
                               ms(sequential), ratio(wall, sequential), ms(span),
                               ms(depth_bound), ratio(span, depth_bound), ms(c_bound),
                               ratio(span, c_bound)))
    table.notes += [
        "wall = the whole `imdsrender --onetime` process, start-up included",
        "fetch = first request in to last answer out, from the emulator's log",
        "seq bound = requests x latency (a one-at-a-time client such as confd)",
        "depth bound = critical path x latency (token, then each directory level)",
        f"C bound = with at most C requests in flight (C = --concurrency, default "
        f"{DEFAULT_CONCURRENCY}): max(depth, 1 + ceil(GETs / C)) x latency",
    ]
    return table, timings


def _concurrency(case: Case) -> int:
    if "--concurrency" in case.extra:
        return int(case.extra[case.extra.index("--concurrency") + 1])
    return DEFAULT_CONCURRENCY


# --- 3. start-up --------------------------------------------------------------------

def startup_table(seed: Case, runs: int, log: Callable[[str], None]
                  ) -> Tuple[Table, Dict[str, float]]:
    seed.emulator.latency_ms = 0.0
    cli = measure.imdsrender_command()
    commands: Dict[str, List[str]] = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "floor: " + FLOOR: [sys.executable, "-c", FLOOR],
        "imdsrender --version": [*cli, "--version"],
        "imdsrender check": [*cli, "check", "--confdir", seed.built.confdir],
        "imdsrender --onetime (seed, 0 ms)": measure.onetime(seed.built.confdir,
                                                             seed.emulator.url),
    }
    walls: Dict[str, List[float]] = {name: [] for name in commands}
    for i in range(runs + 1):  # run 0 warms the byte-code and page caches; not counted
        log(f"start-up: run {i}/{runs}")
        for name, command in commands.items():
            if "--onetime" in command:
                seed.built.clean_outputs()
            result = measure.run(command)
            if result.code != 0:
                raise RuntimeError(f"{name}: exit {result.code}: {result.stderr}")
            if i:
                walls[name].append(result.seconds)
    medians = {name: median(values) for name, values in walls.items()}
    floor = medians["floor: " + FLOOR]
    imports = {
        "imdsrender --version": measure.heavy_imports(["--version"]),
        "imdsrender check": measure.heavy_imports(["check", "--confdir", seed.built.confdir]),
    }
    table = Table(f"Start-up, editable install with its own byte-code cache (medians of {runs}, "
                  "interleaved; the installed-wheel figures are the 'As installed' tables)",
                  ("command", "median ms", "min ms", "ratio to floor", "imports of "
                   "urllib3/jinja2/yaml"))
    for name in commands:
        shown = imports.get(name)
        table.rows.append((name, ms(medians[name]), ms(min(walls[name])),
                           ratio(medians[name], floor),
                           "-" if shown is None else (", ".join(shown) or "none")))
    return table, medians


def import_profile(seed: Case, top: int = 12) -> Table:
    """The biggest cumulative import costs of ``--onetime`` (python -X importtime)."""
    modules = measure.imported_modules(["--onetime", "--confdir", seed.built.confdir,
                                        "--endpoint", seed.emulator.url,
                                        "--log-level", "warning"])
    biggest = sorted(modules.items(), key=lambda item: -item[1])[:top]
    table = Table("Import profile of --onetime, editable install (one run, -X importtime, "
                  "cumulative)",
                  ("module", "cumulative ms"))
    table.rows += [(name, f"{micros / 1000:.1f}") for name, micros in biggest]
    return table


# --- 4. scale -------------------------------------------------------------------------

def scale_table(root: str, runs: int, log: Callable[[str], None]
                ) -> Tuple[Table, Dict[str, Tuple[float, float]], Tuple[str, bool]]:
    workload = scale()
    built = materialise(workload, os.path.join(root, "scale"))
    figures: Dict[str, List[Tuple[float, int]]] = {"write all": [], "all unchanged": []}
    verdict: Tuple[str, bool] = ("not run", False)
    with Emulator(dict(workload.fixture)) as emulator:
        case = Case(workload, built, emulator)
        for i in range(runs):
            log(f"scale: run {i + 1}/{runs}")
            emulator.reset_counters()
            built.clean_outputs()
            command = measure.onetime(built.confdir, emulator.url)
            if i == 0:  # warm-up (byte-code cache), not counted
                measure.run(command)
                emulator.reset_counters()
                built.clean_outputs()
            for name in figures:
                result, rss = measure.run_with_rss(command)
                if result.code != 0:
                    raise RuntimeError(f"scale: exit {result.code}: {result.stderr}")
                figures[name].append((result.seconds, rss))
                if i == 0 and name == "write all":
                    verdict = check_requests(case, result, measure.wire(emulator))
    table = Table(f"Scale: {workload.resource_count} resources x 300 shared keys "
                  f"(medians of {runs})", ("run", "wall s", "peak RSS MB"))
    medians: Dict[str, Tuple[float, float]] = {}
    for name, values in figures.items():
        wall = median([v[0] for v in values])
        megabytes = median([v[1] / 1024 for v in values])
        medians[name] = (wall, megabytes)
        table.rows.append((name, f"{wall:.2f}", f"{megabytes:.0f}"))
    table.notes += ["one template with 300 literal getv() calls; keys derived from it; "
                    "1,000 resources of it, each its own dest",
                    "write all: every dest missing (a first boot); all unchanged: the "
                    "same run again (render and compare, nothing written)",
                    f"requests of the first run: {verdict[0]}"]
    return table, medians, verdict


# --- 5. interval ------------------------------------------------------------------------

def interval_table(seed: Case) -> Tuple[Table, measure.IntervalResult]:
    seed.emulator.latency_ms = 0.0
    seed.built.clean_outputs()
    result = measure.interval_polls(seed.built.confdir, seed.emulator)
    per_poll = result.warm_requests / result.warm_polls if result.warm_polls else float("nan")
    table = Table("Interval mode: --interval 1s --imds-cache-ttl 60s (seed example)",
                  ("first poll requests", "later polls", "requests in later polls",
                   "requests per warm poll"))
    table.rows.append((str(result.first_poll), str(result.warm_polls),
                       str(result.warm_requests), f"{per_poll:g}"))
    return table, result


# --- budgets -------------------------------------------------------------------------------

def budgets(requests_ok: bool, startup: Dict[str, float], startup_table_: Table,
            timings: Dict[Tuple[str, float], Timings], cases: Sequence[Case],
            scale_medians: Dict[str, Tuple[float, float]], scale_ok: bool,
            interval: measure.IntervalResult) -> List[Budget]:
    floor = startup["floor: " + FLOOR]
    version = startup["imdsrender --version"] / floor
    onetime = startup["imdsrender --onetime (seed, 0 ms)"] / floor
    imports = {row[0]: row[4] for row in startup_table_.rows}
    result = [
        Budget("requests = minimum in every workload", "see the requests tables",
               requests_ok and scale_ok),
        Budget("--version <= 0.5x floor, imports none of urllib3/jinja2/yaml",
               f"{version:.2f}x, imports: {imports['imdsrender --version']}",
               version <= 0.5 and imports["imdsrender --version"] == "none"),
        Budget("check imports no urllib3", f"imports: {imports['imdsrender check']}",
               "urllib3" not in imports["imdsrender check"]),
        Budget("--onetime seed example <= 1.25x floor", f"{onetime:.2f}x", onetime <= 1.25),
    ]
    for kind in ("depth", "C"):
        for latency in (10.0, 50.0):
            result += _fetch_budget(kind, latency, timings, cases)
    tags = [t for (name, latency), t in timings.items() if latency == 10.0
            and name.startswith("300-tag") and "concurrency" not in name]
    if tags:
        wall = median(tags[0].walls)
        result.append(Budget("300 tags at 10 ms: whole run < 0.7 s", f"{wall:.3f} s", wall < 0.7))
    wall, rss = scale_medians.get("write all", (float("nan"), float("nan")))
    result.append(Budget("1000x300 render < 3 s and < 150 MB peak RSS",
                         f"{wall:.2f} s, {rss:.0f} MB", wall < 3 and rss < 150))
    result.append(Budget("interval: 0 requests per warm poll (cache TTL not expired)",
                         f"{interval.warm_requests} requests in {interval.warm_polls} polls",
                         interval.warm_requests == 0 and interval.warm_polls > 0))
    return result


def _fetch_budget(kind: str, latency: float, timings: Dict[Tuple[str, float], Timings],
                  cases: Sequence[Case]) -> List[Budget]:
    """fetch <= 1.5x the depth bound (the issue's) or the bound at the client's concurrency."""
    worst = []
    for case in cases:
        slot = timings.get((case.name, latency))
        if slot is None:
            continue
        expected = case.workload.expectation()
        rounds = expected.depth if kind == "depth" else max(
            expected.depth, 1 + math.ceil((expected.requests - 1) / DEFAULT_CONCURRENCY))
        worst.append((median(slot.spans) / (rounds * latency / 1000.0), case.name))
    if not worst:
        return []
    value, name = max(worst)
    good = sum(1 for r, _ in worst if r <= 1.5)
    return [Budget(f"fetch <= 1.5x {kind} bound at {latency:g} ms (default concurrency)",
                   f"worst {value:.2f}x ({name}); met by {good}/{len(worst)}", value <= 1.5)]


def budget_table(items: Sequence[Budget]) -> Table:
    table = Table("Budgets", ("budget", "this run", "verdict"))
    table.rows += [(b.name, b.figure, "met" if b.met else "NOT MET") for b in items]
    return table


# --- main ---------------------------------------------------------------------------------

def machine() -> List[str]:
    import jinja2
    import urllib3
    import yaml

    return [f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"machine: {platform.machine()}, {os.cpu_count()} CPUs (nproc), "
            f"{platform.system()} {platform.release()}",
            f"python: {platform.python_version()} ({platform.python_implementation()})",
            f"urllib3 {urllib3.__version__}, Jinja2 {jinja2.__version__}, "
            f"PyYAML {yaml.__version__} (C loader: {'yes' if yaml.__with_libyaml__ else 'no'})"]


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--requests-only", action="store_true",
                        help="only the request counts (fast; exit 1 if any exceeds the minimum)")
    parser.add_argument("--runs", type=int, default=9, help="runs per start-up figure")
    parser.add_argument("--latency-runs", type=int, default=7, help="runs per latency figure")
    parser.add_argument("--scale-runs", type=int, default=5, help="runs of the scale workload")
    parser.add_argument("--as-installed", action="store_true",
                        help="only the requests and the installed-wheel section (start-up, "
                             "first and unchanged run, CPU per request, profiles)")
    parser.add_argument("--user-runs", type=int, default=15,
                        help="interleaved rounds of the installed-wheel section")
    parser.add_argument("--import-runs", type=int, default=5,
                        help="-X importtime runs per path (medians)")
    parser.add_argument("--profile-out", metavar="FILE",
                        help="keep the cProfile stats of the 300-tag run (pstats format)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown")
    return parser.parse_args(argv)


def _log(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    tables: List[Table] = []
    with tempfile.TemporaryDirectory(prefix="imdsrender-bench-") as root:
        cases = _start_cases(root)
        try:
            requests, requests_ok = requests_table(cases)
            tables.append(requests)
            print(requests.text(), flush=True)
            if args.as_installed or not args.requests_only:
                tables += _as_installed(args, root, cases)
            if not (args.requests_only or args.as_installed):
                tables += _full(args, root, cases, requests_ok)
        finally:
            for case in cases:
                case.emulator.stop()
    if args.markdown:
        _write_markdown(args.markdown, tables, argv)
    return 0 if requests_ok else 1


def _start_cases(root: str) -> List[Case]:
    cases = []
    for i, workload in enumerate(request_workloads()):
        built = materialise(workload, os.path.join(root, f"w{i}"))
        cases.append(Case(workload, built, Emulator(dict(workload.fixture)).start()))
    return cases


def _as_installed(args: argparse.Namespace, root: str, cases: List[Case]) -> List[Table]:
    """The wheel installed in a fresh venv: start-up, runs, CPU per request, profiles."""
    inst = installed.install(os.path.join(root, "installed"), _log)
    seed, tags = cases[0], next(c for c in cases if c.workload.name.startswith("300-tag"))
    confd = next(c for c in cases if c.workload.name.startswith("confd"))
    small = tag_directory(0)  # the same template on the default instance's 3 tags
    built = materialise(small, os.path.join(root, "baseline"))
    with Emulator(dict(small.fixture)) as emulator:
        seed_requests = seed.workload.expectation().requests
        confd_requests = confd.workload.expectation().requests
        expected = {asusers.FIRST: seed_requests, asusers.UNCHANGED: seed_requests,
                    asusers.CONFD_FIRST: confd_requests, asusers.CONFD_UNCHANGED: confd_requests,
                    asusers.TAGS: tags.workload.expectation().requests,
                    asusers.BASELINE: small.expectation().requests}
        sites = (asusers.Site(seed.built, seed.emulator), asusers.Site(confd.built, confd.emulator),
                 asusers.Site(tags.built, tags.emulator), asusers.Site(built, emulator))
        tables = asusers.section(inst, sites, expected,
                                 args.user_runs, args.import_runs,
                                 args.profile_out or os.path.join(root, "tags.prof"), _log)
    for table in tables:
        print("\n" + table.text(), flush=True)
    return tables


def _full(args: argparse.Namespace, root: str, cases: List[Case], requests_ok: bool
          ) -> List[Table]:
    tables: List[Table] = []
    seed = cases[0]
    assert seed.workload.name == seed_instance().name
    tags = next(c for c in cases if c.workload.name.startswith("300-tag"))
    wide = [Case(tags.workload, tags.built, tags.emulator, extra=("--concurrency", str(n)),
                 label=f"300-tag directory, --concurrency {n}") for n in WIDE_CONCURRENCY]
    latency, timings = latency_table([*cases, *wide], args.latency_runs, LATENCIES, _log)
    startup, startup_medians = startup_table(seed, args.runs, _log)
    profile = import_profile(seed)
    scale_, scale_medians, scale_verdict = scale_table(root, args.scale_runs, _log)
    interval, interval_result = interval_table(seed)
    verdicts = budgets(requests_ok, startup_medians, startup, timings, cases, scale_medians,
                       scale_verdict[1], interval_result)
    for table in (latency, startup, profile, scale_, interval, budget_table(verdicts)):
        print("\n" + table.text(), flush=True)
        tables.append(table)
    return tables


def _write_markdown(path: str, tables: Sequence[Table], argv: Optional[Sequence[str]]) -> None:
    given = list(argv if argv is not None else sys.argv[1:])
    for i, word in enumerate(given[:-1]):  # file names are machine paths: not committed
        if word in ("--markdown", "--profile-out"):
            given[i + 1] = "FILE"
    shown = " ".join(given)
    lines = ["# imdsrender benchmark results", "",
             f"Generated by `python -m bench {shown}`.", ""]
    lines += [f"- {item}" for item in machine()]
    for table in tables:
        lines += ["", table.markdown()]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
