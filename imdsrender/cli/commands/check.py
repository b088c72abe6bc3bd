"""``imdsrender check``: validate config and templates; with --data also render each."""

from __future__ import annotations

import argparse
import logging
import os
from typing import List

from ...errors import Error
from ...model import FAILED
from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import Job, fetch_snapshot, load_job

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    job = load_job(args)
    leftovers = leftover_markers(job)
    for where in leftovers:
        log.error("%s: a migrate-confd untranslated marker remains; translate that spot "
                  "by hand and delete the marker", where, extra={"status": FAILED})
    if leftovers or (job.data and not _renders_cleanly(job)):
        return EXIT_FAILED
    print(f"imdsrender: {len(job.resources)} resources OK in {args.confdir}")
    return EXIT_OK


def leftover_markers(job: Job) -> List[str]:
    """``templates/NAME:LINE`` of every untranslated marker in the templates the job uses."""
    from ...markers import find_markers

    names = sorted({n for r in job.resources for n in (r.closure or (r.template,))})
    found = []
    for name in names:
        try:
            with open(os.path.join(job.templates_dir, name), encoding="utf-8",
                      errors="replace") as handle:
                text = handle.read()
        except OSError:  # load_job compiled it; a file gone since is render's to report
            continue
        found += [f"templates/{name}:{line}" for line in find_markers(text)]
    return found


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
