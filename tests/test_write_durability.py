"""Durability of a write, observed at the system calls (issue 19, survivors 1-3).

A SIGKILL test cannot see a missing fsync: the page cache still holds the
data.  These tests wrap the os calls the writer makes and assert the order
of the durable operations and the mode a stage file has the moment it
exists, before the later fchmod can hide a too-open creation mode.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any, Iterator, List, Sequence, Tuple

import pytest

from imdsrender import write
from imdsrender.model import Resource

Event = Tuple[str, str]


def resource(dest: Path, **fields: Any) -> Resource:
    return Resource(origin="conf.d/app.yaml:3", src="/templates/app.conf.j2",
                    template="app.conf.j2", dest=str(dest), keys=("/meta-data/instance-id",),
                    **fields)


def fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def resolve(path: Any, dir_fd: Any) -> str:
    """The absolute path an ``*at`` call names: *path* relative to *dir_fd* if given.

    The writer opens the destination's directory once and then names the
    stage file and dest relative to that fd (openat, renameat).
    """
    path = os.fspath(path)
    if dir_fd is None or os.path.isabs(path):
        return path
    return os.path.join(fd_path(dir_fd), path)


def ok(cmd: str, timeout: float, args: Sequence[str] = ()) -> write.CommandResult:
    return write.CommandResult(cmd, 0, False, b"", b"")


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


class Recorder:
    """Wraps os.write / os.fsync / os.replace / os.rename and the command runner.

    Renames are recorded whether they name absolute paths or names relative
    to ``src_dir_fd``/``dst_dir_fd`` (what the writer does now).

    Only calls on paths below *root* are recorded, so pytest's own output
    never shows up.  Names are "stage" (the staged file), "dest" and "dir"
    (the destination's directory).
    """

    def __init__(self, root: Path, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.dest = str(root), str(dest)
        self.events: List[Event] = []
        real_write, real_fsync = os.write, os.fsync

        def name(path: str) -> str:
            if path == self.dest:
                return "dest"
            if path == os.path.dirname(self.dest):
                return "dir"
            return "stage" if write.stage_pattern(self.dest).match(os.path.basename(path)) \
                else path

        def record(op: str, path: str) -> None:
            if path.startswith(self.root):
                self.events.append((op, name(path)))

        def wrapped_write(fd: int, data: Any) -> int:
            record("write", fd_path(fd))
            return real_write(fd, data)

        def wrapped_fsync(fd: Any) -> None:
            record("fsync", fd_path(fd if isinstance(fd, int) else fd.fileno()))
            real_fsync(fd)

        def renaming(real: Any) -> Any:
            def wrapped(src: Any, dst: Any, **kw: Any) -> None:
                full_src = resolve(src, kw.get("src_dir_fd"))
                full_dst = resolve(dst, kw.get("dst_dir_fd"))
                if full_src.startswith(self.root):
                    self.events.append(("rename", f"{name(full_src)}->{name(full_dst)}"))
                real(src, dst, **kw)
            return wrapped

        monkeypatch.setattr(os, "write", wrapped_write)
        monkeypatch.setattr(os, "fsync", wrapped_fsync)
        monkeypatch.setattr(os, "replace", renaming(os.replace))
        monkeypatch.setattr(os, "rename", renaming(os.rename))

    def command(self, cmd: str, timeout: float,
                args: Sequence[str] = ()) -> write.CommandResult:
        self.events.append(("command", cmd))
        return ok(cmd, timeout, args)

    def squeezed(self) -> List[Event]:
        """Events with repeated writes of one file folded into one."""
        out: List[Event] = []
        for event in self.events:
            if not out or out[-1] != event or event[0] != "write":
                out.append(event)
        return out


@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "replacing"])
def test_durable_operations_happen_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            existing: bool) -> None:
    """write, fsync(stage), check, rename, fsync(dir), and only then reload."""
    etc = tmp_path / "etc"
    etc.mkdir()
    dest = etc / "app.conf"
    if existing:
        dest.write_bytes(b"old\n")
    res = resource(dest, check_cmd="check {{ src }}", reload_cmd="reload")
    rec = Recorder(tmp_path, dest, monkeypatch)

    outcome = write.sync(res, b"new contents\n", run=rec.command)

    assert outcome.status == write.WRITTEN and outcome.reloaded
    assert dest.read_bytes() == b"new contents\n"
    steps = [e if e[0] != "command" else ("command", e[1].split()[0]) for e in rec.squeezed()]
    assert steps == [
        ("write", "stage"),
        ("fsync", "stage"),
        ("command", "check"),
        ("rename", "stage->dest"),
        ("fsync", "dir"),
        ("command", "reload"),
    ]


def test_no_reload_before_the_directory_is_synced(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Without check_cmd the order still holds: the rename is durable before reload."""
    dest = tmp_path / "app.conf"
    rec = Recorder(tmp_path, dest, monkeypatch)

    outcome = write.sync(resource(dest, reload_cmd="reload"), b"x\n", run=rec.command)

    assert outcome.status == write.WRITTEN
    assert rec.squeezed() == [("write", "stage"), ("fsync", "stage"),
                              ("rename", "stage->dest"), ("fsync", "dir"),
                              ("command", "reload")]


def test_stage_file_is_private_from_the_moment_it_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None) -> None:
    """Under umask 022 the stage file is created 0600, before mode and owner are set.

    The final mode (here 0644) comes from a later fchmod, so only the mode at
    creation shows whether the secret-bearing bytes were readable by others
    while being written.
    """
    dest = tmp_path / "app.conf"
    created: List[Tuple[str, int]] = []
    real_open = os.open

    def wrapped_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        full = resolve(path, kw.get("dir_fd"))  # the stage is opened relative to dest's dir
        fd = real_open(path, flags, mode, **kw)
        if flags & os.O_CREAT and full.startswith(str(tmp_path)):
            created.append((os.path.basename(full), stat.S_IMODE(os.fstat(fd).st_mode)))
        return fd

    monkeypatch.setattr(os, "open", wrapped_open)
    outcome = write.sync(resource(dest, mode=0o644), b"secret-ish\n", run=ok)

    assert outcome.status == write.WRITTEN
    assert len(created) == 1
    name, mode = created[0]
    assert write.stage_pattern(str(dest)).match(name)
    assert mode == 0o600, f"stage file created {mode:04o}"
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644  # the final mode still applies
