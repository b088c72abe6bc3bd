"""``imdsrender doctor`` end to end: a subprocess against the emulator on 127.0.0.1.

Every emulator scenario (the real IMDS's bad days) must be diagnosed with
its cause, its fix and the exit code DESIGN.md gives: 3 when IMDS is
unusable, 1 when keys the templates need are missing, 0 when what is
needed works (warnings allowed).
"""

from __future__ import annotations

import json
import socket
import subprocess
from typing import Any, Dict, List

import pytest

from imdsrender.emulator import SCENARIOS, Emulator
from imdsrender.emulator.scenarios import make_scenario
from imdsrender.imds.wire import TOKEN_PATH

from .helpers import ConfDir, run_cli

# scenario -> (exit code, the failing/warning check, words its line must hold)
EXPECTED: Dict[str, Any] = {
    "hop-limit": (3, "fail token", ["hop limit", "--http-put-response-hop-limit 2",
                                    "no answer within"]),
    "imds-disabled": (3, "fail token", ["HttpEndpoint=disabled", "--http-endpoint enabled"]),
    "imdsv1-only": (3, "fail token", ["IMDSv1 only", "imds.allow_imdsv1: true"]),
    "tags-disabled": (0, "warn tags", ["instance metadata tags not enabled",
                                       "--instance-metadata-tags enabled"]),
    "no-role": (0, "warn iam", ["no role attached", "associate-iam-instance-profile"]),
    "throttled": (0, "warn throttling", ["throttled (429)", "keep concurrency low"]),
    "slow": (0, "warn latency", ["slowest answer", "imds.timeout"], "2s"),
    "flaky": (0, "warn stability", ["x 500", "reset", "imds.retries"]),
    "token-expiry": (0, "warn token-ttl", ["granted for 2 s, 21600 s asked"]),
}
FAST = ("--timeout", "0.3s", "--confdir", "/nonexistent")


def doctor(emulator_url: str, *flags: str, env: Any = None) -> subprocess.CompletedProcess:
    return run_cli("doctor", "--endpoint", emulator_url, *FAST, *flags, env=env)


def block(out: str, head: str) -> str:
    """The line starting with *head* and its cause/fix lines."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(head))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("     ")),
               len(lines))
    return "\n".join(lines[start:end])


def test_every_scenario_has_an_expectation() -> None:
    assert set(EXPECTED) == set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_doctor_names_the_cause_of_each_scenario(name: str) -> None:
    code, head, words, *timeout = EXPECTED[name]
    with Emulator(scenario=make_scenario(name)) as emu:
        result = doctor(emu.url, *(["--timeout", timeout[0]] if timeout else []))
    assert result.returncode == code, result.stdout + result.stderr
    found = block(result.stdout, head)
    for word in words:
        assert word in found, found
    assert "Traceback" not in result.stderr


def test_slow_beyond_the_timeout_is_not_called_a_hop_limit() -> None:
    """Hop limit drops only the PUT's answer: when GETs time out too, IMDS is slow."""
    with Emulator(scenario=make_scenario("slow")) as emu:
        result = doctor(emu.url, "--timeout", "0.1s")
    assert result.returncode == 3
    found = block(result.stdout, "fail token")
    assert "GETs neither" in found and "hop limit" not in found


def test_healthy_instance_is_all_ok(emulator: Emulator) -> None:
    result = doctor(emulator.url)
    assert result.returncode == 0, result.stdout
    levels = {line.split()[1].rstrip(":"): line.split()[0] for line in result.stdout.splitlines()
              if not line.startswith(" ")}
    assert levels == {"environment": "ok", "endpoint": "ok", "confdir": "warn", "tcp": "ok",
                      "token": "ok", "get": "ok", "tags": "ok", "iam": "ok", "throttling": "ok"}
    assert f"{emulator.url} (from flag --endpoint); mode ipv4 (from default)" in result.stdout
    assert "role attached: web-role" in result.stdout
    assert "FAKE" not in result.stdout  # credentials are never fetched, let alone shown


def test_json_is_one_document_with_every_check(emulator: Emulator) -> None:
    with Emulator(scenario=make_scenario("tags-disabled")) as emu:
        result = doctor(emu.url, "--json")
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode == 0
    tags = next(c for c in doc["checks"] if c["name"] == "tags")
    assert tags["level"] == "warn"
    assert "--instance-metadata-tags enabled" in tags["fix"]
    assert {c["name"] for c in doc["checks"]} >= {"tcp", "token", "get", "iam", "throttling"}


