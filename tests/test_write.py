"""write.py against real files and real /bin/sh commands (we run as root for chown)."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import stat
import time
from pathlib import Path
from typing import Iterator, List

import pytest

from imdsrender.config import Resource
from imdsrender.errors import Error
from imdsrender.write import (
    FAILED,
    UNCHANGED,
    WOULD_WRITE,
    WRITTEN,
    CommandResult,
    WriteError,
    cleanup_stale,
    describe_failure,
    diff,
    fill_placeholders,
    run_command,
    stage_path,
    stage_pattern,
    sync,
)

NOBODY = 65534
SECRET = "AKIAEXAMPLESECRET"


def make(dest: Path, **fields: object) -> Resource:
    base = Resource(origin="conf.d/app.yaml:3", src="/etc/imdsrender/templates/app.conf.j2",
                    template="app.conf.j2", dest=str(dest), keys=("/meta-data/instance-id",))
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def listing(directory: Path) -> List[str]:
    return sorted(os.listdir(directory))


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def alive(pid: int) -> bool:
    """True while *pid* runs; a zombie (no reaping init in containers) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int) -> bool:
    """Bounded wait for a killed process to disappear (SIGKILL is not synchronous)."""
    for _ in range(100):
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc" / "app"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def reloads(tmp_path: Path) -> Path:
    return tmp_path / "reloads.log"


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


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
    assert "creating directory" in out.error.what and "blocker" in out.error.what
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


def test_unset_owner_keeps_the_existing_files_owner(etc: Path) -> None:
    dest = etc / "app.conf"
    dest.write_bytes(b"old\n")
    os.chown(dest, NOBODY, NOBODY)
    assert sync(make(dest), b"new\n").status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (NOBODY, NOBODY)
    # and an owner that is not asked for is not a reason to rewrite
    assert sync(make(dest), b"new\n").status == UNCHANGED
    out = sync(make(dest, group=0), b"new\n")
    assert out.status == WRITTEN
    assert (dest.stat().st_uid, dest.stat().st_gid) == (NOBODY, 0)


def test_symlink_dest_is_compared_through_but_replaced(etc: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.conf"
    target.write_bytes(b"x\n")
    target.chmod(0o644)
    dest = etc / "app.conf"
    dest.symlink_to(target)
    assert sync(make(dest), b"x\n").status == UNCHANGED
    assert dest.is_symlink()
    assert sync(make(dest), b"y\n").status == WRITTEN
    assert not dest.is_symlink() and dest.read_bytes() == b"y\n"
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


def test_run_command_escalates_to_sigkill(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    # an ignored SIGTERM is inherited by the child: only SIGKILL ends it
    result = run_command(f"trap '' TERM; sleep 100 & echo $! > {pidfile}; wait", 0.3,
                         kill_grace=0.2)
    assert result.timed_out and not result.ok
    assert wait_gone(int(pidfile.read_text()))


def test_run_command_captures_bounded_output_and_inherits_env(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMDSR_TEST_VAR", "from-parent")
    result = run_command("head -c 100000 /dev/zero | tr '\\0' a; echo; "
                         "echo \"$IMDSR_TEST_VAR\" >&2; exit 7", 30)
    assert (result.returncode, result.timed_out, result.ok) == (7, False, False)
    assert len(result.stdout) == 4096 and result.stdout.endswith(b"aaa\n")
    assert result.stderr == b"from-parent\n"


def test_run_command_success_and_signal_description() -> None:
    assert run_command("exit 0", 30).ok
    killed = run_command("kill -9 $$", 30)
    assert killed.returncode == -9
    assert describe_failure("check_cmd", killed, 30, sensitive=False) == \
        "check_cmd killed by SIGKILL (no output)"


def test_run_command_does_not_wait_for_a_daemonised_child(tmp_path: Path) -> None:
    # a reload that leaves a background process holding stdout must still return
    pidfile = tmp_path / "daemon.pid"
    result = run_command(f"sleep 100 & echo $! > {pidfile}; echo started", 30)
    try:
        assert result.ok and not result.timed_out
        assert result.stdout == b"started\n"
    finally:
        os.kill(int(pidfile.read_text()), 9)


def test_fill_placeholders_quotes_paths() -> None:
    cmd = fill_placeholders("check {{ src }} {{src}} {{.src}} --for {{ dest }}",
                         src="/etc/my app/.a.imdsr-00000000.conf", dest="/etc/x.conf")
    q = "'/etc/my app/.a.imdsr-00000000.conf'"
    assert cmd == f"check {q} {q} {q} --for /etc/x.conf"


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
    def broken(cmd: str, timeout: float) -> CommandResult:
        raise FileNotFoundError(2, "No such file or directory")

    out = sync(make(etc / "a.conf", check_cmd="true"), b"x", run=broken)
    assert out.error is not None
    assert out.error.what == "check_cmd could not start: No such file or directory"
    assert listing(etc) == []


def test_stage_name_collision_takes_the_next_token(etc: Path) -> None:
    dest = etc / "app.conf"
    taken = Path(stage_path(str(dest), "aaaaaaaa"))
    taken.write_text("someone else's")
    tokens = iter(["aaaaaaaa", "bbbbbbbb"])
    seen: List[str] = []

    def runner(cmd: str, timeout: float) -> CommandResult:
        seen.append(cmd)
        return CommandResult(cmd, 0, False, b"", b"")

    out = sync(make(dest, check_cmd="check {{ src }}"), b"x", run=runner,
               token=lambda: next(tokens))
    assert out.status == WRITTEN
    assert seen == [f"check {etc}/.app.imdsr-bbbbbbbb.conf"]
    assert taken.read_text() == "someone else's"


# --------------------------------------------------------------------------- noop and diff


def test_noop_new_file_creates_and_runs_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "missing" / "app.conf"
    ran: List[str] = []

    def runner(cmd: str, timeout: float) -> CommandResult:
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


def test_diff_mode_only_and_identical() -> None:
    assert diff("/d", b"x\n", b"x\n", sensitive=False, old_mode=0o644, new_mode=0o644) == ""
    assert diff("/d", b"x\n", b"x\n", sensitive=True, old_mode=0o644, new_mode=0o600) == \
        "old mode 0644\nnew mode 0600\n--- /d\n+++ /d\n"


def test_diff_keeps_undecodable_bytes() -> None:
    text = diff("/d", b"\xff\n", b"\xfe\n", sensitive=False)
    assert text.encode("utf-8", "surrogateescape") == b"--- /d\n+++ /d\n@@ -1 +1 @@\n-\xff\n+\xfe\n"


def test_diff_splits_on_newline_only() -> None:
    text = diff("/d", b"a\x0cb\n", b"a\x0cc\n", sensitive=False)
    assert text == "--- /d\n+++ /d\n@@ -1 +1 @@\n-a\x0cb\n+a\x0cc\n"


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


# --------------------------------------------------------------------------- stale stage files


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

