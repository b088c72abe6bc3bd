"""Issue 13 item 1: no local user can block, break or redirect a run through its lock.

The old lock was ``/run/lock/imdsrender-<hash>.lock`` (any user can create
and flock it where /run/lock is 1777) waited for without bound.  These
tests plant that lock as ``nobody`` and check the run goes on; that the run
creates nothing in world-writable directories (each is a fresh tmpfs in a
private mount namespace, so other processes cannot disturb the listing);
and that waiting for a real holder is bounded, answers SIGTERM at once and
refuses a runtime directory that is not ours.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from imdsrender.cli.lock import open_lock_file
from tests.helpers import ROOT, run_cli

NOBODY = 65534
DROP = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
FIXTURE = ROOT / "imdsrender" / "data" / "default-fixture.json"
WORLD_WRITABLE = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"]
# Inside the test's mount namespace /tmp is a fresh tmpfs; the old /tmp (where CI keeps
# its venv and may keep the checkout) stays reachable through this bind.
HOST_TMP = "/mnt/host-tmp"


def outside_tmp(path: str) -> str:
    """*path* as the namespace sees it once /tmp is covered."""
    return HOST_TMP + path[len("/tmp"):] if path == "/tmp" or path.startswith("/tmp/") else path

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="needs root and unshare (CI runs as root)")


def write_confdir(base: Path, dest_dir: str) -> Path:
    """A confdir at base/confdir with one resource writing dest_dir/id."""
    confdir = base / "confdir"
    (confdir / "conf.d").mkdir(parents=True)
    (confdir / "templates").mkdir()
    (confdir / "templates" / "id.j2").write_text('{{ getv("/meta-data/instance-id") }}\n')
    (confdir / "conf.d" / "r.yaml").write_text(
        f"templates:\n  - src: id.j2\n    dest: {dest_dir}/id\n")
    shutil.copy(FIXTURE, base / "fixture.json")
    return confdir


def test_lock_planted_by_a_user_in_run_lock_blocks_nothing_and_run_leaves_no_files(
        tmp_path: Path) -> None:
    write_confdir(tmp_path, "/mnt/out")
    (tmp_path / "host-tmp").mkdir()
    old_lock = "/run/lock/imdsrender-" + hashlib.sha1(
        b"/mnt/confdir/templates").hexdigest()[:12] + ".lock"
    tmpfs = " && ".join(f"mount -t tmpfs -o mode=1777 tmpfs {d}" for d in WORLD_WRITABLE)
    python = outside_tmp(sys.executable)
    # The attacker: nobody creates the old lock file in /run/lock and holds flock on it.
    script = f"""
set -e
mount --bind {tmp_path} /mnt
mount --bind /tmp {HOST_TMP}
{tmpfs}
{' '.join(DROP)} flock --no-fork {old_lock} sh -c 'echo held; exec sleep 120' \
    > /mnt/held 2>/dev/null &
holder=$!
tries=0
while [ ! -s /mnt/held ] && [ $tries -lt 400 ]; do sleep 0.05; tries=$((tries + 1)); done
set +e
timeout 30 {python} -m imdsrender --onetime --confdir /mnt/confdir \
    --data /mnt/fixture.json
echo "rc=$?"
kill $holder
for d in {' '.join(WORLD_WRITABLE)}; do echo "$d:" $(ls -A $d); done
"""
    env = {**os.environ, "PYTHONPATH": outside_tmp(str(ROOT))}
    env.pop("IMDSRENDER_RUNTIME_DIR", None)
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                             script], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=90)
    lines = result.stdout.splitlines()
    assert (tmp_path / "held").read_text() == "held\n", result.stderr  # the attack was in place
    assert "rc=0" in lines, result.stdout + result.stderr  # old code: blocked, killed (124)
    assert (tmp_path / "out" / "id").read_text().startswith("i-")
    listings = {line.split(":")[0]: line.split(":")[1].split() for line in lines if ":" in line}
    assert listings == {"/tmp": [], "/var/tmp": [], "/dev/shm": [],
                        "/run/lock": [os.path.basename(old_lock)]}
    st = os.lstat("/run/imdsrender")
    assert (st.st_uid, st.st_mode & 0o7777) == (0, 0o700)


def lock_env(runtime: Path, wait: str) -> Dict[str, str]:
    return {"IMDSRENDER_RUNTIME_DIR": str(runtime), "IMDSRENDER_LOCK_WAIT": wait}


def hold_lock(tmp_path: Path, confdir: Path) -> int:
    """flock the run's lock in this process (another open file: it conflicts)."""
    import fcntl

    name = hashlib.sha1(str(confdir / "templates").encode()).hexdigest()[:12] + ".lock"
    fd = open_lock_file(str(tmp_path / "run"), name)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def cli(confdir: Path, tmp_path: Path) -> List[str]:
    return ["--onetime", "--confdir", str(confdir), "--data", str(tmp_path / "fixture.json")]


def test_waiting_for_a_held_lock_is_bounded_and_says_so(tmp_path: Path) -> None:
    confdir = write_confdir(tmp_path, str(tmp_path / "out"))
    fd = hold_lock(tmp_path, confdir)
    try:
        result = run_cli(*cli(confdir, tmp_path), env=lock_env(tmp_path / "run", "1s"),
                         timeout=60)
    finally:
        os.close(fd)
    assert result.returncode == 1
    waiting, *rest = result.stderr.splitlines()
    assert "waiting up to 1s for another run to release" in waiting
    assert rest == [
        f"imdsrender: {tmp_path}/run/{os.listdir(tmp_path / 'run')[0]}: still held by "
        "another run after 1s; nothing was written; the next run retries (fuser shows who "
        "holds it; IMDSRENDER_LOCK_WAIT sets the wait)"]
    assert not (tmp_path / "out" / "id").exists()


def test_sigterm_while_waiting_exits_143_at_once(tmp_path: Path) -> None:
    confdir = write_confdir(tmp_path, str(tmp_path / "out"))
    fd = hold_lock(tmp_path, confdir)
    env = {**os.environ, **lock_env(tmp_path / "run", "10m")}
    try:
        proc = subprocess.Popen([sys.executable, "-m", "imdsrender", "--log-level", "info",
                                 *cli(confdir, tmp_path)], stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env=env)
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # blocks until it says it waits
            seen.append(line)
            if "waiting up to" in line:
                break
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)  # old code: flock() without bound, SIGTERM ignored
        rest = proc.stderr.read()
    finally:
        os.close(fd)
    assert rc == 143, seen
    assert rest.splitlines()[-1].endswith(
        "SIGTERM while waiting for another run to finish; nothing was written")


def test_runtime_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    confdir = write_confdir(tmp_path, str(tmp_path / "out"))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, NOBODY, NOBODY)
    result = run_cli(*cli(confdir, tmp_path), env=lock_env(runtime, "1s"))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"imdsrender: {runtime}: owned by uid {NOBODY} with mode 0700, expected uid 0 and "
        "not writable by group or others; someone else created it: remove it (imdsrender "
        "recreates it)"]
    assert not (tmp_path / "out" / "id").exists()


def test_symlink_planted_as_the_lock_file_is_not_followed(tmp_path: Path) -> None:
    confdir = write_confdir(tmp_path, str(tmp_path / "out"))
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    name = hashlib.sha1(str(confdir / "templates").encode()).hexdigest()[:12] + ".lock"
    (runtime / name).symlink_to(victim)
    result = run_cli(*cli(confdir, tmp_path), env=lock_env(runtime, "1s"))
    assert result.returncode == 1
    assert "cannot open the lock file" in result.stderr
    assert not victim.exists()
