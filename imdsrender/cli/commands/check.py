"""``imdsrender check``: validate config and templates; with --data also render each."""

from __future__ import annotations

import argparse
import logging

from ...errors import Error
from ...model import FAILED
from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import Job, fetch_snapshot, load_job

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    job = load_job(args)
    if job.data and not _renders_cleanly(job):
        return EXIT_FAILED
    print(f"imdsrender: {len(job.resources)} resources OK in {args.confdir}")
    return EXIT_OK


def _renders_cleanly(job: Job) -> bool:
    """Render every resource in memory against the fixture; log each failure."""
    from ...render import render

    snapshot = fetch_snapshot(job)
    ok = True
    for resource in job.resources:
        try:
            render(job.env, resource, snapshot)
        except Error as exc:
            log.error("%s", exc, extra={"resource": resource.origin, "status": FAILED})
            ok = False
    return ok
