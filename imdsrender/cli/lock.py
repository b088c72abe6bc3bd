"""The run lock: one writer per confdir at a time (the boot unit and the timer may overlap)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Job


@contextlib.contextmanager
def run_lock(job: Job) -> Iterator[None]:
    """Hold the confdir's lock for the block (not in --noop, which writes nothing).

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
