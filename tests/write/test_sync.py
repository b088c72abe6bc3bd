"""write.sync against real files and real /bin/sh commands (we run as root for chown)."""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path
from typing import List, Sequence

import pytest

from imdsrender.errors import Error
from imdsrender.write import (
    FAILED,
    UNCHANGED,
    WOULD_WRITE,
    WRITTEN,
    CommandResult,
    WriteError,
    stage_pattern,
    sync,
)
from tests.write.helpers import NOBODY, SECRET, lines_of, listing, make, wait_gone

# --------------------------------------------------------------------------- writing


def test_writes_exact_bytes_and_mode(etc: Path) -> None:
    dest = etc / "app.conf"
    content = b"line one\r\n\xff\xfe binary \x00 ok\nno trailing newline"
    out = sync(make(dest, mode=0o640), content)
    assert (out.status, out.reloaded, out.error) == (WRITTEN, False, None)
    assert dest.read_bytes() == content
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert listing(etc) == ["app.conf"]


def test_second_sync_is_unchanged_and_touches_nothing(etc: Path, reloads: Path) -> None:
    dest = etc / "app.conf"
    res = make(dest, reload_cmd=f"echo reload >> {reloads}", check_cmd="true")
    assert sync(res, b"a=1\n").reloaded
    before = dest.stat()
    out = sync(res, b"a=1\n")
    after = dest.stat()
    assert (out.status, out.reloaded, out.diff) == (UNCHANGED, False, None)
    assert (after.st_ino, after.st_mtime_ns, after.st_ctime_ns) == \
        (before.st_ino, before.st_mtime_ns, before.st_ctime_ns)
    assert lines_of(reloads) == 1
    assert listing(etc) == ["app.conf"]


def test_changed_content_is_written_and_reloaded_once(etc: Path, reloads: Path) -> None:
    dest = etc / "app.conf"
    res = make(dest, reload_cmd=f"echo reload >> {reloads}")
    sync(res, b"a=1\n")
    out = sync(res, b"a=2\n")
    assert (out.status, out.reloaded) == (WRITTEN, True)
    assert dest.read_bytes() == b"a=2\n"
    assert lines_of(reloads) == 2


def test_mode_change_alone_rewrites(etc: Path, reloads: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"same\n")
    dest.chmod(0o644)
    inode = dest.stat().st_ino
    out = sync(make(dest, mode=0o600, reload_cmd=f"echo r >> {reloads}"), b"same\n")
    assert (out.status, out.reloaded) == (WRITTEN, True)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert dest.stat().st_ino != inode  # replaced, not chmod-ed in place
    assert lines_of(reloads) == 1


