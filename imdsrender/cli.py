"""Command line: flags, modes (onetime / interval), subcommands, exit codes.

The CLI only wires the modules together: config -> plan -> fetch -> render
-> write.  Heavy modules are imported inside the commands that need them,
so ``imdsrender --version`` costs an interpreter start and little else, and
``imdsrender check`` never imports urllib3.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import __version__
from .errors import Error, UsageError
from .quantities import ascii_int, parse_duration

if TYPE_CHECKING:  # pragma: no cover
    from .fetch import Snapshot
    from .metrics import Recorder
    from .model import Outcome, Resource, Settings
    from .source import CachedSource, Source

log = logging.getLogger("imdsrender")

DEFAULT_CONFDIR = "/etc/imdsrender"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


# --- argument parsing -------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse with DESIGN's one-line error format and exit code 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        sys.stderr.write(f"imdsrender: {message}; see '{self.prog} --help'\n")
        sys.exit(EXIT_USAGE)


def _duration(flag: str) -> Callable[[str], float]:
    """An argparse type for a duration flag whose errors name the flag."""

    def parse(text: str) -> float:
        try:
            return parse_duration(text, flag)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(exc.what) from None

    parse.__name__ = "duration"
    return parse


def _concurrency(text: str) -> int:
    from .model import MAX_CONCURRENCY

    number = ascii_int(text)
    if number is None or not 1 <= number <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"expected a whole number 1..{MAX_CONCURRENCY}, "
                                         f"got {text!r}")
    return number


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command shares.

    On sub-commands they default to SUPPRESS so that an option given before
    the sub-command is not overwritten by the sub-parser's default.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--confdir", default=default(DEFAULT_CONFDIR),
                        help="configuration directory (default %(default)s)")
    parser.add_argument("--config", default=default(None),
                        help="settings file (default CONFDIR/imdsrender.yaml)")
    parser.add_argument("--endpoint", default=default(None), help="IMDS endpoint URL")
    parser.add_argument("--timeout", type=_duration("--timeout"), default=default(None),
                        help="per-request timeout, e.g. 1s")
    parser.add_argument("--boot-wait", type=_duration("--boot-wait"), default=default(None),
                        help="how long to wait for IMDS to answer at all, e.g. 60s")
    parser.add_argument("--concurrency", type=_concurrency, default=default(None),
                        help="parallel IMDS requests (default 8)")
    parser.add_argument("--data", default=default(None), metavar="FILE",
                        help="render from a JSON fixture instead of IMDS (no network)")
    parser.add_argument("--log-level", default=default("info"),
                        choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", default=default("text"), choices=("text", "json"))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="imdsrender", description="Render configuration files from EC2 "
                     "instance metadata (IMDSv2) with Jinja2 templates.")
    parser.add_argument("--version", action="version", version=f"imdsrender {__version__}")
    _add_common(parser, top=True)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--onetime", action="store_true", help="render once and exit")
    mode.add_argument("--interval", type=_duration("--interval"), metavar="DURATION",
                      help="render every DURATION (plain seconds or 30s, 5m, 1h)")
    mode.add_argument("--watch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--noop", action="store_true",
                        help="print what would change as a diff; write and run nothing")
    parser.add_argument("--imds-cache-ttl", type=_duration("--imds-cache-ttl"),
                        help="interval mode: how long fetched values are reused (default 60s)")
    parser.add_argument("--metrics-addr", metavar="HOST:PORT",
                        help="interval mode: serve /metrics, /health, /ready")
    parser.add_argument("--metrics-textfile", metavar="PATH",
                        help="write metrics in the text format at the end of the run")
    parser.set_defaults(handler=cmd_main)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    get = sub.add_parser("get", help="print metadata values, one per line")
    _add_common(get, top=False)
    get.add_argument("keys", nargs="+", metavar="KEY")
    get.add_argument("--show-secrets", action="store_true",
                     help="print credentials values instead of <redacted>")
    get.set_defaults(handler=cmd_get)

    check = sub.add_parser("check", help="validate config and templates (no IMDS)")
    _add_common(check, top=False)
    check.set_defaults(handler=cmd_check)

    emulator = sub.add_parser("emulator", help="serve an IMDSv2 emulator on 127.0.0.1")
    emulator.add_argument("--port", type=int, default=1338)
    emulator.add_argument("--host", default="127.0.0.1", help="address to listen on")
    emulator.add_argument("--data", metavar="FILE", help="JSON fixture (default: built-in)")
    emulator.add_argument("--latency-ms", type=float, default=0.0)
    emulator.set_defaults(handler=cmd_emulator, log_level="info", log_format="text")

    demo = sub.add_parser("demo", help="render the bundled examples against the emulator")
    demo.set_defaults(handler=cmd_demo, log_level="warning", log_format="text")

    snapshot = sub.add_parser("snapshot", help="save metadata as a JSON fixture")
    _add_common(snapshot, top=False)
    snapshot.add_argument("keys", nargs="*", metavar="KEY",
                          help="keys to save (default: what the resources need; / for all)")
    snapshot.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    snapshot.add_argument("--include-credentials", action="store_true",
                          help="keep credentials paths (the file is then mode 0600)")
    snapshot.set_defaults(handler=cmd_snapshot)

    test = sub.add_parser("test", help="render against fixtures and compare with golden files")
    _add_common(test, top=False)
    test.add_argument("cases", metavar="CASES_DIR",
                      help="one directory per case: fixture.json and expected/<dest path>")
    test.add_argument("--update", action="store_true", help="rewrite the golden files")
    test.set_defaults(handler=cmd_test, log_level="warning")

    migrate = sub.add_parser("migrate-confd", help="convert a confd confdir (TOML + Go "
                             "templates) to YAML + Jinja2")
    migrate.add_argument("src", metavar="SRC")
    migrate.add_argument("out", metavar="OUT")
    migrate.add_argument("--force", action="store_true", help="overwrite files in OUT")
    migrate.set_defaults(handler=cmd_migrate, log_level="info", log_format="text")
    return parser


# --- logging ----------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object a line: what journald and log shippers want."""

    FIELDS = ("resource", "path", "status", "duration_ms", "attempt")

    def format(self, record: logging.LogRecord) -> str:
        entry: Dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("imdsrender: %(levelname)s: %(message)s"))
    from .journal import install
    install(handler)  # under systemd: a <N> priority on each line for journald
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))


