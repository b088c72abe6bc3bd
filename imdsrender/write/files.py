"""Files on disk: stage names, the atomic stage -> rename of a destination, cleanup.

A rendered file is written to a *stage file* next to its destination (same
directory, so the final ``os.replace`` is an atomic rename on one
filesystem), given its final mode and owner and fsynced before the rename;
the directory is fsynced after it.

Stage files are named ``.NAME.imdsr-XXXXXXXX.SUFFIX`` (``/etc/app/app.conf``
-> ``/etc/app/.app.imdsr-1a2b3c4d.conf``): the suffix stays last so check
tools that dispatch on it still work, the leading dot keeps them out of
``*.conf`` include globs, and the ``imdsr-`` marker plus a fixed-length token
let :func:`cleanup_stale` recognise ours (left behind by a SIGKILL) and
nothing else.

:func:`write_small_file` is the one atomic write for imdsrender's own small
outputs (the metrics textfile, ``snapshot -o``).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Pattern

from ..errors import Error, Problem
from ..model import Resource
from .diff import owner_text
from .paths import fsync_fd, open_directory

log = logging.getLogger(__name__)

STAGE_MARKER = "imdsr-"
TOKEN_LENGTH = 8  # characters of [0-9a-z]; stage_pattern() depends on it


class WriteError(Error):
    """A resource could not be written, checked or reloaded: exit 1.

    ``where`` names the destination and the resource's origin, ``what`` the
    step that failed and why, ``hint`` what to do (and whether the old or
    the new file is in place).
    """


def _split_name(dest: str) -> tuple[str, str]:
    """(stem, suffix) of dest's file name; the suffix keeps its dot, or is empty."""
    stem, suffix = os.path.splitext(os.path.basename(dest))
    return stem, suffix


def stage_path(dest: str, token: str) -> str:
    """The stage file for *dest* with random *token*: ``DIR/.STEM.imdsr-TOKEN.SUFFIX``."""
    stem, suffix = _split_name(dest)
    return os.path.join(os.path.dirname(dest), f".{stem}.{STAGE_MARKER}{token}{suffix}")


def stage_pattern(dest: str) -> Pattern[str]:
    """Matches the base names of *dest*'s stage files and nothing else."""
    stem, suffix = _split_name(dest)
    return re.compile(rf"\.{re.escape(stem)}\.{re.escape(STAGE_MARKER)}"
                      rf"[0-9a-z]{{{TOKEN_LENGTH}}}{re.escape(suffix)}\Z")


