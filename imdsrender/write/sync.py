"""The per-resource pipeline: compare -> stage -> check -> replace -> reload.

confd's resource sync made strict, composed from the collaborators in this
package: :mod:`.files` (stage names, stage file, rename, directory fsync),
:mod:`.commands` (check_cmd and reload_cmd in their own process group) and
:mod:`.diff`.  Whatever fails before the rename leaves the old file exactly
as it was and no stage file behind.  When bytes, mode and owner already
match, nothing at all happens: no stage file, no write, no reload, the inode
and mtime stay as they are.

A symlink at the destination is followed for the comparison (identical
target content, mode and owner = unchanged), but a write replaces the link
itself with a regular file, as ``rename(2)`` does; the link's target is never
written through.

The outcome records every command that ran (step, seconds, result), so
metrics read outcomes and never reach into this step.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from ..model import (
    CHECK,
    FAILED,
    NOT_STARTED,
    RELOAD,
    UNCHANGED,
    WOULD_WRITE,
    WRITTEN,
    Outcome,
    Resource,
    StepResult,
)
from .commands import Runner, describe_failure, fill_placeholders, run_command
from .diff import diff, owner_text, printable
from .files import (
    Target,
    WriteError,
    create_stage,
    discard,
    make_parents,
    random_token,
    reason,
    replace_dest,
    sync_directory,
    where,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Current:
    """The regular file now at dest (a symlink is followed for reading)."""

    content: bytes
    mode: int
    uid: int
    gid: int


def _read_current(dest: str) -> Optional[_Current]:
    """The file at *dest*, or None when there is no regular file to compare with.

    O_NONBLOCK keeps a FIFO at dest from hanging us; a directory or other
    non-file is reported as absent and the rename step will say what is wrong.
    """
    try:
        fd = os.open(dest, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None  # a parent that is a file: creating the directories will say so
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        return _Current(f.read(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _target(resource: Resource, current: Optional[_Current]) -> Target:
    """Unset owner/group mean "leave as is": keep the replaced file's, if any."""
    uid, gid = resource.owner, resource.group
    if current is not None:
        uid = current.uid if uid is None else uid
        gid = current.gid if gid is None else gid
    return Target(resource.mode, uid, gid)


def _matches(current: Optional[_Current], content: bytes, target: Target) -> bool:
    return (current is not None and current.content == content
            and current.mode == target.mode
            and target.uid in (None, current.uid) and target.gid in (None, current.gid))


def _describe(resource: Resource, current: Optional[_Current], content: bytes,
              target: Target, sensitive: bool) -> str:
    old_owner = None if current is None else owner_text(current.uid, current.gid)
    return diff(resource.dest, None if current is None else current.content, content,
                sensitive=sensitive, old_mode=None if current is None else current.mode,
                new_mode=target.mode, old_owner=old_owner,
                new_owner=owner_text(target.uid, target.gid))


def sync(resource: Resource, content: bytes, *, sensitive: bool = False, noop: bool = False,
         run: Runner = run_command, token: Callable[[], str] = random_token) -> Outcome:
    """Bring ``resource.dest`` to *content* with the resource's mode and owner.

    Steps (DESIGN.md "Writing files"): compare -> create missing parent
    directories (0755) -> stage -> write, chown, chmod, fsync -> check_cmd
    -> rename -> fsync the directory -> reload_cmd.  Never raises WriteError:
    a failure is ``Outcome(status="failed", error=...)``.  A failed reload
    happens after the rename, so the new file stays in place (the message
    says so); the caller may remember it and :func:`retry_reload` later.
    With *noop* nothing is created or run: the outcome carries the
    diff.  *sensitive* keeps contents and command output out of diffs,
    messages and logs.  *token* makes the stage name deterministic in tests.
    """
    try:
        current = _read_current(resource.dest)
    except OSError as exc:
        return _failed(resource, WriteError(where(resource), f"reading the current file "
                                            f"failed: {reason(exc)}",
                                            "check the destination path and its permissions"))
    target = _target(resource, current)
    if _matches(current, content, target):
        log.debug("%s: unchanged", resource.dest)
        return Outcome(resource.dest, UNCHANGED)
    text = _describe(resource, current, content, target, sensitive) \
        if noop or log.isEnabledFor(logging.DEBUG) else None
    if noop:
        log.debug("%s: would write", resource.dest)
        return Outcome(resource.dest, WOULD_WRITE, diff=text)
    if text is not None:
        log.debug("%s: diff\n%s", resource.dest, printable(text))
    publish = _Publish(resource, sensitive, run)
    try:
        reloaded = publish(content, target, token)
    except WriteError as exc:
        return _failed(resource, exc, diff=text, steps=publish.steps)
    log.debug("%s: written%s", resource.dest, " and reloaded" if reloaded else "")
    return Outcome(resource.dest, WRITTEN, reloaded=reloaded, diff=text,
                   steps=tuple(publish.steps))


