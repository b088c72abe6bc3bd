"""Writing rendered files: stage -> check -> replace -> reload (DESIGN.md "Writing files").

The pipeline is confd's resource sync made strict.  A rendered file is
written to a *stage file* next to its destination (same directory, so the
final ``os.replace`` is an atomic rename on one filesystem), given its final
mode and owner, checked by ``check_cmd``, renamed over the destination, the
directory is fsynced, and only then ``reload_cmd`` runs.  Whatever fails
before the rename leaves the old file exactly as it was and no stage file
behind.  When bytes, mode and owner already match, nothing at all happens:
no stage file, no write, no reload, the inode and mtime stay as they are.

Stage files are named ``.NAME.imdsr-XXXXXXXX.SUFFIX`` (``/etc/app/app.conf``
-> ``/etc/app/.app.imdsr-1a2b3c4d.conf``): the suffix stays last so check
tools that dispatch on it still work, the leading dot keeps them out of
``*.conf`` include globs, and the ``imdsr-`` marker plus a fixed-length token
let :func:`cleanup_stale` recognise ours (left behind by a SIGKILL) and
nothing else.

Commands run through ``/bin/sh -c`` in their own session, inherit the
environment, and have their output captured (last 4 KiB of each stream).  On
timeout the whole process group is killed, so a check that spawned children
cannot outlive its deadline.

A symlink at the destination is followed for the comparison (identical
target content, mode and owner = unchanged), but a write replaces the link
itself with a regular file, as ``rename(2)`` does; the link's target is never
written through.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import logging
import os
import re
import secrets
import selectors
import shlex
import signal
import stat
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Callable, Dict, List, Optional, Pattern

from .errors import Error
from .keys import REDACTED
from .model import FAILED, UNCHANGED, WOULD_WRITE, WRITTEN, Outcome, Resource

logger = logging.getLogger(__name__)

STAGE_MARKER = "imdsr-"
TOKEN_LENGTH = 8  # characters of [0-9a-z]; stage_pattern() depends on it
DIR_MODE = 0o755
OUTPUT_TAIL = 4096  # bytes kept of each command stream
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out group
DRAIN_WINDOW = 0.5  # seconds to keep reading pipes after the shell exited
WITHHELD = "output withheld (resource uses credentials)"

_PLACEHOLDER = re.compile(r"\{\{\s*\.?(src|dest)\s*\}\}")


class WriteError(Error):
    """A resource could not be written, checked or reloaded: exit 1.

    ``where`` names the destination and the resource's origin, ``what`` the
    step that failed and why, ``hint`` what to do (and whether the old or
    the new file is in place).
    """


@dataclass(frozen=True)
class CommandResult:
    """A finished (or killed) command; stdout/stderr are the last bytes only."""

    cmd: str
    returncode: int  # negative: killed by that signal
    timed_out: bool
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0


Runner = Callable[[str, float], CommandResult]


# --------------------------------------------------------------------------- commands


class _Tail:
    """Keeps only the last *limit* bytes so a chatty command cannot eat memory."""

    def __init__(self, limit: int = OUTPUT_TAIL) -> None:
        self.limit = limit
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]


def run_command(cmd: str, timeout: float, *, kill_grace: float = KILL_GRACE,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> CommandResult:
    """Run *cmd* with ``/bin/sh -c`` in a new session, bounded by *timeout* seconds.

    On timeout the whole process group gets SIGTERM, then SIGKILL after
    *kill_grace*: killing only the shell would leave its children running
    (and holding our pipes).  Once the shell has exited, pipes are read for a
    short while longer and then abandoned, so a reload that starts a daemon
    keeping stdout open does not hang us.  Raises OSError when the shell
    cannot be started.
    """
    proc = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    tails: Dict[IO[bytes], _Tail] = {proc.stdout: _Tail(), proc.stderr: _Tail()}
    try:
        with selectors.DefaultSelector() as sel:
            for pipe in tails:
                sel.register(pipe, selectors.EVENT_READ)
            finished = _pump(sel, proc, tails, clock() + timeout, clock, sleep)
            if not finished:
                _kill_group(proc, kill_grace, clock, sleep)
            _drain(sel, tails, clock() + DRAIN_WINDOW, clock)
        returncode = proc.wait()
    finally:
        for pipe in tails:
            pipe.close()
        if proc.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing running
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    return CommandResult(cmd, returncode, not finished, bytes(tails[proc.stdout].data),
                         bytes(tails[proc.stderr].data))


def _pump(sel: selectors.BaseSelector, proc: subprocess.Popen, tails: Dict[IO[bytes], _Tail],
          deadline: float, clock: Callable[[], float],
          sleep: Callable[[float], None]) -> bool:
    """Read output until the shell exits; False when the deadline came first."""
    while proc.poll() is None:
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        if sel.get_map():
            _read_ready(sel, tails, min(remaining, 0.1))
        else:
            sleep(min(remaining, 0.05))
    return True


def _read_ready(sel: selectors.BaseSelector, tails: Dict[IO[bytes], _Tail],
                timeout: float) -> None:
    for key, _ in sel.select(max(timeout, 0.0)):
        pipe = key.fileobj
        chunk = os.read(key.fd, 65536)
        if chunk:
            tails[pipe].add(chunk)  # type: ignore[index]
        else:
            sel.unregister(pipe)


def _drain(sel: selectors.BaseSelector, tails: Dict[IO[bytes], _Tail], deadline: float,
           clock: Callable[[], float]) -> None:
    """Collect what the command wrote just before it exited."""
    while sel.get_map() and clock() < deadline:
        _read_ready(sel, tails, deadline - clock())


def _kill_group(proc: subprocess.Popen, grace: float, clock: Callable[[], float],
                sleep: Callable[[float], None]) -> None:
    """SIGTERM the process group, wait up to *grace* for it to go, then SIGKILL it."""
    _signal_group(proc.pid, signal.SIGTERM)
    end = clock() + grace
    while clock() < end and _group_alive(proc):
        sleep(0.05)
    _signal_group(proc.pid, signal.SIGKILL)


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the shell so it does not count as alive
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def render_command(cmd: str, *, src: str, dest: str) -> str:
    """Substitute ``{{ src }}`` / ``{{ dest }}`` (also confd's ``{{.src}}``), shell-quoted."""
    values = {"src": shlex.quote(src), "dest": shlex.quote(dest)}
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], cmd)


