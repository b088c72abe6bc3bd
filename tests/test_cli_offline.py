"""Offline workflows: snapshot, --data, and golden-file tests of templates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from imdsrender.emulator import Emulator
from imdsrender.fixture import default_fixture
from tests.helpers import EXAMPLES, ConfDir, run_cli


def rendered_files(confdir: ConfDir) -> dict:
    return {p.name: p.read_bytes() for p in sorted(confdir.out.iterdir())}


def test_snapshot_round_trip_renders_the_same_bytes(emulator: Emulator, tmp_path: Path) -> None:
    live = ConfDir.from_examples(tmp_path / "live")
    result = run_cli("--onetime", *live.flags(emulator))
    assert result.returncode == 0, result.stderr

    fixture = tmp_path / "snapshot.json"
    result = run_cli("snapshot", "/", "--include-credentials", "-o", str(fixture),
                     "--endpoint", emulator.url)
    assert result.returncode == 0, result.stderr
    requests_before = emulator.count()

    offline = ConfDir.from_examples(tmp_path / "offline")
    result = run_cli("--onetime", "--confdir", offline.path, "--data", str(fixture))
    assert result.returncode == 0, result.stderr
    assert emulator.count() == requests_before  # --data made no request at all
    live_files, offline_files = rendered_files(live), rendered_files(offline)
    assert sorted(live_files) == ["aws-credentials", "instance.conf", "interfaces.conf",
                                  "service.env"]
    assert offline_files == live_files


def test_snapshot_leaves_out_credentials_unless_asked(emulator: Emulator,
                                                      tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    assert run_cli("snapshot", "/", "-o", str(plain), "--endpoint", emulator.url).returncode == 0
    paths = json.loads(plain.read_text())
    assert "/meta-data/instance-id" in paths
    assert not [p for p in paths if "security-credentials" in p or "identity-credentials" in p]
    creds = json.loads(next(v for k, v in default_fixture().items()
                            if k.startswith("/meta-data/iam/security-credentials/")))
    assert creds["SecretAccessKey"] not in plain.read_text()
    assert creds["Token"] not in plain.read_text()
    assert plain.stat().st_mode & 0o777 == 0o644

    secret = tmp_path / "secret.json"
    assert run_cli("snapshot", "/", "--include-credentials", "-o", str(secret),
                   "--endpoint", emulator.url).returncode == 0
    assert any("security-credentials/" in p for p in json.loads(secret.read_text()))
    assert secret.stat().st_mode & 0o777 == 0o600


def test_snapshot_defaults_to_the_resources_keys(emulator: Emulator, tmp_path: Path) -> None:
    confdir = ConfDir.from_examples(tmp_path, "instance.yaml")
    result = run_cli("snapshot", *confdir.flags(emulator))
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)) == sorted([
        "/meta-data/instance-id", "/meta-data/instance-type", "/meta-data/ami-id",
        "/meta-data/tags/instance/Name", "/meta-data/tags/instance/Environment",
        "/meta-data/placement/availability-zone", "/meta-data/local-ipv4"])


def test_missing_key_in_fixture_behaves_as_404(confdir: ConfDir, tmp_path: Path) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text(json.dumps({"/meta-data/instance-id": "i-1"}))
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    confdir.resource("b.j2", '{{ getv("/meta-data/instance-type") }}\n')
    result = run_cli("--onetime", "--confdir", confdir.path, "--data", str(fixture))
    assert result.returncode == 1
    assert "/meta-data/instance-type is missing" in result.stderr
    assert confdir.dest("a").read_text() == "i-1\n"


def test_malformed_fixture_is_a_usage_error(confdir: ConfDir, tmp_path: Path) -> None:
    fixture = tmp_path / "broken.json"
    fixture.write_text('{"/meta-data/instance-id": "i-1",\n  oops}')
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    for command in (["--onetime"], ["check"]):
        result = run_cli(*command, "--confdir", confdir.path, "--data", str(fixture))
        assert result.returncode == 2
        assert f"{fixture}:2: invalid JSON" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not confdir.dest("a").exists()


def test_check_with_data_renders_every_resource(confdir: ConfDir, tmp_path: Path) -> None:
    fixture = tmp_path / "f.json"
    fixture.write_text(json.dumps({"/meta-data/instance-id": "i-1"}))
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    assert run_cli("check", "--confdir", confdir.path, "--data", str(fixture)).returncode == 0
    confdir.resource("b.j2", '{{ getv("/meta-data/nope") }}\n')
    result = run_cli("check", "--confdir", confdir.path, "--data", str(fixture))
    assert result.returncode == 1
    assert "/meta-data/nope" in result.stderr
    assert not confdir.out.exists()  # check writes nothing


def test_golden_cases_pass_and_a_changed_golden_file_fails(tmp_path: Path) -> None:
    result = run_cli("test", "--confdir", str(EXAMPLES), str(EXAMPLES / "tests"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 0 failed" in result.stdout

    cases = tmp_path / "cases"
    shutil.copytree(EXAMPLES / "tests", cases)
    golden = cases / "default" / "expected" / "etc" / "app" / "instance.conf"
    golden.write_text(golden.read_text().replace("name=web-1", "name=web-2"))
    result = run_cli("test", "--confdir", str(EXAMPLES), str(cases))
    assert result.returncode == 1
    assert "FAIL default: conf.d/instance.yaml:3: output differs" in result.stdout
    assert "-name=web-2\n+name=web-1\n" in result.stdout
    assert "1 passed, 1 failed (default)" in result.stdout

    result = run_cli("test", "--confdir", str(EXAMPLES), str(cases), "--update")
    assert result.returncode == 0
    assert "name=web-1" in golden.read_text()
