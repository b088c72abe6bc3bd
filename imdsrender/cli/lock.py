"""The run lock: one writer per confdir at a time (the boot unit and the timer may overlap).

The lock file lives only in a directory no other user can write (issue 13):
``/run/imdsrender`` for root (``RuntimeDirectory=imdsrender`` in the units,
created 0700 here when missing), ``$XDG_RUNTIME_DIR/imdsrender`` or
``~/.cache/imdsrender`` for a non-root run, ``$IMDSRENDER_RUNTIME_DIR`` when
set.  A lock in a world-writable directory (``/run/lock``, ``/tmp``) could be
pre-created and held by any local user, blocking every run forever.  Both the
directory and the file are opened without following symlinks and refused
unless owned by us and not writable by others.  Waiting is bounded
(``$IMDSRENDER_LOCK_WAIT``, default :data:`LOCK_WAIT`) and ends in one line
and exit 1; SIGTERM/SIGINT while waiting end the run at once (143/130).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import stat
import threading
import time
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Mapping, Optional

from ..errors import Error
from ..quantities import parse_duration

if TYPE_CHECKING:  # pragma: no cover
    from .pipeline import Job

log = logging.getLogger(__name__)

ROOT_RUNTIME_DIR = "/run/imdsrender"
LOCK_WAIT = 120.0  # seconds; below the units' TimeoutStartSec=180
POLL = 0.1  # seconds between attempts while another run holds the lock
_EXIT_ON_SIGNAL: Dict[int, int] = {signal.SIGTERM: 143, signal.SIGINT: 130}


class LockError(Error):
    """The run lock could not be taken: nothing was rendered or written (exit 1)."""


class LockInterrupted(Error):
    """SIGTERM/SIGINT arrived while waiting for the lock; exit 128 + the signal."""

    def __init__(self, where: str, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(where, f"{name} while waiting for another run to finish",
                         "nothing was written")
        self.exit_code = _EXIT_ON_SIGNAL[signum]


def runtime_dir(environ: Mapping[str, str] = os.environ) -> str:
    """Where runtime state goes: never a directory other users can write."""
    override = environ.get("IMDSRENDER_RUNTIME_DIR")
    if override:
        return override
    if os.geteuid() == 0:
        return ROOT_RUNTIME_DIR
    xdg = environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return os.path.join(xdg, "imdsrender")
    return os.path.join(os.path.expanduser("~"), ".cache", "imdsrender")


def lock_wait(environ: Mapping[str, str] = os.environ) -> float:
    value = environ.get("IMDSRENDER_LOCK_WAIT")
    return LOCK_WAIT if value is None else parse_duration(value, "IMDSRENDER_LOCK_WAIT")


def _refuse_unless_ours(fd: int, what: str) -> None:
    """One clear line unless *fd* is ours and not writable by group or others."""
    st = os.fstat(fd)
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != os.geteuid() or mode & 0o022:
        raise LockError(what, f"owned by uid {st.st_uid} with mode {mode:04o}, expected uid "
                        f"{os.geteuid()} and not writable by group or others",
                        "someone else created it: remove it (imdsrender recreates it)")


def open_lock_file(directory: str, name: str) -> int:
    """Open (creating) DIR/NAME safely; returns the fd.  Raises LockError."""
    try:
        os.makedirs(directory, 0o700, exist_ok=True)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise LockError(directory, f"cannot open the runtime directory: {exc.strerror or exc}",
                        "it must be a directory (not a symlink) owned by the user running "
                        "imdsrender") from exc
    try:
        _refuse_unless_ours(dir_fd, directory)
        path = os.path.join(directory, name)
        try:
            fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                         | os.O_NONBLOCK, 0o600, dir_fd=dir_fd)
        except OSError as exc:
            raise LockError(path, f"cannot open the lock file: {exc.strerror or exc}",
                            "remove it if it is not a regular file (imdsrender recreates it)"
                            ) from exc
    finally:
        os.close(dir_fd)
    try:
        _refuse_unless_ours(fd, path)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LockError(path, "not a regular file", "remove it (imdsrender recreates it)")
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _signals_noted(noted: List[int]) -> Iterator[None]:
    """While waiting, SIGTERM/SIGINT are noted (and passed on to the previous handler)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in _EXIT_ON_SIGNAL}

    def note(signum: int, frame: object) -> None:
        noted.append(signum)
        handler = previous[signum]
        if callable(handler):  # interval mode's stop.set(): it stops after this run
            # cli.main turns SIGTERM/Ctrl-C into exceptions; here the wait loop raises
            # LockInterrupted instead, which says what was interrupted.
            with contextlib.suppress(BaseException):
                handler(signum, frame)  # type: ignore[arg-type]

    for sig in _EXIT_ON_SIGNAL:
        signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def acquire(fd: int, path: str, timeout: float, *,
            clock: Callable[[], float] = time.monotonic) -> None:
    """flock *fd* exclusively within *timeout* seconds; raises LockError / LockInterrupted."""
    import fcntl

    deadline = clock() + timeout
    noted: List[int] = []
    waiting_logged = False
    with _signals_noted(noted):
        while True:
            if noted:
                raise LockInterrupted(path, noted[0])
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if clock() >= deadline:
                raise LockError(path, f"still held by another run after {timeout:g}s",
                                "nothing was written; the next run retries (fuser shows "
                                "who holds it; IMDSRENDER_LOCK_WAIT sets the wait)")
            if not waiting_logged:
                log.info("waiting up to %gs for another run to release %s", timeout, path)
                waiting_logged = True
            time.sleep(POLL)


@contextlib.contextmanager
def run_lock(job: Job, environ: Optional[Mapping[str, str]] = None) -> Iterator[None]:
    """Hold the confdir's lock for the block (not in --noop, which writes nothing).

    Holding it is what makes removing stray stage files safe: a stage file
    found while we hold the lock belongs to a run that died.
    """
    if job.noop:
        yield
        return
    env = os.environ if environ is None else environ
    directory = runtime_dir(env)
    name = hashlib.sha1(os.path.abspath(job.templates_dir).encode()).hexdigest()[:12] + ".lock"
    fd = open_lock_file(directory, name)
    try:
        acquire(fd, os.path.join(directory, name), lock_wait(env))
        yield  # closing the fd releases the lock
    finally:
        os.close(fd)
