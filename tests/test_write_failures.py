"""Every way a write can fail, and what the admin is told (found by mutation testing).

Each failing system call is injected by wrapping the os function for the
one path it must fail on.  The tests assert the exact one-line error
(where: what; hint), that the old file is kept (or, after the rename, that
the message says the new one is in place), that no stage file is left, and
the log lines an operator reads.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable, List, Sequence

import pytest

from imdsrender import write
from imdsrender.model import Resource
from tests.test_write_durability import resolve

ORIGIN = "conf.d/app.yaml:3"
TOKEN = "0a1b2c3d"


def resource(dest: Path, **fields: Any) -> Resource:
    return Resource(origin=ORIGIN, src="/templates/app.conf.j2", template="app.conf.j2",
                    dest=str(dest), keys=("/meta-data/instance-id",), **fields)


def ok(cmd: str, timeout: float, args: Sequence[str] = ()) -> write.CommandResult:
    return write.CommandResult(cmd, 0, False, b"", b"")


def failing(name: str, monkeypatch: pytest.MonkeyPatch, when: Callable[..., bool],
            code: int = errno.EIO) -> List[tuple]:
    """Make os.<name> raise OSError(code) for calls where *when(args, kw)* holds.

    The writer names files relative to the directory fd (``dir_fd=``), so
    *when* gets the keyword arguments too; :func:`resolve` turns a name and
    its ``dir_fd`` back into the path.
    """
    real = getattr(os, name)
    calls: List[tuple] = []

    def wrapped(*args: Any, **kw: Any) -> Any:
        calls.append(args)
        if when(*args, **kw):
            raise OSError(code, os.strerror(code))
        return real(*args, **kw)

    monkeypatch.setattr(os, name, wrapped)
    return calls


def is_stage(fd_or_path: Any, *rest: Any) -> bool:
    path = os.readlink(f"/proc/self/fd/{fd_or_path}") if isinstance(fd_or_path, int) \
        else os.fspath(fd_or_path)
    return ".imdsr-" in os.path.basename(path)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "etc"
    d.mkdir()
    path = d / "app.conf"
    path.write_bytes(b"old\n")
    return path


def failed_with(dest: Path, out: Any, what: str, hint: str) -> None:
    assert out.status == write.FAILED and not out.reloaded
    assert str(out.error) == f"{dest} ({ORIGIN}): {what}; {hint}"


KEPT_SPACE = "the old file was kept; check free space and permissions"


@pytest.mark.parametrize("call,what,hint", [
    ("write", "writing the stage file failed: Input/output error", KEPT_SPACE),
    ("fchown", "setting owner 7:8 failed: Input/output error",
     "the old file was kept; check that the owner and group exist and that imdsrender runs "
     "as root"),
    ("fchmod", "setting mode 0640 failed: Input/output error", KEPT_SPACE),
    ("fsync", "fsync of the stage file failed: Input/output error", KEPT_SPACE),
])
def test_a_failed_stage_step_keeps_the_old_file(dest: Path, monkeypatch: pytest.MonkeyPatch,
                                                call: str, what: str, hint: str) -> None:
    failing(call, monkeypatch, is_stage)
    out = write.sync(resource(dest, mode=0o640, owner=7, group=8), b"new\n", run=ok)
    failed_with(dest, out, what, hint)
    assert dest.read_bytes() == b"old\n"
    assert os.listdir(dest.parent) == ["app.conf"]


def test_a_stage_that_cannot_be_created(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing("open", monkeypatch, lambda path, *a, **kw: is_stage(path), code=errno.EACCES)
    out = write.sync(resource(dest), b"new\n", run=ok, token=lambda: TOKEN)
    failed_with(dest, out, f"creating the stage file {dest.parent}/.app.imdsr-{TOKEN}.conf "
                "failed: Permission denied",
                "the old file was kept; check that the directory is writable")


def test_a_hundred_taken_stage_names_give_up(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = failing("open", monkeypatch, lambda path, *a, **kw: is_stage(path), code=errno.EEXIST)
    out = write.sync(resource(dest), b"new\n", run=ok)
    failed_with(dest, out, "creating the stage file failed: no free name",
                "remove stale .*.imdsr-* files next to the destination")
    assert sum(1 for c in calls if is_stage(c[0])) == 100


def test_a_failed_rename(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The stage is renamed over dest relative to the directory fd (renameat).
    calls = failing("rename", monkeypatch, lambda src, dst, **kw: True)
    out = write.sync(resource(dest), b"new\n", run=ok)
    failed_with(dest, out, "rename failed: Input/output error",
                "the old file was kept; make sure dest is a file path on a writable filesystem")
    assert len(calls) == 1 and is_stage(calls[0][0]) and calls[0][1] == "app.conf"
    assert dest.read_bytes() == b"old\n"
    assert os.listdir(dest.parent) == ["app.conf"]


def test_a_failed_directory_fsync_says_the_new_file_is_in_place(
        dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reloads: List[str] = []
    failing("fsync", monkeypatch, lambda fd: not is_stage(fd))
    out = write.sync(resource(dest, reload_cmd="reload"), b"new\n",
                     run=lambda cmd, t, args=(): reloads.append(cmd) or ok(cmd, t))
    failed_with(dest, out, "file written, but fsync of its directory failed: Input/output error",
                "the new file is in place but may not survive a crash; reload_cmd was not run")
    assert dest.read_bytes() == b"new\n"
    assert reloads == []


def test_a_filesystem_without_directory_fsync_is_fine(dest: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    failing("fsync", monkeypatch, lambda fd: not is_stage(fd), code=errno.EINVAL)
    out = write.sync(resource(dest), b"new\n", run=ok)
    assert out.status == write.WRITTEN


def test_a_failed_reload_names_the_dest(dest: Path) -> None:
    fail = lambda cmd, t, args=(): write.CommandResult(cmd, 3, False, b"", b"unit not found\n")  # noqa: E731
    out = write.sync(resource(dest, reload_cmd="systemctl reload app"), b"new\n", run=fail)
    failed_with(dest, out, "file written, but reload_cmd exited 3: unit not found",
                "the new file stays in place; fix the service or reload_cmd and reload by hand "
                "(the next run retries it)")


def test_a_failed_check_says_what_to_fix(dest: Path) -> None:
    fail = lambda cmd, t, args=(): write.CommandResult(cmd, 1, False, b"", b"bad\n")  # noqa: E731
    out = write.sync(resource(dest, check_cmd="check {{ src }}"), b"new\n", run=fail)
    failed_with(dest, out, "check_cmd exited 1: bad",
                "the old file was kept; fix the template or check_cmd")
    slow = lambda cmd, t, args=(): write.CommandResult(cmd, -9, True, b"", b"")  # noqa: E731
    out = write.sync(resource(dest, check_cmd="check", check_timeout=2), b"new\n", run=slow)
    failed_with(dest, out, "check_cmd timed out after 2s (process group killed)",
                "the old file was kept; raise check_timeout or fix check_cmd")


def test_an_unreadable_dest(dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing("open", monkeypatch,
            lambda path, *a, **kw: resolve(path, kw.get("dir_fd")) == str(dest),
            code=errno.EACCES)
    out = write.sync(resource(dest), b"new\n", run=ok)
    failed_with(dest, out, "reading the current file failed: Permission denied",
                "check the destination path and its permissions")


def test_a_fifo_at_dest_is_not_read(tmp_path: Path) -> None:
    """Opening a FIFO without O_NONBLOCK would hang the run until a writer came."""
    fifo = tmp_path / "app.conf"
    os.mkfifo(fifo)
    outcome: List[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(
        write.sync(resource(fifo), b"new\n", run=ok)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():  # unblock the hung reader so the thread can end
        with open(fifo, "wb"):
            pass
        worker.join(timeout=5)
        pytest.fail("sync blocked reading a FIFO at dest")
    assert outcome[0].status == write.WRITTEN
    assert fifo.read_bytes() == b"new\n"  # the FIFO was replaced by a regular file


# ----------------------------------------------------------------- directories

def test_missing_directories_are_created_0755_even_under_umask_0(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """No moment where a missing parent is world-writable, and only missing ones are made."""
    created: List[tuple] = []
    real_mkdir = os.mkdir

    def mkdir(path: Any, mode: int = 0o777, **kw: Any) -> None:
        real_mkdir(path, mode, **kw)
        full = resolve(path, kw.get("dir_fd"))  # made relative to its parent's fd (mkdirat)
        created.append((full, stat.S_IMODE(os.stat(full).st_mode)))

    monkeypatch.setattr(os, "mkdir", mkdir)
    dest = tmp_path / "a" / "b" / "app.conf"
    old = os.umask(0)
    try:
        with caplog.at_level(logging.INFO):
            out = write.sync(resource(dest), b"x\n", run=ok)
    finally:
        os.umask(old)
    assert out.status == write.WRITTEN
    assert created == [(str(tmp_path / "a"), 0o755), (str(tmp_path / "a" / "b"), 0o755)]
    assert caplog.messages == [f"created directory {tmp_path / 'a'}",
                               f"created directory {tmp_path / 'a' / 'b'}"]


def test_a_directory_created_concurrently_is_fine(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real_mkdir = os.mkdir
    first = str(tmp_path / "a")

    raced: List[str] = []

    def racing(path: Any, mode: int = 0o777, **kw: Any) -> None:
        real_mkdir(path, mode, **kw)
        if resolve(path, kw.get("dir_fd")) == first:
            raced.append(first)
            raise FileExistsError(errno.EEXIST, "File exists")  # another run made it first

    monkeypatch.setattr(os, "mkdir", racing)
    dest = tmp_path / "a" / "b" / "app.conf"
    assert write.sync(resource(dest), b"x\n", run=ok).status == write.WRITTEN
    assert raced == [first]  # the race really was simulated
    assert dest.read_bytes() == b"x\n"


def test_a_directory_that_cannot_be_created(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    failing("mkdir", monkeypatch, lambda *a, **kw: True, code=errno.EACCES)
    dest = tmp_path / "a" / "b" / "app.conf"
    out = write.sync(resource(dest), b"x\n", run=ok)
    # The directory is made component by component from /: the message names the
    # one that failed (a/), not only dest's (a/b/).
    failed_with(dest, out, f"creating directory {tmp_path / 'a'} failed: Permission denied",
                "check the destination path and its permissions")


# ----------------------------------------------------------------- owner, outcome, logs

def test_a_new_file_without_owner_belongs_to_the_writer(tmp_path: Path) -> None:
    dest = tmp_path / "app.conf"
    write.sync(resource(dest), b"x\n", run=ok)
    st = dest.stat()
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())


def test_outcomes_and_debug_log(dest: Path, caplog: pytest.LogCaptureFixture) -> None:
    res = resource(dest, reload_cmd="reload")
    noop = write.sync(res, b"new\n", noop=True, run=ok)
    assert (noop.dest, noop.status) == (str(dest), write.WOULD_WRITE)
    quiet = write.sync(res, b"new\n", run=ok)
    assert (quiet.dest, quiet.status, quiet.reloaded, quiet.diff) == \
        (str(dest), write.WRITTEN, True, None)
    same = write.sync(res, b"new\n", run=ok)
    assert (same.dest, same.status) == (str(dest), write.UNCHANGED)

    with caplog.at_level(logging.DEBUG, logger="imdsrender"):
        write.sync(res, b"new\n", noop=True, run=ok)
        write.sync(res, b"newer\n", noop=True, run=ok)
        write.sync(res, b"newer\n", run=ok)
        fail = lambda cmd, t, args=(): write.CommandResult(cmd, 1, False, b"", b"")  # noqa: E731
        failed = write.sync(resource(dest, check_cmd="false"), b"newest\n", run=fail,
                            token=lambda: TOKEN)
    assert failed.diff is not None and "+newest" in failed.diff
    assert [m for m in caplog.messages if not m.startswith(("failed: ", f"{dest}: diff"))] == [
        f"{dest}: unchanged",
        f"{dest}: would write",
        f"running reload_cmd: reload (with $1='{dest}' $2='{dest}')",
        f"{dest}: written and reloaded",
        f"running check_cmd: false (with $1='{dest.parent}/.app.imdsr-{TOKEN}.conf' "
        f"$2='{dest}')",
    ]


def test_a_relative_dest_lives_in_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dest without a directory part means ".": nothing else is created or touched."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".app.imdsr-00000000.conf").write_text("left by a killed run")
    # Returned as the path the directory walk opened: absolute.
    assert write.cleanup_stale("app.conf") == [str(tmp_path / ".app.imdsr-00000000.conf")]
    assert write.sync(resource(Path("app.conf")), b"x\n", run=ok).status == write.WRITTEN
    assert os.listdir(tmp_path) == ["app.conf"]


def test_cleanup_stale_logs_and_goes_on_after_a_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    dest = tmp_path / "app.conf"
    stuck, stale = tmp_path / ".app.imdsr-00000000.conf", tmp_path / ".app.imdsr-11111111.conf"
    for path in (stuck, stale):
        path.write_text("x")
        os.utime(path, (1000, 1000))
    failing("unlink", monkeypatch,
            lambda path, **kw: resolve(path, kw.get("dir_fd")) == str(stuck), errno.EPERM)
    with caplog.at_level(logging.INFO):
        removed = write.cleanup_stale(str(dest), min_age=60, clock=lambda: 1060.0)
    assert removed == [str(stale)]
    assert stuck.exists() and not stale.exists()
    assert caplog.messages == [
        f"{dest}: could not remove stale stage file {stuck}: Operation not permitted",
        f"{dest}: removed stale stage file {stale}",
    ]


def test_a_stage_file_that_cannot_be_removed_is_reported(
        dest: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    failing("unlink", monkeypatch, lambda path, **kw: is_stage(path), errno.EPERM)
    fail = lambda cmd, t, args=(): write.CommandResult(cmd, 1, False, b"", b"")  # noqa: E731
    with caplog.at_level(logging.WARNING):
        write.sync(resource(dest, check_cmd="false"), b"new\n", run=fail, token=lambda: TOKEN)
    assert caplog.messages == [f"could not remove stage file {dest.parent}/.app.imdsr-{TOKEN}"
                               ".conf: Operation not permitted"]


def test_a_command_killed_by_an_unnamed_signal() -> None:
    result = write.CommandResult("reload", -200, False, b"", b"secret output\n")
    assert write.describe_failure("reload_cmd", result, 5, sensitive=False) == \
        "reload_cmd killed by signal 200: secret output"
    assert write.describe_failure("reload_cmd", result, 5, sensitive=True) == \
        "reload_cmd killed by signal 200: output withheld (resource uses credentials)"