def test_metadata_disabled_skips_the_network(emulator: Emulator) -> None:
    result = doctor(emulator.url, env={"AWS_EC2_METADATA_DISABLED": "true"})
    assert result.returncode == 3
    assert "unset AWS_EC2_METADATA_DISABLED" in block(result.stdout, "fail environment")
    assert "tcp" not in result.stdout
    assert emulator.requests == []


def test_proxy_variables_are_named_and_ignored(emulator: Emulator) -> None:
    result = doctor(emulator.url, env={"HTTP_PROXY": "http://127.0.0.1:9", "no_proxy": "x"})
    assert result.returncode == 0, result.stdout
    assert "HTTP_PROXY, no_proxy set; imdsrender ignores" in result.stdout
    assert "ok   token" in result.stdout  # the dead proxy was not used


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = doctor(f"http://127.0.0.1:{port}")
    assert result.returncode == 3
    found = block(result.stdout, "fail tcp")
    assert "connection refused" in found and "nothing listens there" in found


@pytest.mark.parametrize("status, words", [
    (403, ["X-Forwarded-For", "exempt 169.254.169.254"]),
    (400, ["token TTL", "imds.token_ttl"]),
    (405, ["IMDSv1 only", "blocks PUT"]),
])
def test_token_refusals_are_told_apart(make_emulator: Any, status: int, words: List[str]) -> None:
    emu = make_emulator()
    emu.add_fault(TOKEN_PATH, method="PUT", status=status)
    result = doctor(emu.url)
    assert result.returncode == 3
    found = block(result.stdout, "fail token")
    for word in words:
        assert word in found, found


def test_imdsv1_allowed_is_a_warning_and_usable(make_emulator: Any, tmp_path: Any) -> None:
    emu = make_emulator(scenario=make_scenario("imdsv1-only"))
    settings = tmp_path / "imdsrender.yaml"
    settings.write_text("imds:\n  allow_imdsv1: true\n")
    result = doctor(emu.url, "--config", str(settings))
    assert result.returncode == 0, result.stdout
    assert "IMDSv1 fallback works" in block(result.stdout, "warn token")
    assert "ok   tags" in result.stdout


def test_ipv6_endpoint_not_answering(emulator: Emulator) -> None:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        port = sock.getsockname()[1]
    result = doctor(emulator.url, "--ipv6", f"http://[::1]:{port}")
    assert result.returncode == 3
    assert "--http-protocol-ipv6 enabled" in block(result.stdout, "fail ipv6")


def test_missing_template_keys_exit_1(emulator: Emulator, confdir: ConfDir) -> None:
    confdir.resource("a.conf.j2", "{{ getv('/meta-data/instance-id') }} "
                                  "{{ getv('/meta-data/tags/instance/Nope') }}\n")
    result = run_cli("doctor", "--endpoint", emulator.url, "--timeout", "0.3s",
                     "--confdir", confdir.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 resources OK" in result.stdout
    assert "/meta-data/tags/instance/Nope: missing (404)" in result.stdout
    assert "instance-id: missing" not in result.stdout


def test_broken_confdir_is_named(emulator: Emulator, confdir: ConfDir) -> None:
    confdir.resource("a.conf.j2", "{{ getv('/meta-data/instance-id') \n")
    result = run_cli("doctor", "--endpoint", emulator.url, "--timeout", "0.3s",
                     "--confdir", confdir.path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "a.conf.j2" in block(result.stdout, "fail confdir")
    assert "ok   token" in result.stdout  # IMDS is still checked


def test_leftover_migrate_marker_fails_the_confdir_check(emulator: Emulator,
                                                         confdir: ConfDir) -> None:
    confdir.resource("a.conf.j2", "{# imdsrender-migrate: untranslated: x #}\n")
    result = run_cli("doctor", "--endpoint", emulator.url, "--timeout", "0.3s", "--burst", "0",
                     "--confdir", confdir.path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "templates/a.conf.j2:1: a migrate-confd untranslated marker" in result.stdout
    assert "throttling" not in result.stdout  # --burst 0 skips it


def test_broken_settings_are_named_and_imds_still_probed(emulator: Emulator,
                                                         tmp_path: Any) -> None:
    settings = tmp_path / "imdsrender.yaml"
    settings.write_text("imds:\n  timeout: soon\n")
    result = doctor(emulator.url, "--config", str(settings), "--burst", "0")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "imdsrender.yaml:2" in block(result.stdout, "fail settings")
    assert "ok   token" in result.stdout