# --- the pipeline -----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """Everything one render pass needs, built once from flags and files."""

    settings: Settings
    resources: Tuple[Resource, ...]
    templates_dir: str
    env: Any = None  # the Jinja2 environment: templates compiled once per Job
    noop: bool = False
    endpoint: Optional[str] = None  # --endpoint, which beats the environment
    data: Optional[str] = None  # --data FILE: a fixture instead of IMDS


def load_job(args: argparse.Namespace, *, dest_root: Optional[str] = None) -> Job:
    """Read settings and resources and compile the templates."""
    from .config import load_resources
    from .render import check_templates, make_environment

    settings = settings_from(args)
    resources = load_resources(args.confdir, dest_root=dest_root)
    if not resources:
        log.warning("no template resources in %s", os.path.join(args.confdir, "conf.d"))
    templates_dir = os.path.join(args.confdir, "templates")
    env = make_environment(templates_dir)
    check_templates(env, resources)  # a bad filter is exit 2 before anything is fetched
    return Job(settings, resources, templates_dir, env=env,
               noop=bool(getattr(args, "noop", False)), endpoint=args.endpoint, data=args.data)


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings file with the flags applied on top: a flag wins."""
    from .config import load_settings

    path = args.config or os.path.join(args.confdir, "imdsrender.yaml")
    settings = load_settings(path, required=bool(args.config))
    imds = {flag: getattr(args, flag) for flag in ("timeout", "boot_wait")
            if getattr(args, flag, None) is not None}
    top: Dict[str, Any] = {"imds": dataclasses.replace(settings.imds, **imds)}
    if getattr(args, "concurrency", None):
        top["concurrency"] = args.concurrency
    if getattr(args, "imds_cache_ttl", None) is not None:
        top["cache_ttl"] = args.imds_cache_ttl
    return dataclasses.replace(settings, **top)


def open_source(job: Job, observer: Any = None) -> Source:
    """The IMDS client (after its boot wait), or a fixture with --data."""
    if job.data:
        from .fixture import FixtureSource, load_fixture

        return FixtureSource(load_fixture(job.data), job.data)
    from .client import ImdsClient

    client = ImdsClient(job.settings.imds, endpoint=job.endpoint,
                        concurrency=job.settings.concurrency, observer=observer)
    client.token()
    return client


def fetch_snapshot(job: Job, source: Source) -> Snapshot:
    from .fetch import Plan, fetch

    plan = Plan.of(r.keys for r in job.resources)
    started = time.monotonic()
    snapshot = fetch(plan, source, concurrency=job.settings.concurrency,
                     max_depth=job.settings.imds.max_depth,
                     max_run_bytes=job.settings.imds.max_run_bytes)
    log.debug("fetched %d values for %d keys in %.0f ms", len(snapshot.values),
              len(plan.keys), (time.monotonic() - started) * 1000)
    return snapshot


def render_and_write(job: Job, snapshot: Snapshot, recorder: Recorder) -> List[Outcome]:
    """Render and sync every resource; one failure never stops the others."""
    from .model import FAILED, Outcome
    from .render import render
    from .write import WriteError, cleanup_stale, sync

    outcomes = []
    for resource in job.resources:
        started = time.monotonic()
        try:
            rendered = render(job.env, resource, snapshot)
        except Error as exc:
            outcome = Outcome(resource.dest, FAILED,
                              error=WriteError(exc.where, exc.what, exc.hint))
        else:
            if not job.noop:
                cleanup_stale(resource.dest)
            outcome = sync(resource, rendered.content, sensitive=rendered.sensitive,
                           noop=job.noop, run=recorder.command_runner(resource))
        _log_outcome(resource, outcome, time.monotonic() - started)
        recorder.resource_finished(resource.dest, outcome.status, time.monotonic() - started)
        if job.noop and outcome.diff:
            _write_stdout(outcome.diff)
        outcomes.append(outcome)
    return outcomes


def _log_outcome(resource: Resource, outcome: Outcome, seconds: float) -> None:
    extra = {"resource": resource.origin, "path": resource.dest, "status": outcome.status,
             "duration_ms": round(seconds * 1000, 1)}
    if outcome.error is not None:
        log.error("%s", outcome.error, extra=extra)
    elif outcome.status == "unchanged":
        log.debug("%s: unchanged", resource.dest, extra=extra)
    else:
        reloaded = " and reloaded" if outcome.reloaded else ""
        log.info("%s: %s%s", resource.dest, outcome.status, reloaded, extra=extra)


def _write_stdout(text: str) -> None:
    """Write text that may hold undecodable bytes (surrogateescape) unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


