"""One render pass, wired: load the job, open the source, fetch, render, write.

Every command that fetches (the run, ``get``, ``snapshot``, ``check
--data``, ``test``) goes through :func:`fetch_snapshot`, so flags such as
``--concurrency`` and the run's caps apply to all of them alike.  Heavy
modules are imported inside the functions: ``check`` must not load urllib3.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from ..errors import Error
from . import EXIT_FAILED, EXIT_OK

if TYPE_CHECKING:  # pragma: no cover
    from ..fetch import Snapshot
    from ..metrics import Recorder
    from ..model import Outcome, Resource, Settings
    from ..source import Source
    from .remember import Memory

log = logging.getLogger(__name__)


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
    file_settings: Optional[Settings] = None  # before flags: what run state records


def load_job(args: argparse.Namespace, *, dest_root: Optional[str] = None) -> Job:
    """Read settings and resources and compile the templates."""
    from ..config import load_resources
    from ..render import check_templates, make_environment

    base = file_settings(args)
    settings = settings_from(args, base)
    resources = load_resources(args.confdir, dest_root=dest_root)
    if not resources:
        log.warning("no template resources in %s", os.path.join(args.confdir, "conf.d"))
    templates_dir = os.path.join(args.confdir, "templates")
    env = make_environment(templates_dir)
    check_templates(env, resources)  # a bad filter is exit 2 before anything is fetched
    return Job(settings, resources, templates_dir, env=env,
               noop=bool(getattr(args, "noop", False)), endpoint=args.endpoint, data=args.data,
               file_settings=base)


def bare_job(args: argparse.Namespace) -> Job:
    """A Job with settings only: for commands that take keys, not resources."""
    return Job(settings_from(args), (), "", endpoint=args.endpoint, data=args.data)


def settings_path(args: argparse.Namespace) -> str:
    return str(args.config or os.path.join(args.confdir, "imdsrender.yaml"))


def file_settings(args: argparse.Namespace) -> Settings:
    """The settings file alone (defaults when there is none)."""
    from ..config import load_settings

    return load_settings(settings_path(args), required=bool(args.config))


def settings_from(args: argparse.Namespace, base: Optional[Settings] = None) -> Settings:
    """The settings file (or *base*, read before) with the flags applied on top: a flag wins."""
    settings = file_settings(args) if base is None else base
    imds = {flag: getattr(args, flag) for flag in ("timeout", "boot_wait")
            if getattr(args, flag, None) is not None}
    top: Dict[str, Any] = {"imds": dataclasses.replace(settings.imds, **imds)}
    if getattr(args, "concurrency", None):
        top["concurrency"] = args.concurrency
    if getattr(args, "imds_cache_ttl", None) is not None:
        top["cache_ttl"] = args.imds_cache_ttl
    return dataclasses.replace(settings, **top)


def open_source(job: Job, observer: Any = None, *, one_run: bool = True) -> Source:
    """The IMDS client (after its boot wait), or a fixture with --data.

    *one_run*: the client serves a single run, so its whole-run deadline
    starts now; interval mode passes False and its cache starts one per poll.
    """
    if job.data:
        from ..fixture import FixtureSource, load_fixture

        return FixtureSource(load_fixture(job.data), job.data)
    from ..imds.client import ImdsClient

    client = ImdsClient(job.settings.imds, endpoint=job.endpoint,
                        concurrency=job.settings.concurrency, observer=observer)
    if one_run:
        client.begin_run()
    client.wait_until_ready()
    return client


def fetch_snapshot(job: Job, source: Optional[Source] = None,
                   keys: Optional[Iterable[str]] = None) -> Snapshot:
    """Fetch *keys* (default: what the job's resources need) with the job's settings.

    *source* defaults to :func:`open_source`; interval mode passes its cache.
    """
    from ..fetch import Plan, fetch

    plan = Plan.of([list(keys)]) if keys is not None else Plan.of(r.keys for r in job.resources)
    started = time.monotonic()
    snapshot = fetch(plan, source if source is not None else open_source(job),
                     job.settings.fetch_limits())
    log.debug("fetched %d values for %d keys in %.0f ms", len(snapshot.values),
              len(plan.keys), (time.monotonic() - started) * 1000)
    return snapshot


def render_and_write(job: Job, snapshot: Snapshot) -> List[Outcome]:
    """Render and sync every resource; one failure never stops the others.

    Each outcome carries its render + write seconds (commands included).
    """
    from ..model import FAILED, Outcome
    from ..render import render
    from ..write import cleanup_stale, sync

    outcomes = []
    for resource in job.resources:
        started = time.monotonic()
        try:
            rendered = render(job.env, resource, snapshot)
        except Error as exc:  # kept as it is: a render error is not a write error
            outcome = Outcome(resource.dest, FAILED, error=exc)
        else:
            if not job.noop:
                cleanup_stale(resource.dest)
            outcome = sync(resource, rendered.content, sensitive=rendered.sensitive,
                           noop=job.noop)
        outcome = dataclasses.replace(outcome, seconds=time.monotonic() - started)
        _log_outcome(resource, outcome)
        if job.noop and outcome.diff:
            write_stdout(outcome.diff)
        outcomes.append(outcome)
    return outcomes


def _log_outcome(resource: Resource, outcome: Outcome) -> None:
    from ..model import UNCHANGED

    extra = {"resource": resource.origin, "path": resource.dest, "status": outcome.status,
             "duration_ms": round(outcome.seconds * 1000, 1)}
    if outcome.error is not None:
        log.error("%s", outcome.error, extra=extra)
    elif outcome.status == UNCHANGED:
        log.debug("%s: unchanged", resource.dest, extra=extra)
    else:
        reloaded = " and reloaded" if outcome.reloaded else ""
        log.info("%s: %s%s", resource.dest, outcome.status, reloaded, extra=extra)


def write_stdout(text: str) -> None:
    """Write text that may hold undecodable bytes (surrogateescape) unchanged."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.buffer.flush()


def without_commands(resource: Resource) -> Resource:
    """*resource* with check_cmd and reload_cmd dropped, saying what would have run."""
    for kind in ("check_cmd", "reload_cmd"):
        command = getattr(resource, kind)
        if command:
            print(f"# {resource.origin}: would run {kind}: {command}")
    return dataclasses.replace(resource, check_cmd=None, reload_cmd=None)


def exit_code(outcomes: Sequence[Outcome]) -> int:
    return EXIT_FAILED if any(o.failed for o in outcomes) else EXIT_OK


def run_once(job: Job, recorder: Optional[Recorder] = None,
             memory: Optional[Memory] = None) -> int:
    """One pass; the recorder hears of it even when it fails (the textfile is written)."""

    def one_pass() -> List[Outcome]:
        return write_pass(job, fetch_snapshot(job, open_source(job, observer=recorder)), memory)

    return exit_code(recorded(recorder, one_pass))


def recorded(recorder: Optional[Recorder], one_pass: Callable[[], List[Outcome]]) -> List[Outcome]:
    """Run *one_pass* through the recorder; without one, metrics are never imported."""
    return list(recorder.run_pass(one_pass)) if recorder is not None else one_pass()


def write_pass(job: Job, snapshot: Snapshot, memory: Optional[Memory] = None) -> List[Outcome]:
    """Render and write under the run lock; *memory* retries owed reloads and records the run."""
    from .lock import run_lock

    with run_lock(job):
        outcomes = render_and_write(job, snapshot)
        return memory.after(job, snapshot, outcomes) if memory is not None else outcomes
