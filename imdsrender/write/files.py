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

import errno
import logging
import os
import re
import secrets
import stat
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Pattern

from ..errors import Error
from ..model import Resource
from .diff import owner_text

log = logging.getLogger(__name__)

STAGE_MARKER = "imdsr-"
TOKEN_LENGTH = 8  # characters of [0-9a-z]; stage_pattern() depends on it
DIR_MODE = 0o755


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

    Only regular files matching :func:`stage_pattern` are touched.  Another
    imdsrender run writing the same destination right now owns a fresh stage
    file: call this under the run lock, or pass *min_age* (seconds since the
    file's mtime) to spare young ones.
    """
    directory = os.path.dirname(dest) or "."
    pattern = stage_pattern(dest)
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    removed = []
    for name in names:
        if not pattern.match(name):
            continue
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or clock() - st.st_mtime < min_age:
                continue
            os.unlink(path)
        except OSError as exc:
            log.warning("%s: could not remove stale stage file %s: %s", dest, path,
                           reason(exc))
            continue
        log.info("%s: removed stale stage file %s", dest, path)
        removed.append(path)
    return removed


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


def make_parents(resource: Resource) -> None:
    """Create dest's missing ancestors with mode 0755 (exactly: umask does not apply)."""
    missing = []
    directory = os.path.dirname(resource.dest) or "."
    while not os.path.isdir(directory) and directory != os.path.dirname(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
            os.chmod(path, DIR_MODE)
            fsync_dir(os.path.dirname(path))
        except OSError as exc:
            if isinstance(exc, FileExistsError) and os.path.isdir(path):
                continue  # created concurrently
            raise WriteError(where(resource), f"creating directory {path} failed: "
                             f"{reason(exc)}", "check the destination path and its "
                             "permissions") from exc
        log.info("%s: created directory %s", resource.dest, path)


def create_stage(resource: Resource, content: bytes, target: Target,
                  token: Callable[[], str]) -> str:
    """Create and fill the stage file; returns its path (nothing left on failure).

    Created O_EXCL|O_NOFOLLOW with 0600 so nobody can read it before its
    final mode is set.  chown comes before chmod (chown may clear set-id
    bits) and fsync last, so data, mode and owner are all durable before
    the rename.
    """
    fd, path = _open_stage(resource, token)
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
        discard(path)
        if step.startswith("setting owner"):
            hint = "the old file was kept; check that the owner and group exist and " \
                   "that imdsrender runs as root"
        else:
            hint = "the old file was kept; check free space and permissions"
        raise WriteError(where(resource), f"{step} failed: {reason(exc)}", hint) from exc
    return path


def _open_stage(resource: Resource, token: Callable[[], str]) -> tuple[int, str]:
    for _ in range(100):
        path = stage_path(resource.dest, token())
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
        except OSError as exc:
            raise WriteError(where(resource), f"creating the stage file {path} failed: "
                             f"{reason(exc)}", "the old file was kept; check that the "
                             "directory is writable") from exc
    raise WriteError(where(resource), "creating the stage file failed: no free name",
                     "remove stale .*.imdsr-* files next to the destination")


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]


def discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not remove stage file %s: %s", path, reason(exc))


def replace_dest(resource: Resource, staged: str) -> None:
    try:
        os.replace(staged, resource.dest)
    except OSError as exc:
        raise WriteError(where(resource), f"rename failed: {reason(exc)}",
                         "the old file was kept; make sure dest is a file path on a "
                         "writable filesystem") from exc


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # filesystems without directory fsync
            raise
    finally:
        os.close(fd)


def sync_directory(resource: Resource) -> None:
    """Make the rename durable; a failure here means the new file may not survive a crash."""
    try:
        fsync_dir(os.path.dirname(resource.dest) or ".")
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
        discard(temp)
        raise
    fsync_dir(directory)
