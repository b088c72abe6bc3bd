"""Issue 13 item 2: a user who owns a directory on a dest's path cannot turn root's write.

The attacker is ``nobody`` in a forked child: it opens the app directory
while still root (pytest's tmp dirs are not searchable by others), drops to
uid/gid 65534 and plants its symlinks and files through that fd, exactly as
a local user who owns the directory could.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Callable

import pytest

from imdsrender.write import FAILED, WOULD_WRITE, WRITTEN, sync
from imdsrender.write.paths import link_is_trusted, open_directory
from tests.helpers import ROOT, ConfDir, run_cli
from tests.write.helpers import NOBODY, make

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (CI runs as root)")

SECRET = b"root:$6$TOPSECRETHASH:19000:0:99999:7:::\n"


def as_nobody(directory: Path, action: Callable[[int], None]) -> None:
    """Run *action(dir_fd)* as uid/gid nobody in a forked child; fail if it fails."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            action(fd)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the attacker's step failed"


def app_dir(tmp_path: Path) -> Path:
    """A directory an unprivileged user owns, as /srv/app or /var/lib/app often are."""
    appdir = tmp_path / "app"
    appdir.mkdir(mode=0o755)
    os.chown(appdir, NOBODY, NOBODY)
    return appdir


def root_only(path: Path) -> Path:
    path.mkdir(mode=0o700)
    return path


def test_symlinked_parent_in_a_user_directory_does_not_redirect_the_write(
        tmp_path: Path) -> None:
    appdir = app_dir(tmp_path)
    victim = root_only(tmp_path / "cron.d")
    as_nobody(appdir, lambda fd: os.symlink(str(victim), "conf", dir_fd=fd))

    out = sync(make(appdir / "conf" / "job"), b"* * * * * root sh /tmp/x\n")

    assert out.status == FAILED and out.error is not None
    assert "conf is a symlink in a directory that a non-root user can change" in str(out.error)
    assert os.listdir(victim) == []


def test_symlinked_parent_nested_below_a_user_directory_is_refused_too(
        tmp_path: Path) -> None:
    appdir = app_dir(tmp_path)
    victim = root_only(tmp_path / "cron.d")

    def plant(fd: int) -> None:
        os.mkdir("a", 0o755, dir_fd=fd)
        os.symlink(str(victim), "a/b", dir_fd=fd)

    as_nobody(appdir, plant)
    out = sync(make(appdir / "a" / "b" / "c" / "job"), b"x\n")
    assert out.status == FAILED
    assert os.listdir(victim) == []


def test_a_symlink_only_root_controls_is_followed(tmp_path: Path) -> None:
    real = root_only(tmp_path / "real")
    trusted = tmp_path / "etc"
    trusted.mkdir(mode=0o755)
    (trusted / "conf").symlink_to("../real")
    assert sync(make(trusted / "conf" / "app.conf"), b"x\n").status == WRITTEN
    assert (real / "app.conf").read_bytes() == b"x\n"
    if os.path.islink("/var/run"):  # /var/run -> /run keeps working
        fd = open_directory("/var/run", create=False)
        try:
            assert os.path.samestat(os.fstat(fd), os.stat("/run"))
        finally:
            os.close(fd)


