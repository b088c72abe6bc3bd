"""Interval mode: poll until SIGTERM/SIGINT; SIGHUP re-reads and applies the configuration.

Each poll goes through one TTL cache, so a poll within the TTL makes no
request at all.  A failing poll is logged and the loop goes on: the next
poll may find IMDS healthy again.
"""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import threading
from typing import TYPE_CHECKING, List, Optional, Tuple

from ..errors import Error
from ..model import RUN_FAILED, RUN_OK
from . import EXIT_OK
from .lock import run_lock
from .pipeline import Job, exit_code, fetch_snapshot, load_job, open_source, render_and_write

if TYPE_CHECKING:  # pragma: no cover
    from ..metrics import Recorder
    from ..model import Outcome
    from ..source import CachedSource

log = logging.getLogger(__name__)


def run_interval(job: Job, args: argparse.Namespace, recorder: Recorder) -> int:
    """Serve metrics if asked, then poll every ``args.interval`` until told to stop."""
    from ..metrics import start_status_server

    stop, reread = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def on_hup(*_: object) -> None:
        reread.set()
        stop.set()  # wake the wait; the loop sees reread and goes on

    signal.signal(signal.SIGHUP, on_hup)
    server = (start_status_server(args.metrics_addr, recorder, job.settings.imds,
                                  job.endpoint, job.data) if args.metrics_addr else None)
    try:
        sources = _Sources(recorder)
        sources.for_job(job)  # IMDS absent at start: exit 3 now, not a failing poll later
        return _poll_loop(job, args, recorder, sources, stop, reread)
    finally:
        if server is not None:
            server.stop()


class _Sources:
    """The polls' cached source, rebuilt when a reload changes what it was built from.

    SIGHUP must apply every setting: the client holds the ``imds:`` settings
    and the endpoint, the cache its TTL, the fetch its concurrency; reusing
    them after a reload kept polling the old endpoint.
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self._built_for: Optional[Tuple[object, ...]] = None
        self.cache: Optional[CachedSource] = None

    def for_job(self, job: Job) -> CachedSource:
        from ..source import CachedSource

        wanted = (job.settings, job.endpoint, job.data)
        if self.cache is None or wanted != self._built_for:
            if self.cache is not None:
                log.info("settings changed: new IMDS client and cache")
            self.cache = CachedSource(open_source(job, observer=self._recorder, one_run=False),
                                       job.settings.cache_ttl)
            self._built_for = wanted
        return self.cache


def _poll_loop(job: Job, args: argparse.Namespace, recorder: Recorder, sources: _Sources,
               stop: threading.Event, reread: threading.Event) -> int:
    while True:
        if reread.is_set():
            reread.clear()
            job = reread_config(job, args)
        try:
            # the cache of the last poll: for_job(), inside the pass, may replace it
            outcomes = recorder.run_pass(functools.partial(_one_pass, job, sources),
                                         sources.cache, poll_deadline(job, args.interval))
            result = RUN_OK if exit_code(outcomes) == EXIT_OK else RUN_FAILED
            log.info("poll done: %s", RUN_OK if result == RUN_OK else "some resources failed",
                     extra={"status": result})
        except Error as exc:
            log.error("poll failed: %s", exc, extra={"status": RUN_FAILED})
        except Exception as exc:  # a bug in one poll: the recorder counted it; go on
            log.debug("traceback", exc_info=True)
            log.error("poll failed: internal error: %s: %s", type(exc).__name__, exc,
                      extra={"status": RUN_FAILED})
        stop.wait(args.interval)
        if stop.is_set() and not reread.is_set():
            log.info("stopping")
            return EXIT_OK
        stop.clear()


def poll_deadline(job: Job, interval: float) -> float:
    """How long a poll may run before /ready calls it stuck.

    By then it has missed its next tick and outlived every deadline of its
    own: the boot wait, each attempt's timeout, each command's timeout.
    """
    imds = job.settings.imds
    commands = sum((r.check_timeout if r.check_cmd else 0.0)
                   + (r.reload_timeout if r.reload_cmd else 0.0) for r in job.resources)
    return interval + imds.boot_wait + (imds.retries + 1) * imds.timeout + commands


def _one_pass(job: Job, sources: _Sources) -> List[Outcome]:
    cache = sources.for_job(job)
    with cache.poll():  # one run of the client; the cache keeps only what this poll walked
        snapshot = fetch_snapshot(job, cache)
    with run_lock(job):
        return render_and_write(job, snapshot)


def reread_config(job: Job, args: argparse.Namespace) -> Job:
    """SIGHUP: a new Job from disk, or the old one when the new config is broken."""
    try:
        fresh = load_job(args)
    except Error as exc:
        log.error("reload refused, keeping the running configuration: %s", exc)
        return job
    log.info("configuration reloaded: %d resources", len(fresh.resources))
    return fresh