def _last_line(output: bytes) -> str:
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= 200 else line[:197] + "..."


def describe_failure(step: str, result: CommandResult, timeout: float, *,
                     sensitive: bool) -> str:
    """One line for a failed command; never the output of a sensitive resource."""
    if result.timed_out:
        return f"{step} timed out after {timeout:g}s (process group killed)"
    code = result.returncode
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exited {code}"
    if sensitive:
        return f"{step} {how}: {WITHHELD}"
    line = _last_line(result.stderr) or _last_line(result.stdout)
    return f"{step} {how}: {line}" if line else f"{step} {how} (no output)"


# --------------------------------------------------------------------------- stage files


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
            logger.warning("%s: could not remove stale stage file %s: %s", dest, path,
                           _reason(exc))
            continue
        logger.info("%s: removed stale stage file %s", dest, path)
        removed.append(path)
    return removed


# --------------------------------------------------------------------------- diff


def _lines(text: str) -> List[str]:
    """Split on ``\\n`` only (str.splitlines also splits on \\f, \\x1c, U+2028...)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """*text* with undecodable bytes as ``\\xNN``, safe for any log stream."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def diff(dest: str, old: Optional[bytes], new: bytes, *, sensitive: bool,
         old_mode: Optional[int] = None, new_mode: Optional[int] = None,
         old_owner: Optional[str] = None, new_owner: Optional[str] = None) -> str:
    """Unified diff of the file at *dest* (``old``; None = absent) against ``new``.

    Git-style metadata lines (``old mode 0644`` / ``new mode 0600``, the same
    for ``owner`` as ``uid:gid``) come first, then ``---``/``+++`` headers
    naming *dest*, then the hunks.  When *sensitive* the hunks are replaced
    by one line counting the lines.  Text is decoded with surrogateescape,
    so binary content survives: write it out with the same error handler
    (or pass it through :func:`printable`).  Returns "" when nothing differs.
    """
    meta: List[str] = []
    if old is None:
        if new_mode is not None:
            meta.append(f"new file mode {new_mode:04o}\n")
        if new_owner is not None and new_owner != _owner_text(None, None):
            meta.append(f"new file owner {new_owner}\n")
    elif old_mode is not None and new_mode is not None and old_mode != new_mode:
        meta += [f"old mode {old_mode:04o}\n", f"new mode {new_mode:04o}\n"]
    if old is not None and old_owner is not None and new_owner is not None \
            and old_owner != new_owner:
        meta += [f"old owner {old_owner}\n", f"new owner {new_owner}\n"]
    if old is not None and old == new and not meta:
        return ""
    head = [f"--- {dest if old is not None else '/dev/null'}\n", f"+++ {dest}\n"]
    return "".join(meta + head + _hunks(old or b"", new, sensitive=sensitive))