def test_sticky_directory_links_are_trusted_only_when_root_owns_them() -> None:
    sticky = os.stat_result((stat.S_IFDIR | 0o1777, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    link = os.stat_result((stat.S_IFLNK | 0o777, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    users_link = os.stat_result((stat.S_IFLNK | 0o777, 0, 0, 0, NOBODY, 0, 0, 0, 0, 0))
    users_dir = os.stat_result((stat.S_IFDIR | 0o755, 0, 0, 0, NOBODY, 0, 0, 0, 0, 0))
    assert link_is_trusted(sticky, link) and not link_is_trusted(sticky, users_link)
    assert not link_is_trusted(users_dir, link)


@pytest.mark.parametrize("planted", ["file", "symlink"])
def test_planted_dest_does_not_hand_its_owner_to_a_credentials_file(
        tmp_path: Path, planted: str) -> None:
    appdir = app_dir(tmp_path)

    def plant(fd: int) -> None:
        mine = os.open("mine", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(mine)
        if planted == "file":
            os.rename("mine", "credentials", src_dir_fd=fd, dst_dir_fd=fd)
        else:
            os.symlink("mine", "credentials", dir_fd=fd)

    as_nobody(appdir, plant)
    dest = appdir / "credentials"
    out = sync(make(dest, mode=0o600), b"aws_secret_access_key = S3CR3T\n", sensitive=True)
    assert out.status == WRITTEN, out.error
    st = os.lstat(dest)
    assert stat.S_ISREG(st.st_mode)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)


def test_planted_file_does_not_hand_its_owner_to_any_file(tmp_path: Path) -> None:
    appdir = app_dir(tmp_path)
    as_nobody(appdir, lambda fd: os.close(os.open("app.conf", os.O_WRONLY | os.O_CREAT,
                                                  0o644, dir_fd=fd)))
    assert sync(make(appdir / "app.conf"), b"x\n").status == WRITTEN
    st = os.lstat(appdir / "app.conf")
    assert (st.st_uid, st.st_gid) == (0, 0)


def test_symlink_at_dest_to_a_root_only_secret_is_never_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    secret = root_only(tmp_path / "shadow-dir") / "shadow"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    appdir = app_dir(tmp_path)
    as_nobody(appdir, lambda fd: os.symlink(str(secret), "app.conf", dir_fd=fd))
    dest = appdir / "app.conf"

    out = sync(make(dest), b"new\n", noop=True)
    assert out.status == WOULD_WRITE and out.diff is not None
    assert b"TOPSECRET" not in out.diff.encode() and "root:" not in out.diff

    with caplog.at_level(logging.DEBUG):
        out = sync(make(dest), SECRET)  # identical bytes must not make it "unchanged"
    assert out.status == WRITTEN
    old_lines = f"-{SECRET.decode()}"  # the target's bytes as the diff's old side
    assert out.diff is not None and old_lines not in out.diff and old_lines not in caplog.text
    assert not dest.is_symlink()
    assert secret.read_bytes() == SECRET and stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_noop_run_prints_none_of_a_symlinked_secret(tmp_path: Path) -> None:
    secret = root_only(tmp_path / "shadow-dir") / "shadow"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    appdir = app_dir(tmp_path)
    as_nobody(appdir, lambda fd: os.symlink(str(secret), "app.conf", dir_fd=fd))
    confdir = ConfDir(tmp_path)
    confdir.resource("app.conf.j2", "listen = 80\n")
    confdir.resources[0]["dest"] = str(appdir / "app.conf")
    confdir.write_resources()
    fixture = ROOT / "imdsrender" / "data" / "default-fixture.json"

    result = run_cli("--onetime", "--noop", "--confdir", confdir.path, "--data", str(fixture))

    assert result.returncode == 0, result.stderr
    assert "+listen = 80" in result.stdout
    assert "TOPSECRET" not in result.stdout + result.stderr
    assert (appdir / "app.conf").is_symlink() and secret.read_bytes() == SECRET


@pytest.mark.parametrize("mode", [0o775, 0o757])
def test_a_root_link_in_a_group_or_other_writable_directory_is_not_followed(
        tmp_path: Path, mode: int) -> None:
    # Root owns both, but the group (or anyone) can swap the link for its own.
    real = root_only(tmp_path / "real")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)  # not sticky
    (shared / "conf").symlink_to(real)
    out = sync(make(shared / "conf" / "app.conf"), b"x\n")
    assert out.status == FAILED and out.error is not None
    assert f"{shared / 'conf'} is a symlink in a directory that a non-root user can change" \
        in out.error.what
    assert not (real / "app.conf").exists()


def test_in_a_sticky_directory_only_a_root_owned_link_is_followed(tmp_path: Path) -> None:
    real = root_only(tmp_path / "real")
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    (sticky / "root-link").symlink_to(real)
    (sticky / "users-link").symlink_to(real)
    os.lchown(sticky / "users-link", NOBODY, NOBODY)  # as if nobody had planted it
    assert sync(make(sticky / "root-link" / "a.conf"), b"x\n").status == WRITTEN
    assert sync(make(sticky / "users-link" / "b.conf"), b"x\n").status == FAILED
    assert (real / "a.conf").exists() and not (real / "b.conf").exists()
