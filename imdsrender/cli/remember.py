"""``--onetime`` with run state: the unchanged run, and reloads retried until they succeed.

When the confdir, the fetched values and every dest are as the last
successful run left them, the run loads its configuration from the state
file (no PyYAML), fetches, compares and exits without Jinja2.  Anything else
renders as before, reusing what was already fetched, so the requests made
stay the plan.  ``--noop`` and ``--data`` never read or write state (nor do
``check`` and ``test``, which never come here).  See :mod:`imdsrender.state`.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import TYPE_CHECKING, List, Optional

from .. import state
from ..model import DEFAULT_STATE_DIR, FAILED, RELOAD, UNCHANGED, Outcome, Resource
from .pipeline import (
    Job,
    exit_code,
    fetch_snapshot,
    load_job,
    open_source,
    recorded,
    run_once,
    settings_from,
    settings_path,
    write_pass,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..fetch import Snapshot
    from ..metrics import Recorder

log = logging.getLogger(__name__)


class Memory:
    """The state file of one confdir: read once before the run, written after it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.flag_dir: Optional[str] = args.state_dir
        self.confdir, self.settings_path = args.confdir, settings_path(args)
        self.path = self._path(self.flag_dir)
        self.record = state.load(self.path) if self.path else None
        # Stamped before anything is loaded, so an edit during the run is seen next
        # time; without a state dir yet (a state_dir setting alone) there is no
        # unchanged run to prepare, only owed reloads.
        self.stamps = (state.confdir_stamps(self.confdir, self.settings_path)
                       if self.path else None)

    def _path(self, state_dir: Optional[str]) -> Optional[str]:
        """The state file in *state_dir*; the default dir only if it exists (the units make it)."""
        if state_dir is None or state_dir == DEFAULT_STATE_DIR:
            if not os.path.isdir(DEFAULT_STATE_DIR):
                log.debug("state: no %s; runs are not remembered", DEFAULT_STATE_DIR)
                return None
            state_dir = DEFAULT_STATE_DIR
        return state.state_file(state_dir, self.confdir, self.settings_path)

    def cached_job(self, args: argparse.Namespace) -> Optional[Job]:
        """The job as the last clean run loaded it, if no file it read has changed since."""
        record = self.record
        if record is None or not record.clean or record.pending:
            return None
        if self.stamps is None or record.files != self.stamps:
            log.debug("state: the confdir changed since the last run")
            return None
        settings = settings_from(args, state.settings_from_data(record.settings))
        resources = tuple(state.resource_from_data(r) for r in record.resources)
        return Job(settings, resources, os.path.join(self.confdir, "templates"),
                   endpoint=args.endpoint)

    def unchanged(self, job: Job, snapshot: Snapshot) -> bool:
        """True when the values and every dest are what the recorded run left."""
        assert self.record is not None
        if self.record.values != _digest(snapshot):
            log.debug("state: metadata values changed since the last run")
            return False
        return state.dests_unchanged(self.record, (r.dest for r in job.resources))

    def after(self, job: Job, snapshot: Snapshot, outcomes: List[Outcome]) -> List[Outcome]:
        """Retry the reloads still owed, then record this run for the next one."""
        if job.file_settings is not None and self.flag_dir is None:  # state_dir setting
            path = self._path(job.file_settings.state_dir)
            if path != self.path:
                self.path, self.record = path, state.load(path) if path else None
        owed = set(self.record.pending) if self.record else set()
        outcomes = [_retry(resource, outcome) if outcome.dest in owed else outcome
                    for resource, outcome in zip(job.resources, outcomes)]
        if self.path is None or job.file_settings is None:
            return outcomes
        pending = [o.dest for o in outcomes if _reload_owed(o, o.dest in owed)]
        record = state.Record(
            files=self.stamps or [], settings=state.settings_data(job.file_settings),
            resources=[state.resource_data(r) for r in job.resources],
            values=_digest(snapshot), pending=pending,
            clean=self.stamps is not None and not any(o.failed for o in outcomes))
        for outcome in outcomes:
            stamp = state.dest_stamp(outcome.dest)
            if stamp is not None and not outcome.failed:
                record.dests[outcome.dest] = stamp
        state.save(self.path, record)
        return outcomes


def _digest(snapshot: Snapshot) -> str:
    return state.values_digest(snapshot.values, snapshot.listings, snapshot.errors)


def _retry(resource: Resource, outcome: Outcome) -> Outcome:
    """An owed reload runs again when the file is unchanged (a write ran it already)."""
    from ..write.sync import retry_reload

    if outcome.status != UNCHANGED or not resource.reload_cmd:
        return outcome
    log.info("%s: retrying the reload that failed last time", outcome.dest)
    return retry_reload(resource)


def _reload_owed(outcome: Outcome, was_owed: bool) -> bool:
    """A reload failed after the write (the last step), or one owed could not run yet."""
    if outcome.status != FAILED:
        return False
    last = outcome.steps[-1] if outcome.steps else None
    if last is not None and last.step == RELOAD:
        return True
    return was_owed


def run_onetime(args: argparse.Namespace, recorder: Optional[Recorder]) -> int:
    """``--onetime``: skip loading and rendering when nothing changed since the last run."""
    memory = None if args.noop or args.data else Memory(args)
    cached = memory.cached_job(args) if memory is not None else None
    if memory is None or cached is None:
        return run_once(load_job(args), recorder, memory)
    remembered = memory

    def one_pass() -> List[Outcome]:
        assert cached is not None
        snapshot = fetch_snapshot(cached, open_source(cached, observer=recorder))
        if remembered.unchanged(cached, snapshot):
            log.debug("nothing changed since the last run; not rendering")
            return [Outcome(r.dest, UNCHANGED) for r in cached.resources]
        return write_pass(load_job(args), snapshot, remembered)

    return exit_code(recorded(recorder, one_pass))