def _hunks(old: bytes, new: bytes, *, sensitive: bool) -> List[str]:
    if old == new:
        return []
    a, b = _lines(_decode(old)), _lines(_decode(new))
    if sensitive:
        return [f"contents differ ({len(a)} -> {len(b)} lines), {REDACTED}: "
                "resource uses credentials\n"]
    out = []
    for line in list(difflib.unified_diff(a, b))[2:]:  # our own headers replace difflib's
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return out


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class _Current:
    """The regular file now at dest (a symlink is followed for reading)."""

    content: bytes
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class _Target:
    """What the file must end up as; uid/gid None = whatever creating it gives."""

    mode: int
    uid: Optional[int]
    gid: Optional[int]


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _where(resource: Resource) -> str:
    return f"{resource.dest} ({resource.origin})" if resource.origin else resource.dest


def _owner_text(uid: Optional[int], gid: Optional[int]) -> str:
    return f"{'-' if uid is None else uid}:{'-' if gid is None else gid}"


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


def _target(resource: Resource, current: Optional[_Current]) -> _Target:
    """Unset owner/group mean "leave as is": keep the replaced file's, if any."""
    uid, gid = resource.owner, resource.group
    if current is not None:
        uid = current.uid if uid is None else uid
        gid = current.gid if gid is None else gid
    return _Target(resource.mode, uid, gid)


def _matches(current: Optional[_Current], content: bytes, target: _Target) -> bool:
    return (current is not None and current.content == content
            and current.mode == target.mode
            and target.uid in (None, current.uid) and target.gid in (None, current.gid))


def _describe(resource: Resource, current: Optional[_Current], content: bytes,
              target: _Target, sensitive: bool) -> str:
    old_owner = None if current is None else _owner_text(current.uid, current.gid)
    return diff(resource.dest, None if current is None else current.content, content,
                sensitive=sensitive, old_mode=None if current is None else current.mode,
                new_mode=target.mode, old_owner=old_owner,
                new_owner=_owner_text(target.uid, target.gid))


def sync(resource: Resource, content: bytes, *, sensitive: bool = False, noop: bool = False,
         run: Runner = run_command, token: Callable[[], str] = random_token) -> Outcome:
    """Bring ``resource.dest`` to *content* with the resource's mode and owner.

    Steps (DESIGN.md "Writing files"): compare -> create missing parent
    directories (0755) -> stage -> write, chown, chmod, fsync -> check_cmd
    -> rename -> fsync the directory -> reload_cmd.  Never raises WriteError:
    a failure is ``Outcome(status="failed", error=...)``.  A failed reload
    happens after the rename, so the new file stays in place (the message
    says so) and, since the next run finds it unchanged, the reload is not
    retried.  With *noop* nothing is created or run: the outcome carries the
    diff.  *sensitive* keeps contents and command output out of diffs,
    messages and logs.  *token* makes the stage name deterministic in tests.
    """
    try:
        current = _read_current(resource.dest)
    except OSError as exc:
        return _failed(resource, WriteError(_where(resource), f"reading the current file "
                                            f"failed: {_reason(exc)}",
                                            "check the destination path and its permissions"))
    target = _target(resource, current)
    if _matches(current, content, target):
        logger.debug("%s: unchanged", resource.dest)
        return Outcome(resource.dest, UNCHANGED)
    text = _describe(resource, current, content, target, sensitive) \
        if noop or logger.isEnabledFor(logging.DEBUG) else None
    if noop:
        logger.debug("%s: would write", resource.dest)
        return Outcome(resource.dest, WOULD_WRITE, diff=text)
    if text is not None:
        logger.debug("%s: diff\n%s", resource.dest, printable(text))
    try:
        reloaded = _publish(resource, content, target, sensitive, run, token)
    except WriteError as exc:
        return _failed(resource, exc, diff=text)
    logger.debug("%s: written%s", resource.dest, " and reloaded" if reloaded else "")
    return Outcome(resource.dest, WRITTEN, reloaded=reloaded, diff=text)


def _failed(resource: Resource, error: WriteError, diff: Optional[str] = None) -> Outcome:
    logger.debug("failed: %s", error)
    return Outcome(resource.dest, FAILED, diff=diff, error=error)


