"""First-run polish of issue 17: snapshot keeps public-key names, demo redacts credentials."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Tuple

from imdsrender.emulator import Emulator
from imdsrender.fixture import FixtureSource, load_fixture
from imdsrender.imds.wire import TOKEN_HEADER, TOKEN_PATH, TTL_HEADER
from tests.helpers import run_cli


def test_snapshot_keeps_public_key_names(emulator: Emulator, tmp_path: Path) -> None:
    fixture = tmp_path / "snapshot.json"
    result = run_cli("snapshot", "/", "-o", str(fixture), "--endpoint", emulator.url)
    assert result.returncode == 0, result.stderr
    assert json.loads(fixture.read_text())["/meta-data/public-keys/0/_name"] == "web-1-key"
    served = FixtureSource(load_fixture(str(fixture)))
    assert served.get("/meta-data/public-keys/") == b"0=web-1-key"
    with Emulator(load_fixture(str(fixture))) as again:
        code, body = again_get(again, "/latest/meta-data/public-keys/")
    assert (code, body) == (200, b"0=web-1-key")


def again_get(emu: Emulator, path: str) -> Tuple[int, bytes]:
    """An IMDSv2 GET of *path*: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    conn.request("PUT", TOKEN_PATH, headers={TTL_HEADER: "60"})
    token = conn.getresponse().read().decode()
    conn.request("GET", path, headers={TOKEN_HEADER: token})
    resp = conn.getresponse()
    return resp.status, resp.read()


def test_demo_shows_the_credentials_file_redacted() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "FAKE" not in result.stdout and "ASIAFAKE" not in result.stdout
    head = result.stdout.split("aws-credentials", 1)[1].splitlines()[1]
    assert "<redacted>: resource uses credentials" in head
    assert "instance_id" in result.stdout or "i-0123456789abcdef0" in result.stdout


def test_get_slash_walks_the_whole_tree_with_credentials_redacted(emulator: Emulator) -> None:
    result = run_cli("get", "--endpoint", emulator.url, "/")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "/meta-data/instance-id\ti-0123456789abcdef0" in lines
    assert "/meta-data/iam/security-credentials/web-role\t<redacted>" in lines
    assert any(line.startswith("/dynamic/instance-identity/document\t") for line in lines)
    assert "FAKE/secret" not in result.stdout and "ASIAFAKE" not in result.stdout
    assert all("\t" in line for line in lines)  # multi-line values stay on their line
    ips = next(line for line in lines if line.endswith("/local-ipv4s\t" + line.split("\t")[1]))
    assert json.loads(ips.split("\t", 1)[1]) == "10.0.1.23\n10.0.1.24"


def test_get_json_is_one_object_of_paths(emulator: Emulator) -> None:
    result = run_cli("get", "--endpoint", emulator.url, "--json", "/meta-data/placement/",
                     "/instance-id", "/meta-data/iam/security-credentials/")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["/meta-data/instance-id"] == "i-0123456789abcdef0"
    assert doc["/meta-data/placement/region"] == "us-east-1"
    assert doc["/meta-data/iam/security-credentials/web-role"] == "<redacted>"


def test_get_single_leaf_prints_its_bytes_and_a_missing_key_is_exit_1(
        emulator: Emulator) -> None:
    document = run_cli("get", "--endpoint", emulator.url, "/dynamic/instance-identity/document")
    assert json.loads(document.stdout)["instanceId"] == "i-0123456789abcdef0"
    missing = run_cli("get", "--endpoint", emulator.url, "--json", "/nope", "/instance-id")
    assert missing.returncode == 1
    assert "/meta-data/nope: not found (404)" in missing.stderr
    assert json.loads(missing.stdout) == {"/meta-data/instance-id": "i-0123456789abcdef0"}
