"""write.files: stage names, stale stage cleanup, the small-file atomic write."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import List, Sequence

import pytest

from imdsrender.write import (
    WRITTEN,
    CommandResult,
    cleanup_stale,
    stage_path,
    stage_pattern,
    sync,
)
from tests.write.helpers import listing, make


def test_stage_name_collision_takes_the_next_token(etc: Path) -> None:
    dest = etc / "app.conf"
    taken = Path(stage_path(str(dest), "aaaaaaaa"))
    taken.write_text("someone else's")
    tokens = iter(["aaaaaaaa", "bbbbbbbb"])
    seen: List[str] = []

    def runner(cmd: str, timeout: float, args: Sequence[str] = ()) -> CommandResult:
        seen.append(args[0])
        return CommandResult(cmd, 0, False, b"", b"")

    out = sync(make(dest, check_cmd="check {{ src }}"), b"x", run=runner,
               token=lambda: next(tokens))
    assert out.status == WRITTEN
    assert seen == [f"{etc}/.app.imdsr-bbbbbbbb.conf"]
    assert taken.read_text() == "someone else's"


def test_cleanup_stale_removes_only_ours(etc: Path) -> None:
    dest = etc / "app.conf"
    ours = [".app.imdsr-0123abcd.conf", ".app.imdsr-zzzz9999.conf"]
    not_ours = ["app.conf", ".app.imdsr-0123abcd.txt", ".app.imdsr-0123.conf",
                ".other.imdsr-0123abcd.conf", ".app.conf.swp", ".app.imdsr-0123abcd.conf.bak",
                "x.app.imdsr-0123abcd.conf"]
    for name in ours + not_ours:
        (etc / name).write_text(name)
    (etc / ".app.imdsr-dir00000.conf").mkdir()
    removed = cleanup_stale(str(dest))
    assert sorted(removed) == sorted(str(etc / n) for n in ours)
    assert listing(etc) == sorted(not_ours + [".app.imdsr-dir00000.conf"])


def test_cleanup_stale_spares_young_files_and_missing_dirs(etc: Path, tmp_path: Path) -> None:
    dest = etc / "app.conf"
    young = etc / ".app.imdsr-00000000.conf"
    young.write_text("in progress")
    mtime = young.stat().st_mtime
    assert cleanup_stale(str(dest), min_age=60, clock=lambda: mtime + 10) == []
    assert cleanup_stale(str(dest), min_age=60, clock=lambda: mtime + 61) == [str(young)]
    assert cleanup_stale(str(tmp_path / "nowhere" / "app.conf")) == []


@pytest.mark.parametrize("name, staged", [
    ("app.conf", ".app.imdsr-TOKEN.conf"),
    ("app", ".app.imdsr-TOKEN"),
    ("a.tar.gz", ".a.tar.imdsr-TOKEN.gz"),
    (".env", "..env.imdsr-TOKEN"),
])
def test_stage_names(name: str, staged: str, tmp_path: Path) -> None:
    dest = str(tmp_path / name)
    path = stage_path(dest, "0a1b2c3d")
    assert path == str(tmp_path / staged.replace("TOKEN", "0a1b2c3d"))
    assert stage_pattern(dest).match(os.path.basename(path))


def test_write_small_file_replaces_atomically_with_mode_and_fsync(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imdsrender.write import write_small_file

    path = tmp_path / "out.json"
    path.write_text("old\n")
    synced: List[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(stat.S_IFMT(os.fstat(fd).st_mode))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_small_file(str(path), b"new\n", 0o600)
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert synced == [stat.S_IFREG, stat.S_IFDIR]  # the data, then the rename
    assert listing(tmp_path) == ["out.json"]


def test_write_small_file_failure_keeps_the_old_file_and_no_temp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from imdsrender.write import write_small_file

    path = tmp_path / "out.prom"
    path.write_text("old\n")
    seen: List[str] = []

    def refuse(src: str, dst: str) -> None:
        seen.append(os.path.basename(src))
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        write_small_file(str(path), b"new\n", 0o644)
    assert path.read_text() == "old\n"
    assert listing(tmp_path) == ["out.prom"]
    # hidden and not ending in .prom: node_exporter never reads it half-written
    assert re.fullmatch(r"\.out\.prom\..+\.tmp", seen[0])