def _publish(resource: Resource, content: bytes, target: _Target, sensitive: bool,
             run: Runner, token: Callable[[], str]) -> bool:
    """Stage, check, rename, reload; True when a reload_cmd ran successfully."""
    _make_parents(resource)
    staged = _create_stage(resource, content, target, token)
    renamed = False
    try:
        _check(resource, staged, sensitive, run)
        _rename(resource, staged)
        renamed = True
    finally:
        if not renamed:
            _discard(staged)
    _sync_directory(resource)
    return _reload(resource, sensitive, run)


def _make_parents(resource: Resource) -> None:
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
            _fsync_dir(os.path.dirname(path))
        except OSError as exc:
            if isinstance(exc, FileExistsError) and os.path.isdir(path):
                continue  # created concurrently
            raise WriteError(_where(resource), f"creating directory {path} failed: "
                             f"{_reason(exc)}", "check the destination path and its "
                             "permissions") from exc
        logger.info("%s: created directory %s", resource.dest, path)


def _create_stage(resource: Resource, content: bytes, target: _Target,
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
            step = f"setting owner {_owner_text(target.uid, target.gid)}"
            os.fchown(fd, -1 if target.uid is None else target.uid,
                      -1 if target.gid is None else target.gid)
            step = f"setting mode {target.mode:04o}"
            os.fchmod(fd, target.mode)
            step = "fsync of the stage file"
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        _discard(path)
        if step.startswith("setting owner"):
            hint = "the old file was kept; check that the owner and group exist and " \
                   "that imdsrender runs as root"
        else:
            hint = "the old file was kept; check free space and permissions"
        raise WriteError(_where(resource), f"{step} failed: {_reason(exc)}", hint) from exc
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
            raise WriteError(_where(resource), f"creating the stage file {path} failed: "
                             f"{_reason(exc)}", "the old file was kept; check that the "
                             "directory is writable") from exc
    raise WriteError(_where(resource), "creating the stage file failed: no free name",
                     "remove stale .*.imdsr-* files next to the destination")


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove stage file %s: %s", path, _reason(exc))


def _check(resource: Resource, staged: str, sensitive: bool, run: Runner) -> None:
    """Run check_cmd on the staged file; any failure keeps the old file."""
    if not resource.check_cmd:
        return
    cmd = render_command(resource.check_cmd, src=staged, dest=resource.dest)
    what = _run_step("check_cmd", cmd, resource.check_timeout, sensitive, run)
    if what is not None:
        hint = ("the old file was kept; raise check_timeout or fix check_cmd"
                if "timed out" in what else
                "the old file was kept; fix the template or check_cmd")
        raise WriteError(_where(resource), what, hint)


def _run_step(step: str, cmd: str, timeout: float, sensitive: bool,
              run: Runner) -> Optional[str]:
    """Run one command; None on success, else the one-line failure."""
    logger.debug("running %s: %s", step, cmd)
    try:
        result = run(cmd, timeout)
    except OSError as exc:
        return f"{step} could not start: {_reason(exc)}"
    if result.ok:
        return None
    return describe_failure(step, result, timeout, sensitive=sensitive)


def _rename(resource: Resource, staged: str) -> None:
    try:
        os.replace(staged, resource.dest)
    except OSError as exc:
        raise WriteError(_where(resource), f"rename failed: {_reason(exc)}",
                         "the old file was kept; make sure dest is a file path on a "
                         "writable filesystem") from exc


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # filesystems without directory fsync
            raise
    finally:
        os.close(fd)


def _sync_directory(resource: Resource) -> None:
    """Make the rename durable; a failure here means the new file may not survive a crash."""
    try:
        _fsync_dir(os.path.dirname(resource.dest) or ".")
    except OSError as exc:
        raise WriteError(_where(resource), f"file written, but fsync of its directory "
                         f"failed: {_reason(exc)}", "the new file is in place but may not "
                         "survive a crash; reload_cmd was not run") from exc


def _reload(resource: Resource, sensitive: bool, run: Runner) -> bool:
    """Run reload_cmd (``{{ src }}`` and ``{{ dest }}`` both mean dest by now)."""
    if not resource.reload_cmd:
        return False
    cmd = render_command(resource.reload_cmd, src=resource.dest, dest=resource.dest)
    what = _run_step("reload_cmd", cmd, resource.reload_timeout, sensitive, run)
    if what is not None:
        raise WriteError(_where(resource), f"file written, but {what}",
                         "the new file stays in place; fix the service or reload_cmd and "
                         "reload by hand (not retried until the content changes)")
    return True
