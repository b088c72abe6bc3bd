"""Opening a destination's directory so that no non-root user can redirect root's write.

``O_NOFOLLOW`` protects only the last component of a path: a user who owns
``/srv/app`` can make ``/srv/app/conf`` a symlink to ``/etc/cron.d`` and
root's write of ``/srv/app/conf/job`` lands there.  So the directory is
opened from ``/`` one component at a time (``openat`` with
``O_NOFOLLOW|O_DIRECTORY``), and a symlink met on the way is followed only
when nobody but root could have placed or replaced it: the directory holding
it (checked on the fd we hold, so it cannot be swapped under us) is owned by
root and not writable by group or others, or it is sticky, owned by root
and the link is root's too (``/var/run -> /run`` keeps working).  Every
later step (read, stage, chown, rename, fsync) works relative to the fd.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import deque
from typing import Deque, List

from ..errors import Problem

log = logging.getLogger(__name__)

DIR_MODE = 0o755
MAX_SYMLINKS = 40  # as the kernel's path walk: a loop ends in ELOOP
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_directory(path: str, *, create: bool) -> int:
    """An fd of directory *path*, walked safely from ``/``; the caller closes it.

    With *create*, missing directories are made (mode 0755 exactly, umask
    does not apply).  Raises OSError (FileNotFoundError when a directory is
    missing and not *create*) or :class:`~imdsrender.errors.Problem` for a
    symlink a non-root user controls.
    """
    todo: Deque[str] = deque(os.path.abspath(path).split("/"))
    stack: List[int] = [os.open("/", _DIR_FLAGS)]
    walked: List[str] = []  # names of the directories on the stack below /
    links = 0
    try:
        while todo:
            name = todo.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                    walked.pop()
                continue
            here = "/" + "/".join(walked + [name])
            try:
                stack.append(os.open(name, _DIR_FLAGS, dir_fd=stack[-1]))
                walked.append(name)
                continue
            except FileNotFoundError:
                if not create:
                    raise
                _make_directory(stack[-1], name, here)
                todo.appendleft(name)
                continue
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                target = _trusted_link_target(stack[-1], name, here, exc)
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            if target.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop())
                walked.clear()
            todo.extendleft(reversed(target.split("/")))
        return stack.pop()
    finally:
        for fd in stack:
            os.close(fd)


def _trusted_link_target(dir_fd: int, name: str, here: str, exc: OSError) -> str:
    """The target of symlink *name* in *dir_fd* if only root controls it, else a Problem."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        raise exc  # a file where a directory should be
    holder = os.fstat(dir_fd)
    if not link_is_trusted(holder, st):
        raise Problem(f"{here} is a symlink in a directory that a non-root user can change "
                      f"(directory owner uid {holder.st_uid}, mode "
                      f"{stat.S_IMODE(holder.st_mode):04o}; link owner uid {st.st_uid}); "
                      "not following it", "point dest at the real path, or make the "
                      "directory holding the link root-owned and not group/other-writable")
    return os.readlink(name, dir_fd=dir_fd)


def link_is_trusted(holder: os.stat_result, link: os.stat_result) -> bool:
    """True when no non-root user could have placed or can replace the link."""
    if holder.st_uid != 0:
        return False
    mode = stat.S_IMODE(holder.st_mode)
    if not mode & 0o022:
        return True
    return bool(mode & stat.S_ISVTX) and link.st_uid == 0


def _make_directory(parent_fd: int, name: str, here: str) -> None:
    """mkdir *name* (0755 exactly) in *parent_fd* and make it durable; a racing mkdir is fine."""
    try:
        os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
    except FileExistsError:
        return
    except OSError as exc:  # name the directory that could not be made, not only dest's
        raise Problem(f"creating directory {here} failed: {exc.strerror or exc}",
                      "check the destination path and its permissions") from None
    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)
    fsync_fd(parent_fd)
    log.info("created directory %s", here)


def fsync_fd(fd: int) -> None:
    """fsync a directory fd; filesystems without directory fsync (EINVAL) are fine."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