def random_token() -> str:
    return secrets.token_hex(TOKEN_LENGTH // 2)


def cleanup_stale(dest: str, *, min_age: float = 0.0,
                  clock: Callable[[], float] = time.time) -> List[str]:
    """Remove *dest*'s stage files left by a killed run; returns the removed paths.

    Only regular files matching :func:`stage_pattern` are touched, found in
    the directory opened as :func:`~.paths.open_directory` does.  Another
    imdsrender run writing the same destination right now owns a fresh stage
    file: call this under the run lock, or pass *min_age* (seconds since the
    file's mtime) to spare young ones.
    """
    directory = os.path.dirname(os.path.abspath(dest))
    pattern = stage_pattern(dest)
    try:
        dir_fd = open_directory(directory, create=False)
    except (OSError, Problem):
        return []
    removed = []
    try:
        for name in sorted(os.listdir(dir_fd)):
            path = os.path.join(directory, name)
            if pattern.match(name) and _remove_stale(dir_fd, name, path, min_age, clock, dest):
                removed.append(path)
    finally:
        os.close(dir_fd)
    return removed


def _remove_stale(dir_fd: int, name: str, path: str, min_age: float,
                  clock: Callable[[], float], dest: str) -> bool:
    """Remove stage file *name* in *dir_fd*; the log names its full *path*."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode) or clock() - st.st_mtime < min_age:
            return False
        os.unlink(name, dir_fd=dir_fd)
    except OSError as exc:
        log.warning("%s: could not remove stale stage file %s: %s", dest, path, reason(exc))
        return False
    log.info("%s: removed stale stage file %s", dest, path)
    return True


@dataclass(frozen=True)
class Target:
    """What the file must end up as; uid/gid None = whatever creating it gives."""

    mode: int
    uid: Optional[int]
    gid: Optional[int]


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def where(resource: Resource) -> str:
    return f"{resource.dest} ({resource.origin})" if resource.origin else resource.dest


@dataclass(frozen=True)
class Place:
    """dest's directory, opened safely, and dest's name in it: every step works on the fd."""

    dir_fd: int
    directory: str  # for messages and the path check_cmd gets
    name: str

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)


def open_place(resource: Resource, *, create: bool) -> Optional[Place]:
    """Open dest's directory (see :mod:`.paths`); None when it is missing and not *create*.

    The caller closes ``place.dir_fd``.  Raises WriteError.
    """
    dest = os.path.abspath(resource.dest)
    directory, name = os.path.split(dest)
    try:
        return Place(open_directory(directory, create=create), directory, name)
    except FileNotFoundError as exc:
        if not create:
            return None
        failure = f"opening directory {directory} failed: {reason(exc)}"
    except Problem as problem:
        raise problem.at(where(resource), WriteError) from None
    except OSError as exc:
        failure = f"opening directory {directory} failed: {reason(exc)}"
    raise WriteError(where(resource), failure, "check the destination path and its permissions")


def create_stage(resource: Resource, place: Place, content: bytes, target: Target,
                 token: Callable[[], str]) -> str:
    """Create and fill the stage file in *place*; returns its name (nothing left on failure).

    Created O_EXCL|O_NOFOLLOW with 0600 so nobody can read it before its
    final mode is set.  chown comes before chmod (chown may clear set-id
    bits) and fsync last, so data, mode and owner are all durable before
    the rename.
    """
    fd, name = _open_stage(resource, place, token)
    step = "writing the stage file"
    try:
        try:
            _write_all(fd, content)
            step = f"setting owner {owner_text(target.uid, target.gid)}"
            os.fchown(fd, -1 if target.uid is None else target.uid,
                      -1 if target.gid is None else target.gid)
            step = f"setting mode {target.mode:04o}"
            os.fchmod(fd, target.mode)
            step = "fsync of the stage file"
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        discard(place, name)
        if step.startswith("setting owner"):
            hint = "the old file was kept; check that the owner and group exist and " \
                   "that imdsrender runs as root"
        else:
            hint = "the old file was kept; check free space and permissions"
        raise WriteError(where(resource), f"{step} failed: {reason(exc)}", hint) from exc
    return name


def _open_stage(resource: Resource, place: Place,
                token: Callable[[], str]) -> tuple[int, str]:
    for _ in range(100):
        name = os.path.basename(stage_path(resource.dest, token()))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(name, flags, 0o600, dir_fd=place.dir_fd), name
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(where(resource), f"creating the stage file {place.path(name)} failed: "
                             f"{reason(exc)}", "the old file was kept; check that the "
                             "directory is writable") from exc
    raise WriteError(where(resource), "creating the stage file failed: no free name",
                     "remove stale .*.imdsr-* files next to the destination")


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]


def discard(place: Place, name: str) -> None:
    """Remove our stage file *name* from *place*, warning (not failing) when that fails."""
    _unlink_quietly(place.path(name), name, place.dir_fd)


def _unlink_quietly(shown: str, name: str, dir_fd: Optional[int] = None) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove stage file %s: %s", shown, reason(exc))


def replace_dest(resource: Resource, place: Place, staged: str) -> None:
    """rename(2) the stage file over dest, both relative to the directory fd."""
    try:
        os.rename(staged, place.name, src_dir_fd=place.dir_fd, dst_dir_fd=place.dir_fd)
    except OSError as exc:
        raise WriteError(where(resource), f"rename failed: {reason(exc)}",
                         "the old file was kept; make sure dest is a file path on a "
                         "writable filesystem") from exc


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def sync_directory(resource: Resource, place: Place) -> None:
    """Make the rename durable; a failure here means the new file may not survive a crash."""
    try:
        fsync_fd(place.dir_fd)
    except OSError as exc:
        raise WriteError(where(resource), f"file written, but fsync of its directory "
                         f"failed: {reason(exc)}", "the new file is in place but may not "
                         "survive a crash; reload_cmd was not run") from exc


def write_small_file(path: str, data: bytes, mode: int) -> None:
    """Replace *path* atomically with *data*, mode *mode* from the first byte.

    A hidden temp file in the same directory (``.NAME.XXXXXXXX.tmp``: never
    matched by ``*.prom`` or ``*.json`` globs, so a reader never sees it
    half-written) is chmodded, written, fsynced and renamed over *path*,
    then the directory is fsynced.  Raises OSError; the temp file is gone
    on any failure.
    """
    directory, name = os.path.split(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        try:
            os.fchmod(fd, mode)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        _unlink_quietly(temp, temp)
        raise
    fsync_dir(directory)
