"""End to end: the real CLI in a subprocess against the emulator on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest

from imdsrender.emulator import Emulator
from imdsrender.fixture import default_fixture
from tests.helpers import ConfDir, run_cli

SEED_EXPECTED = """\
# Instance Configuration
instance_id=i-0123456789abcdef0
instance_type=t3.micro
ami_id=ami-0abcdef1234567890
name=web-1
environment=production
availability_zone=us-east-1a
local_ip=10.0.1.23
"""

ROOT = Path(__file__).resolve().parent.parent


def stage_files(directory: Path) -> List[str]:
    return sorted(p.name for p in directory.iterdir() if ".imdsr-" in p.name)


def test_seed_instance_example_renders_byte_exact(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir.from_examples(tmp_path, "instance.yaml")
    result = run_cli("--onetime", "--confdir", confdir.path, "--endpoint", emulator.url)
    assert result.returncode == 0, result.stderr
    assert confdir.dest("instance.conf").read_bytes() == SEED_EXPECTED.encode()
    # exactly one token and one GET per key: no probe request
    assert emulator.count("PUT") == 1
    assert emulator.count("GET") == 7


def test_unchanged_second_run_touches_nothing(emulator: Emulator, tmp_path: Path) -> None:
    reloads = tmp_path / "reloads"
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n',
                     reload_cmd=f"echo reload >> {reloads}")
    assert run_cli("--onetime", *confdir.flags(emulator)).returncode == 0
    dest = confdir.dest("id")
    before = dest.stat()
    assert reloads.read_text() == "reload\n"

    assert run_cli("--onetime", *confdir.flags(emulator)).returncode == 0
    after = dest.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert reloads.read_text() == "reload\n"  # no second reload

    emulator.set_value("/meta-data/instance-id", "i-changed")
    assert run_cli("--onetime", *confdir.flags(emulator)).returncode == 0
    assert dest.read_text() == "i-changed\n"
    assert reloads.read_text() == "reload\nreload\n"  # reloaded exactly once more


def test_failing_check_keeps_old_file(emulator: Emulator, tmp_path: Path) -> None:
    seen = tmp_path / "seen-by-check"
    confdir = ConfDir(tmp_path)
    confdir.resource("app.conf.j2", 'id={{ getv("/meta-data/instance-id") }}\n',
                     check_cmd=f"cp {{{{ src }}}} {seen}; echo 'bad config' >&2; exit 3")
    dest = confdir.dest("app.conf")
    dest.parent.mkdir(parents=True)
    dest.write_text("old\n")

    result = run_cli("--onetime", *confdir.flags(emulator))
    assert result.returncode == 1
    assert "check_cmd exited 3: bad config" in result.stderr
    assert dest.read_text() == "old\n"
    assert seen.read_text() == "id=i-0123456789abcdef0\n"  # check saw the staged content
    assert stage_files(dest.parent) == []
    assert "Traceback" not in result.stderr


def test_missing_key_fails_only_its_resource(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("bad.j2", '{{ getv("/meta-data/tags/instance/NoSuchTag") }}\n')
    confdir.resource("good.j2", '{{ getv("/meta-data/instance-type") }}\n')
    result = run_cli("--onetime", *confdir.flags(emulator))
    assert result.returncode == 1
    assert "/meta-data/tags/instance/NoSuchTag" in result.stderr
    assert "templates/bad.j2" in result.stderr
    assert not confdir.dest("bad").exists()
    assert confdir.dest("good").read_text() == "t3.micro\n"


def test_noop_prints_diff_and_changes_nothing(emulator: Emulator, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    confdir = ConfDir(tmp_path)
    confdir.resource("app.j2", 'type={{ getv("/meta-data/instance-type") }}\n',
                     check_cmd=f"touch {marker}", reload_cmd=f"touch {marker}")
    dest = confdir.dest("app")
    dest.parent.mkdir(parents=True)
    dest.write_text("type=old\n")
    result = run_cli("--onetime", "--noop", *confdir.flags(emulator))
    assert result.returncode == 0, result.stderr
    assert "-type=old\n+type=t3.micro\n" in result.stdout
    assert str(dest) in result.stdout
    assert dest.read_text() == "type=old\n"
    assert not marker.exists()
    assert stage_files(dest.parent) == []


def test_watch_is_refused() -> None:
    result = run_cli("--watch")
    assert result.returncode == 2
    assert "watch mode not supported" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_duration_names_the_flag(tmp_path: Path) -> None:
    result = run_cli("--interval", "5 parsecs", "--confdir", str(tmp_path))
    assert result.returncode == 2
    assert "--interval" in result.stderr
    assert "Traceback" not in result.stderr


def test_broken_yaml_names_file_and_line(tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    (confdir.path_obj / "conf.d" / "broken.yaml").write_text(
        "templates:\n  - src: a.j2\n    dest: [unclosed\n")
    result = run_cli("--onetime", "--confdir", confdir.path, "--endpoint", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "conf.d/broken.yaml:" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_field_is_named(tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", "x\n", reload_cmnd="true")
    result = run_cli("--onetime", "--confdir", confdir.path, "--endpoint", "http://127.0.0.1:9")
    assert result.returncode == 2
    assert "conf.d/resources.yaml:" in result.stderr
    assert "unknown field 'reload_cmnd' (did you mean 'reload_cmd'?)" in result.stderr
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_imds_absent_exits_3_after_boot_wait(tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    started = time.monotonic()
    result = run_cli("--onetime", "--confdir", confdir.path, "--boot-wait", "1s",
                     "--endpoint", f"http://127.0.0.1:{free_port()}")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert "no answer from IMDS" in result.stderr
    assert elapsed >= 1.0  # it did wait for the boot wait
    assert not confdir.dest("a").exists()
    assert not confdir.dest("a").parent.exists() or not any(confdir.dest("a").parent.iterdir())


def test_imdsv2_refused_exits_3(make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    emulator = make_emulator()
    emulator.add_fault("/latest/api/token", method="PUT", status=403)
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    result = run_cli("--onetime", *confdir.flags(emulator))
    assert result.returncode == 3
    assert "IMDSv2 token request refused (HTTP 403)" in result.stderr
    assert emulator.count("GET") == 0


def test_metadata_disabled_exits_3(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    result = run_cli("--onetime", *confdir.flags(emulator),
                     env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 3
    assert emulator.count() == 0


def test_secrets_never_in_debug_output(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir.from_examples(tmp_path, "credentials.yaml")
    dest = confdir.dest("aws-credentials")
    dest.parent.mkdir(parents=True)
    dest.write_text("[default]\naws_access_key_id = OLD\n")
    runs = [run_cli("--onetime", "--log-level", "debug", *confdir.flags(emulator), *extra)
            for extra in (("--noop",), ())]
    assert [run.returncode for run in runs] == [0, 0], runs[1].stderr
    creds = json.loads(next(v for k, v in default_fixture().items()
                            if k.startswith("/meta-data/iam/security-credentials/")))
    secrets = [creds["AccessKeyId"], creds["SecretAccessKey"], creds["Token"]]
    tokens = {r.header("X-aws-ec2-metadata-token") for r in emulator.requests} - {None}
    rendered = dest.read_text()
    assert all(secret in rendered for secret in secrets)  # they were really used
    assert tokens
    for secret in [*secrets, *tokens]:
        for run in runs:
            assert secret not in run.stderr
            assert secret not in run.stdout
    assert "<redacted>" in runs[0].stdout  # the noop diff
    assert dest.stat().st_mode & 0o777 == 0o600


def test_interval_polls_and_stops_on_sigterm(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "imdsrender", "--interval", "200ms", "--imds-cache-ttl", "1h",
         *confdir.flags(emulator)], stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        while not confdir.dest("id").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # a few more polls, all served from the cache
        assert emulator.count("GET") == 1
        assert emulator.count("PUT") == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert confdir.dest("id").read_text() == "i-0123456789abcdef0\n"
    assert "stopping" in stderr


def test_check_validates_without_imds(tmp_path: Path) -> None:
    confdir = ConfDir.from_examples(tmp_path)
    result = run_cli("check", "--confdir", confdir.path)
    assert result.returncode == 0, result.stderr
    assert "4 resources OK" in result.stdout


def test_get_prints_values(emulator: Emulator) -> None:
    result = run_cli("get", "--endpoint", emulator.url, "/instance-id",
                     "/meta-data/placement/", "/meta-data/iam/security-credentials/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "i-0123456789abcdef0"
    assert "/meta-data/placement/region\tus-east-1" in lines
    assert any(line.endswith("\t<redacted>") for line in lines)


def test_version_and_module_entry_point() -> None:
    from imdsrender import __version__

    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"imdsrender {__version__}"


def test_demo_runs() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert SEED_EXPECTED in result.stdout
    assert "/etc/app/aws-credentials (mode 0600" in result.stdout


@pytest.mark.slow
def test_demo_in_a_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel, install it into a new venv, run --version and demo there."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = venv / "bin" / "pip"
    (wheel,) = wheels.glob("imdsrender-*.whl")
    subprocess.run([str(pip), "install", "-q", str(wheel)], check=True, capture_output=True)
    cli = venv / "bin" / "imdsrender"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True, env=env,
                             cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("imdsrender ")
    demo = subprocess.run([str(cli), "demo"], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert SEED_EXPECTED in demo.stdout


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_sighup_reloads_config_and_refuses_a_broken_one(emulator: Emulator,
                                                        tmp_path: Path) -> None:
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "imdsrender", "--interval", "200ms", *confdir.flags(emulator)],
        stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        wait_for(confdir.dest("id").exists, "the first render")
        confdir.resource("type.j2", '{{ getv("/meta-data/instance-type") }}\n')
        proc.send_signal(signal.SIGHUP)
        wait_for(confdir.dest("type").exists, "the resource added before SIGHUP")

        (confdir.path_obj / "conf.d" / "broken.yaml").write_text("templates: [\n")
        confdir.dest("type").unlink()
        proc.send_signal(signal.SIGHUP)
        wait_for(confdir.dest("type").exists, "a poll with the running configuration")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert "configuration reloaded: 2 resources" in stderr
    assert "reload refused, keeping the running configuration" in stderr
    assert "conf.d/broken.yaml" in stderr
    assert confdir.dest("type").read_text() == "t3.micro\n"


def test_get_honours_the_imds_flags() -> None:
    started = time.monotonic()
    result = run_cli("get", "--boot-wait", "500ms", "--endpoint",
                     f"http://127.0.0.1:{free_port()}", "/instance-id")
    assert result.returncode == 3
    assert "no answer from IMDS" in result.stderr
    assert time.monotonic() - started < 30  # not the 60 s default boot wait