def test_missing_parent_directories_are_created_0755(tmp_path: Path, umask_077: None) -> None:
    dest = tmp_path / "new" / "deeper" / "app.conf"
    out = sync(make(dest), b"x\n")
    assert out.status == WRITTEN
    assert dest.read_bytes() == b"x\n"
    for d in (tmp_path / "new", tmp_path / "new" / "deeper"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644  # exact, umask does not apply


def test_parent_that_is_a_file_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("i am a file")
    out = sync(make(tmp_path / "blocker" / "app.conf"), b"x\n")
    assert out.status == FAILED and out.error is not None
    assert "opening directory" in out.error.what and "blocker" in out.error.what
    assert (tmp_path / "blocker").read_text() == "i am a file"


def test_owner_and_group_are_applied(etc: Path) -> None:
    dest = etc / "app.conf"
    out = sync(make(dest, owner=NOBODY, group=NOBODY, mode=0o640), b"x\n")
    assert out.status == WRITTEN
    st = dest.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (NOBODY, NOBODY, 0o640)
    assert sync(make(dest, owner=NOBODY, group=NOBODY, mode=0o640), b"x\n").status == UNCHANGED


def test_owner_change_alone_rewrites(etc: Path) -> None:
    dest = etc / "app.conf"
    sync(make(dest, owner=0, group=0), b"x\n")
    out = sync(make(dest, owner=NOBODY), b"x\n")
    assert out.status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (NOBODY, 0)


def test_unset_owner_keeps_owner_only_of_a_file_root_or_the_configured_owner_owns(
        etc: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"old\n")
    os.chown(dest, 0, NOBODY)
    assert sync(make(dest), b"new\n").status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (0, NOBODY)
    # an owner that is not asked for is not a reason to rewrite
    assert sync(make(dest), b"new\n").status == UNCHANGED
    os.chown(dest, NOBODY, NOBODY)  # the configured owner's file hands on its group
    assert sync(make(dest, owner=NOBODY), b"newer\n").status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (NOBODY, NOBODY)
    # a user's file never hands its owner to what root writes
    assert sync(make(dest), b"newest\n").status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (0, 0)


def test_symlink_dest_is_never_read_and_is_replaced(etc: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.conf"
    target.write_bytes(b"x\n")
    target.chmod(0o644)
    dest = etc / "app.conf"
    dest.symlink_to(target)
    out = sync(make(dest), b"x\n", noop=True)
    assert out.status == WOULD_WRITE and out.diff is not None
    assert out.diff.startswith("new file mode 0644\n--- /dev/null\n")
    assert sync(make(dest), b"x\n").status == WRITTEN  # same bytes: still "different"
    assert not dest.is_symlink() and dest.read_bytes() == b"x\n"
    assert target.read_bytes() == b"x\n"


def test_noop_new_file_shows_owner(tmp_path: Path) -> None:
    out = sync(make(tmp_path / "a", owner=NOBODY), b"", noop=True)
    assert out.diff == ("new file mode 0644\nnew file owner 65534:-\n"
                        f"--- /dev/null\n+++ {tmp_path}/a\n")


# --------------------------------------------------------------------------- check_cmd


def test_check_cmd_sees_the_staged_file(etc: Path, tmp_path: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"old\n")
    seen = tmp_path / "seen"
    check = (f"cp {{{{ src }}}} {seen}.copy && echo {{{{src}}}} > {seen}.name && "
             f"echo {{{{ dest }}}} > {seen}.dest && stat -c '%a %u %g' {{{{ src }}}} > {seen}.meta")
    out = sync(make(dest, check_cmd=check, mode=0o640, owner=NOBODY), b"new\n")
    assert out.status == WRITTEN, out.error
    assert Path(f"{seen}.copy").read_bytes() == b"new\n"
    staged = Path(Path(f"{seen}.name").read_text().strip())
    assert staged.parent == etc
    assert re.fullmatch(r"\.app\.imdsr-[0-9a-f]{8}\.conf", staged.name)
    assert stage_pattern(str(dest)).match(staged.name)
    assert Path(f"{seen}.dest").read_text().strip() == str(dest)
    assert Path(f"{seen}.meta").read_text().split() == ["640", str(NOBODY), "0"]
    assert listing(etc) == ["app.conf"]


def test_failing_check_keeps_old_file_and_leaves_no_stage(etc: Path, reloads: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"good\n")
    before = dest.stat()
    check = "echo 'noise' >&2; echo 'line 3: syntax error' >&2; exit 1"
    out = sync(make(dest, check_cmd=check, reload_cmd=f"echo r >> {reloads}"), b"bad\n")
    assert out.status == FAILED and not out.reloaded
    err = out.error
    assert isinstance(err, WriteError) and isinstance(err, Error) and err.exit_code == 1
    assert err.what == "check_cmd exited 1: line 3: syntax error"
    assert err.where == f"{dest} (conf.d/app.yaml:3)"
    assert "old file was kept" in err.hint
    assert str(err) == f"{err.where}: {err.what}; {err.hint}"
    assert dest.read_bytes() == b"good\n"
    assert (dest.stat().st_ino, dest.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert listing(etc) == ["app.conf"]
    assert not reloads.exists()


def test_check_failure_without_stderr_uses_stdout(etc: Path) -> None:
    out = sync(make(etc / "a.conf", check_cmd="echo 'from stdout'; exit 4"), b"x")
    assert out.error is not None and out.error.what == "check_cmd exited 4: from stdout"
    out = sync(make(etc / "a.conf", check_cmd="exit 5"), b"x")
    assert out.error is not None and out.error.what == "check_cmd exited 5 (no output)"
    assert listing(etc) == []


def test_check_timeout_kills_the_whole_process_group(etc: Path, tmp_path: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"old\n")
    pidfile = tmp_path / "child.pid"
    check = f"sleep 100 & echo $! > {pidfile}; wait"
    out = sync(make(dest, check_cmd=check, check_timeout=0.5), b"new\n")
    assert out.status == FAILED and out.error is not None
    assert out.error.what == "check_cmd timed out after 0.5s (process group killed)"
    assert "check_timeout" in out.error.hint
    assert wait_gone(int(pidfile.read_text()))
    assert dest.read_bytes() == b"old\n"
    assert listing(etc) == ["app.conf"]


# --------------------------------------------------------------------------- rename, reload


def test_rename_failure_leaves_no_stage(etc: Path) -> None:
    dest = etc / "app.conf"
    dest.mkdir()
    (dest / "inside").write_text("keep")
    out = sync(make(dest), b"x\n")
    assert out.status == FAILED and out.error is not None
    assert out.error.what == "rename failed: Is a directory"
    assert listing(etc) == ["app.conf"]
    assert (dest / "inside").read_text() == "keep"


def test_reload_failure_says_the_new_file_stays(etc: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"old\n")
    out = sync(make(dest, reload_cmd="echo 'unit not found' >&2; exit 2"), b"new\n")
    assert (out.status, out.reloaded) == (FAILED, False)
    assert out.error is not None
    assert out.error.what == "file written, but reload_cmd exited 2: unit not found"
    assert "new file stays" in out.error.hint
    assert dest.read_bytes() == b"new\n"
    assert listing(etc) == ["app.conf"]


def test_reload_timeout(etc: Path, tmp_path: Path) -> None:
    dest = etc / "app.conf"
    pidfile = tmp_path / "reload.pid"
    out = sync(make(dest, reload_cmd=f"sleep 100 & echo $! > {pidfile}; wait",
                    reload_timeout=0.3), b"new\n")
    assert out.status == FAILED and out.error is not None
    assert out.error.what == "file written, but reload_cmd timed out after 0.3s " \
                             "(process group killed)"
    assert dest.read_bytes() == b"new\n"
    assert wait_gone(int(pidfile.read_text()))


def test_reload_cmd_gets_dest(etc: Path, tmp_path: Path) -> None:
    dest = etc / "app.conf"
    seen = tmp_path / "seen"
    assert sync(make(dest, reload_cmd=f"echo {{{{ dest }}}} {{{{ src }}}} > {seen}"),
                b"x").reloaded
    assert seen.read_text() == f"{dest} {dest}\n"


def test_shell_that_cannot_start_is_a_failure(etc: Path) -> None:
    def broken(cmd: str, timeout: float, args: Sequence[str] = ()) -> CommandResult:
        raise FileNotFoundError(2, "No such file or directory")

    out = sync(make(etc / "a.conf", check_cmd="true"), b"x", run=broken)
    assert out.error is not None
    assert out.error.what == "check_cmd could not start: No such file or directory"
    assert listing(etc) == []


# --------------------------------------------------------------------------- noop and diff


def test_noop_new_file_creates_and_runs_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "missing" / "app.conf"
    ran: List[str] = []

    def runner(cmd: str, timeout: float, args: Sequence[str] = ()) -> CommandResult:
        ran.append(cmd)
        return CommandResult(cmd, 0, False, b"", b"")

    out = sync(make(dest, check_cmd="true", reload_cmd="true", mode=0o640), b"a\nb\n",
               noop=True, run=runner)
    assert (out.status, out.reloaded, out.error) == (WOULD_WRITE, False, None)
    assert out.diff == (f"new file mode 0640\n--- /dev/null\n+++ {dest}\n"
                        "@@ -0,0 +1,2 @@\n+a\n+b\n")
    assert ran == []
    assert listing(tmp_path) == []


def test_noop_existing_file_shows_content_mode_and_owner(etc: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"keep\nold\n")
    dest.chmod(0o644)
    before = dest.stat()
    out = sync(make(dest, mode=0o600, owner=NOBODY, check_cmd="false"), b"keep\nnew",
               noop=True)
    assert out.status == WOULD_WRITE
    assert out.diff == ("old mode 0644\nnew mode 0600\nold owner 0:0\nnew owner 65534:0\n"
                        f"--- {dest}\n+++ {dest}\n@@ -1,2 +1,2 @@\n keep\n-old\n+new\n"
                        "\\ No newline at end of file\n")
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns, stat.S_IMODE(after.st_mode)) == \
        (before.st_ino, before.st_mtime_ns, 0o644)
    assert listing(etc) == ["app.conf"]


def test_noop_when_up_to_date_is_unchanged(etc: Path) -> None:
    dest = etc / "app.conf"
    sync(make(dest), b"x\n")
    out = sync(make(dest), b"x\n", noop=True)
    assert (out.status, out.diff) == (UNCHANGED, None)


# --------------------------------------------------------------------------- sensitive


def test_sensitive_redacts_diff_messages_and_logs(etc: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="imdsrender")
    dest = etc / "creds.env"
    dest.write_text(f"KEY=old{SECRET}\n")
    new = f"KEY={SECRET}\nTOKEN={SECRET}\n".encode()
    out = sync(make(dest, mode=0o600), new, sensitive=True, noop=True)
    assert out.diff == ("old mode 0644\nnew mode 0600\n"
                        f"--- {dest}\n+++ {dest}\n"
                        "contents differ (1 -> 2 lines), <redacted>: resource uses credentials\n")
    check = "cat {{ src }} >&2; cat {{ src }}; exit 1"
    failed = sync(make(dest, mode=0o600, check_cmd=check), new, sensitive=True)
    assert failed.error is not None
    assert failed.error.what == "check_cmd exited 1: output withheld (resource uses credentials)"
    reload = "cat {{ dest }} >&2; cat {{ dest }}; exit 3"
    written = sync(make(dest, mode=0o600, reload_cmd=reload), new, sensitive=True)
    assert written.error is not None
    assert written.error.what == ("file written, but reload_cmd exited 3: "
                                  "output withheld (resource uses credentials)")
    assert dest.read_bytes() == new
    for text in (out.diff, failed.diff, written.diff, str(failed.error), str(written.error)):
        assert SECRET not in (text or "")
    assert caplog.records and all(SECRET not in r.getMessage() for r in caplog.records)


def test_non_sensitive_diff_is_logged_at_debug(etc: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="imdsrender.write")
    out = sync(make(etc / "a.conf"), b"visible\xff\n")
    assert out.status == WRITTEN and out.diff is not None
    messages = [r.getMessage() for r in caplog.records]
    assert any("+visible\\xff" in m for m in messages)
    assert any(m == f"{etc}/a.conf: written" for m in messages)


def test_outcome_records_each_command_that_ran(etc: Path) -> None:
    from imdsrender.model import CHECK, RELOAD

    outcome = sync(make(etc / "a.conf", check_cmd="true", reload_cmd="exit 3"), b"x\n")
    assert outcome.failed and outcome.status == FAILED
    assert [(s.step, s.returncode, s.timed_out) for s in outcome.steps] == \
        [(CHECK, 0, False), (RELOAD, 3, False)]
    assert all(s.seconds >= 0 for s in outcome.steps)
    assert sync(make(etc / "a.conf", check_cmd="true", reload_cmd="exit 3"),
                b"x\n").steps == ()  # unchanged: nothing ran


def test_outcome_records_a_timed_out_check(etc: Path) -> None:
    from imdsrender.model import CHECK

    outcome = sync(make(etc / "a.conf", check_cmd="sleep 30", check_timeout=0.2), b"x\n")
    assert outcome.failed
    assert [(s.step, s.timed_out) for s in outcome.steps] == [(CHECK, True)]