@contextlib.contextmanager
def run_lock(job: Job) -> Iterator[None]:
    """One writer per confdir at a time (the boot unit and the timer may overlap).

    Holding it is what makes removing stray stage files safe: a stage file
    found while we hold the lock belongs to a run that died.
    """
    if job.noop:
        yield
        return
    import fcntl
    import hashlib

    lock_dir = "/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir()
    digest = hashlib.sha1(os.path.abspath(job.templates_dir).encode()).hexdigest()[:12]
    with open(os.path.join(lock_dir, f"imdsrender-{digest}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    return EXIT_FAILED if any(o.status == "failed" for o in outcomes) else EXIT_OK


def run_once(job: Job, recorder: Optional[Recorder] = None) -> int:
    """One pass; the recorder hears of it even when it fails (the textfile is written)."""
    from .metrics import Recorder

    chosen = recorder or Recorder()

    def one_pass() -> List[Outcome]:
        snapshot = fetch_snapshot(job, open_source(job, observer=chosen))
        with run_lock(job):
            return render_and_write(job, snapshot, chosen)

    return exit_code(chosen.record(one_pass))


# --- commands ---------------------------------------------------------------

def cmd_main(args: argparse.Namespace) -> int:
    if args.watch:
        raise UsageError("--watch", "watch mode not supported",
                         "IMDS cannot be watched; use --interval DURATION or a systemd timer")
    if not args.onetime and args.interval is None:
        raise UsageError("", "choose a mode: --onetime or --interval DURATION",
                         "see 'imdsrender --help'")
    from .metrics import from_flags

    recorder = from_flags(args.metrics_addr, args.metrics_textfile,
                          interval=args.interval is not None)
    job = load_job(args)
    if args.onetime:
        return run_once(job, recorder)
    return run_interval(job, args, recorder)


def run_interval(job: Job, args: argparse.Namespace, recorder: Recorder) -> int:
    """Poll until SIGTERM/SIGINT; SIGHUP re-reads the configuration.

    Each poll goes through one TTL cache, so a poll within the TTL makes no
    request at all.  A failing poll is logged and the loop goes on: the
    next poll may find IMDS healthy again.
    """
    from .metrics import start_status_server
    from .source import CachedSource

    stop, reload = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_hup(*_: object) -> None:
        reload.set()
        stop.set()  # wake the wait; the loop sees reload and goes on

    signal.signal(signal.SIGHUP, on_hup)
    server = (start_status_server(args.metrics_addr, recorder, job.settings.imds,
                                  job.endpoint, job.data) if args.metrics_addr else None)
    try:
        cache = CachedSource(open_source(job, observer=recorder), job.settings.cache_ttl)
        return _poll_loop(job, args, recorder, cache, stop, reload)
    finally:
        if server is not None:
            server.stop()


def _poll_loop(job: Job, args: argparse.Namespace, recorder: Recorder, cache: CachedSource,
               stop: threading.Event, reload: threading.Event) -> int:
    def one_pass() -> List[Outcome]:
        snapshot = fetch_snapshot(job, cache)
        with run_lock(job):
            return render_and_write(job, snapshot, recorder)

    while True:
        if reload.is_set():
            reload.clear()
            job = _reload(job, args)
        try:
            code = exit_code(recorder.record(one_pass, cache))
            log.info("poll done: %s", "ok" if code == EXIT_OK else "some resources failed",
                     extra={"status": "ok" if code == EXIT_OK else "failed"})
        except Error as exc:
            log.error("poll failed: %s", exc, extra={"status": "failed"})
        stop.wait(args.interval)
        if stop.is_set() and not reload.is_set():
            log.info("stopping")
            return EXIT_OK
        stop.clear()


def _reload(job: Job, args: argparse.Namespace) -> Job:
    """A new Job from disk, or the old one when the new config is broken."""
    try:
        fresh = load_job(args)
    except Error as exc:
        log.error("reload refused, keeping the running configuration: %s", exc)
        return job
    log.info("configuration reloaded: %d resources", len(fresh.resources))
    return fresh


def cmd_check(args: argparse.Namespace) -> int:
    """Validate config and templates; with --data also render each in memory."""
    job = load_job(args)
    if job.data and not _renders_cleanly(job):
        return EXIT_FAILED
    print(f"imdsrender: {len(job.resources)} resources OK in {args.confdir}")
    return EXIT_OK


def _renders_cleanly(job: Job) -> bool:
    """Render every resource in memory against the fixture; log each failure."""
    from .render import render

    snapshot = fetch_snapshot(job, open_source(job))
    ok = True
    for resource in job.resources:
        try:
            render(job.env, resource, snapshot)
        except Error as exc:
            log.error("%s", exc, extra={"resource": resource.origin, "status": "failed"})
            ok = False
    return ok


WHOLE_TREE = ("/meta-data/", "/dynamic/", "/user-data")


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Save what IMDS (or a fixture) answers as a fixture for offline work."""
    from .fetch import Plan, fetch
    from .fixture import dump_fixture, fixture_from_snapshot
    from .keys import normalize_key

    if args.keys:
        keys = [k for key in args.keys
                for k in (WHOLE_TREE if key.strip() in ("/", "/latest", "/latest/")
                          else (normalize_key(key),))]
        job = _bare_job(args)
    else:
        job = load_job(args)
        keys = [k for r in job.resources for k in r.keys]
    snapshot = fetch(Plan.of([keys]), open_source(job), concurrency=job.settings.concurrency)
    for path, reason in sorted(snapshot.errors.items()):
        log.error("%s: %s", path, reason)
    values = fixture_from_snapshot(snapshot, include_credentials=args.include_credentials)
    text = dump_fixture(values)
    if args.output:
        _write_private(args.output, text, 0o600 if args.include_credentials else 0o644)
        log.info("wrote %s (%d paths)", args.output, len(values))
    else:
        sys.stdout.write(text)
    return EXIT_FAILED if snapshot.errors else EXIT_OK


def _bare_job(args: argparse.Namespace) -> Job:
    """A Job with settings only: for commands that take keys, not resources."""
    return Job(settings_from(args), (), "", endpoint=args.endpoint, data=args.data)


def _write_private(path: str, text: str, mode: int) -> None:
    """Write atomically with *mode* from the first byte (no window at 0644)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, staged = tempfile.mkstemp(prefix=".snapshot.", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise


def cmd_test(args: argparse.Namespace) -> int:
    """Render every resource against each case's fixture; compare with golden files.

    Writes only below a temp dir (and, with --update, the golden files);
    check_cmd and reload_cmd are reported, never run.
    """
    cases = sorted(p for p in Path(args.cases).iterdir() if (p / "fixture.json").is_file()) \
        if os.path.isdir(args.cases) else []
    if not cases:
        raise UsageError(args.cases, "no test cases found",
                         "each case is a directory holding fixture.json and expected/")
    failed = [case.name for case in cases if not _run_case(args, case)]
    print(f"imdsrender test: {len(cases) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _run_case(args: argparse.Namespace, case: Path) -> bool:
    from .keys import is_credentials
    from .metrics import Recorder
    from .write import diff

    expected = case / "expected"
    ok = True
    with tempfile.TemporaryDirectory(prefix="imdsrender-test-") as out:
        job = load_job(args, dest_root=out)
        job = dataclasses.replace(job, data=str(case / "fixture.json"),
                                  resources=tuple(_without_commands(r)
                                                  for r in job.resources))
        outcomes = render_and_write(job, fetch_snapshot(job, open_source(job)), Recorder())
        for resource, outcome in zip(job.resources, outcomes):
            golden = expected / os.path.relpath(resource.dest, out)
            if outcome.error is not None:
                print(f"FAIL {case.name}: {resource.origin}: {outcome.error}")
                ok = False
                continue
            actual = Path(resource.dest).read_bytes()
            if args.update:
                golden.parent.mkdir(parents=True, exist_ok=True)
                golden.write_bytes(actual)
                continue
            old = golden.read_bytes() if golden.is_file() else None
            if old != actual:
                print(f"FAIL {case.name}: {resource.origin}: output differs from {golden}")
                sensitive = any(is_credentials(k) for k in resource.keys)
                _write_stdout(diff(str(golden), old, actual, sensitive=sensitive))
                ok = False
    print(f"{'ok  ' if ok else 'FAIL'} {case.name}")
    return ok


def cmd_get(args: argparse.Namespace) -> int:
    """Print values for debugging on an instance; directories list their leaves."""
    from .fetch import Plan, fetch
    from .keys import is_dir, normalize_key

    job = _bare_job(args)
    keys = [normalize_key(k) for k in args.keys]
    snapshot = fetch(Plan.of([keys]), open_source(job))
    code = EXIT_OK
    for key in keys:
        if is_dir(key):
            leaves = sorted(p for p in snapshot.values if p.startswith(key))
            lines = [f"{p}\t{_shown(p, snapshot.values[p], args.show_secrets)}" for p in leaves]
        elif key in snapshot.values:
            lines = [_shown(key, snapshot.values[key], args.show_secrets)]
        else:
            reason = snapshot.errors.get(key, "not found (404)")
            sys.stderr.write(f"imdsrender: {key}: {reason}\n")
            code = EXIT_FAILED
            continue
        print("\n".join(lines))
    return code


def _shown(path: str, value: bytes, show_secrets: bool) -> str:
    from .keys import redact

    text = value.decode("utf-8", "surrogateescape")
    return text if show_secrets else redact(path, text)


def cmd_emulator(args: argparse.Namespace) -> int:
    from .emulator import serve

    emulator = serve(args.port, args.data, args.latency_ms, host=args.host)
    print(f"imdsrender: emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    return EXIT_OK


def examples_dir() -> Path:
    """The bundled examples: inside the package when installed, else the repo's."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "examples", here.parent / "examples"):
        if (candidate / "conf.d").is_dir():
            return candidate
    raise Error("examples", "the bundled examples are missing", "reinstall imdsrender")


def cmd_demo(args: argparse.Namespace) -> int:
    """Render examples/ against an in-process emulator into a temp dir.

    check_cmd and reload_cmd are not run (they name services this machine
    may not have); the demo says what would have run.
    """
    from .emulator import Emulator

    confdir = examples_dir()
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="imdsrender-demo-") as out:
        args = argparse.Namespace(**{**vars(args), "confdir": str(confdir), "config": None,
                                     "endpoint": emulator.url, "data": None})
        job = load_job(args, dest_root=out)
        job = dataclasses.replace(job, resources=tuple(_without_commands(r)
                                                       for r in job.resources))
        code = run_once(job)
        print(f"# emulator: {emulator.url}, {emulator.count()} requests")
        for resource in job.resources:
            shown = os.path.relpath(resource.dest, out)
            print(f"\n==> /{shown} (mode {resource.mode:04o}, from {resource.origin}) <==")
            if os.path.exists(resource.dest):
                print(Path(resource.dest).read_text("utf-8", "surrogateescape"), end="")
    return code


def _without_commands(resource: Resource) -> Resource:
    for kind in ("check_cmd", "reload_cmd"):
        command = getattr(resource, kind)
        if command:
            print(f"# {resource.origin}: would run {kind}: {command}")
    return dataclasses.replace(resource, check_cmd=None, reload_cmd=None)


def cmd_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate_confdir

    report = migrate_confdir(args.src, args.out, force=args.force)
    for path in report.written:
        log.info("wrote %s", path)
    for problem in report.problems:
        sys.stderr.write(f"imdsrender: {problem}\n")
    return EXIT_FAILED if report.problems else EXIT_OK


# --- entry point ------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.handler(args))
    except Error as exc:
        log.debug("traceback", exc_info=True)
        if args.log_format == "json":  # stderr stays one JSON object a line
            log.error("%s", exc, extra={"status": "failed"})
        else:
            sys.stderr.write(f"imdsrender: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, the traceback only in debug
        log.debug("traceback", exc_info=True)
        sys.stderr.write(f"imdsrender: internal error: {type(exc).__name__}: {exc}; "
                         "rerun with --log-level debug and report it\n")
        return EXIT_FAILED