def retry_reload(resource: Resource, *, sensitive: bool = True,
                 run: Runner = run_command) -> Outcome:
    """Run the reload_cmd of an unchanged *resource* whose last reload failed."""
    publish = _Publish(resource, sensitive, run)
    try:
        reloaded = publish.reload()
    except WriteError as exc:
        return _failed(resource, exc, steps=publish.steps)
    return Outcome(resource.dest, UNCHANGED, reloaded=reloaded, steps=tuple(publish.steps))


def _failed(resource: Resource, error: WriteError, diff: Optional[str] = None,
            steps: Optional[List[StepResult]] = None) -> Outcome:
    log.debug("failed: %s", error)
    return Outcome(resource.dest, FAILED, diff=diff, error=error, steps=tuple(steps or ()))


class _Publish:
    """Stage, check, rename, reload one resource, remembering each command that ran."""

    def __init__(self, resource: Resource, sensitive: bool, run: Runner) -> None:
        self.resource, self.sensitive, self.run = resource, sensitive, run
        self.steps: List[StepResult] = []

    def __call__(self, content: bytes, target: Target, token: Callable[[], str]) -> bool:
        """True when a reload_cmd ran successfully; raises WriteError."""
        resource = self.resource
        make_parents(resource)
        staged = create_stage(resource, content, target, token)
        renamed = False
        try:
            self._check(staged)
            replace_dest(resource, staged)
            renamed = True
        finally:
            if not renamed:
                discard(staged)
        sync_directory(resource)
        return self.reload()

    def _check(self, staged: str) -> None:
        """Run check_cmd on the staged file; any failure keeps the old file."""
        resource = self.resource
        if not resource.check_cmd:
            return
        cmd = fill_placeholders(resource.check_cmd, src=staged, dest=resource.dest)
        what = self._run_step(CHECK, "check_cmd", cmd, resource.check_timeout)
        if what is not None:
            hint = ("the old file was kept; raise check_timeout or fix check_cmd"
                    if "timed out" in what else
                    "the old file was kept; fix the template or check_cmd")
            raise WriteError(where(resource), what, hint)

    def reload(self) -> bool:
        """Run reload_cmd (``{{ src }}`` and ``{{ dest }}`` both mean dest by now)."""
        resource = self.resource
        if not resource.reload_cmd:
            return False
        cmd = fill_placeholders(resource.reload_cmd, src=resource.dest, dest=resource.dest)
        what = self._run_step(RELOAD, "reload_cmd", cmd, resource.reload_timeout)
        if what is not None:
            raise WriteError(where(resource), f"file written, but {what}",
                             "the new file stays in place; fix the service or reload_cmd and "
                             "reload by hand (the next run retries it)")
        return True

    def _run_step(self, step: str, label: str, cmd: str, timeout: float) -> Optional[str]:
        """Run one command and record it; None on success, else the one-line failure."""
        log.debug("running %s: %s", label, cmd)
        started = time.monotonic()
        try:
            result = self.run(cmd, timeout)
        except OSError as exc:
            self.steps.append(StepResult(step, time.monotonic() - started, NOT_STARTED))
            return f"{label} could not start: {reason(exc)}"
        self.steps.append(StepResult(step, time.monotonic() - started, result.returncode,
                                     result.timed_out))
        if result.ok:
            return None
        return describe_failure(label, result, timeout, sensitive=self.sensitive)
