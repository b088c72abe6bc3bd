"""The per-resource pipeline: compare -> stage -> check -> replace -> reload.

confd's resource sync made strict, composed from the collaborators in this
package: :mod:`.files` (stage names, stage file, rename, directory fsync),
:mod:`.commands` (check_cmd and reload_cmd in their own process group) and
:mod:`.diff`.  Whatever fails before the rename leaves the old file exactly
as it was and no stage file behind.  When bytes, mode and owner already
match, nothing at all happens: no stage file, no write, no reload, the inode
and mtime stay as they are.

The destination's directory is opened safely (:mod:`.paths`) and every
step works relative to it.  A symlink at the destination is never read nor
written through: it counts as "different" and the write replaces the link
itself with a regular file, as ``rename(2)`` does.  Owner and group are
inherited only from a regular file owned by root or by the configured
owner (a file a user planted does not hand its owner to the new one); a
sensitive (credentials) resource defaults to root:root.

The outcome records every command that ran (step, seconds, result), so
metrics read outcomes and never reach into this step.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

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
    Place,
    Target,
    WriteError,
    create_stage,
    discard,
    open_place,
    random_token,
    reason,
    replace_dest,
    sync_directory,
    where,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Current:
    """The regular file now at dest (never a symlink's target)."""

    content: bytes
    mode: int
    uid: int
    gid: int


def _read_current(place: Optional[Place]) -> Optional[_Current]:
    """The regular file at dest, or None when there is none (absent, a symlink, a FIFO...).

    O_NOFOLLOW keeps a symlink's target (say /etc/shadow) out of the compare
    and the diff; O_NONBLOCK keeps a FIFO at dest from hanging us.
    """
    if place is None:
        return None
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(place.name, flags, dir_fd=place.dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            log.info("%s is a symlink: it will be replaced by a regular file",
                     place.path(place.name))
            return None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, "rb") as f:
        return _Current(f.read(), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def _target(resource: Resource, current: Optional[_Current], sensitive: bool) -> Target:
    """Unset owner/group: keep the replaced file's, if root or the configured owner owns it.

    A sensitive resource instead defaults to the user running us (root:root).
    """
    uid, gid = resource.owner, resource.group
    if sensitive:
        return Target(resource.mode, os.geteuid() if uid is None else uid,
                      os.getegid() if gid is None else gid)
    if current is not None and current.uid in (0, resource.owner):
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
        place = open_place(resource, create=False)
    except WriteError as exc:
        return _failed(resource, exc)
    try:
        return _sync_in(resource, place, content, sensitive, noop, run, token)
    finally:
        if place is not None:
            os.close(place.dir_fd)


def _sync_in(resource: Resource, place: Optional[Place], content: bytes, sensitive: bool,
             noop: bool, run: Runner, token: Callable[[], str]) -> Outcome:
    """:func:`sync` once dest's directory is open (*place* None: it does not exist yet)."""
    try:
        current = _read_current(place)
    except OSError as exc:
        return _failed(resource, WriteError(where(resource), f"reading the current file "
                                            f"failed: {reason(exc)}",
                                            "check the destination path and its permissions"))
    target = _target(resource, current, sensitive)
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
        reloaded = publish(place, content, target, token)
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

    def __call__(self, place: Optional[Place], content: bytes, target: Target,
                 token: Callable[[], str]) -> bool:
        """True when a reload_cmd ran successfully; raises WriteError."""
        if place is not None:
            return self._publish_in(place, content, target, token)
        created = open_place(self.resource, create=True)
        assert created is not None
        try:
            return self._publish_in(created, content, target, token)
        finally:
            os.close(created.dir_fd)

    def _publish_in(self, place: Place, content: bytes, target: Target,
                    token: Callable[[], str]) -> bool:
        resource = self.resource
        staged = create_stage(resource, place, content, target, token)
        renamed = False
        try:
            self._check(place.path(staged))
            replace_dest(resource, place, staged)
            renamed = True
        finally:
            if not renamed:
                discard(place, staged)
        sync_directory(resource, place)
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

    def _run_step(self, step: str, label: str, cmd: Tuple[str, Tuple[str, str]],
                  timeout: float) -> Optional[str]:
        """Run one command and record it; None on success, else the one-line failure."""
        shell, args = cmd
        log.debug("running %s: %s (with $1=%r $2=%r)", label, shell, *args)
        started = time.monotonic()
        try:
            result = self.run(shell, timeout, args)
        except OSError as exc:
            self.steps.append(StepResult(step, time.monotonic() - started, NOT_STARTED))
            return f"{label} could not start: {reason(exc)}"
        self.steps.append(StepResult(step, time.monotonic() - started, result.returncode,
                                     result.timed_out))
        if result.ok:
            return None
        return describe_failure(label, result, timeout, sensitive=self.sensitive)
