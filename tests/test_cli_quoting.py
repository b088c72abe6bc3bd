"""The service.env template, rendered by imdsrender from hostile tags, then sourced.

issue 13 item 4: with ``TAG_X={{ tag.value }}`` a tag value
``web\\nAPI_ENDPOINT=https://attacker.example`` overrides another variable and
``$(cmd)`` runs when the file is sourced.  The template in
tests/data/quoting/ (the examples' service.env.j2 with the quoting filters)
must give sh and systemd exactly the variables it writes, with the tag
values byte for byte, and run nothing; a value no filter can represent
fails the resource without writing it or printing the value.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Dict, Tuple

import pytest

from tests.env_readers import (
    HOSTILE,
    SHELLS,
    hostile,
    needs_systemd,
    raw,
    source,
    systemd_env,
)
from tests.helpers import ConfDir, run_cli

# The shipped example itself: operators copy it, so it must survive hostile tags.
TEMPLATE = (Path(__file__).parent.parent / "examples" / "templates" / "service.env.j2").read_text()
TAGS = "/meta-data/tags/instance/"
BASE = {
    "/meta-data/placement/region": "us-east-1",
    "/meta-data/placement/availability-zone": "us-east-1a",
    "/meta-data/public-ipv4": "203.0.113.25",
    "/dynamic/instance-identity/document": json.dumps({"accountId": "123456789012"}),
}
FIXED = {"REGION": "us-east-1", "AZ": "us-east-1a",
         "API_ENDPOINT": "https://api.us-east-1.amazonaws.com",
         "ACCOUNT_ID": "123456789012", "PUBLIC_IP": "203.0.113.25", "LOG_LEVEL": "info"}
REPRESENTABLE = ["command-substitution", "backticks", "parameter-expansion", "single-quotes",
                 "double-quotes", "backslashes", "trailing-backslash", "hash", "semicolon",
                 "blanks", "empty", "escape", "unicode"]
UNREPRESENTABLE = ["newline-override", "backslash-newline", "cr", "line-separator",
                   "paragraph-separator", "next-line", "nul", "invalid-utf8"]


def tag_name(name: str) -> str:
    """A tag key per hostile value, using the punctuation tag keys may hold."""
    return f"h.{name}"


def expected_env(tags: Dict[str, str]) -> Dict[str, str]:
    """The variables the template writes, in its order (gets() sorts by key)."""
    names = {key: "TAG_" + key.upper().replace(".", "_").replace("-", "_") for key in tags}
    return {**FIXED, **{names[key]: tags[key] for key in sorted(tags)}}


def render(tmp_path: Path, tags: Dict[str, str]) -> Tuple[subprocess.CompletedProcess, Path]:
    """Render the template with *tags* through the CLI; (result, dest path)."""
    values: Dict[str, object] = dict(BASE)
    for key, value in tags.items():
        values[TAGS + key] = {"base64": base64.b64encode(raw(value)).decode("ascii")}
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps(values))
    confdir = ConfDir(tmp_path)
    confdir.resource("service.env.j2", TEMPLATE)
    result = run_cli("--onetime", "--confdir", confdir.path, "--data", str(path))
    return result, confdir.dest("service.env")


@pytest.mark.parametrize("shell", SHELLS)
def test_hostile_tag_values_reach_the_shell_verbatim_and_run_nothing(
        shell: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tags = {tag_name(name): hostile(name, marker) for name in REPRESENTABLE}
    result, dest = render(tmp_path, tags)
    assert result.returncode == 0, result.stderr
    expected = expected_env(tags)
    for name, value in expected.items():
        seen = source(shell, dest, name)
        assert seen.pop("value") == raw(value), name
        # every variable the file set is one the template writes: none injected
        assert {key[1:] for key in seen} <= set(expected)
    assert not marker.exists()


@pytest.mark.tools
@needs_systemd
def test_hostile_tag_values_reach_systemd_verbatim(tmp_path: Path) -> None:
    tags = {tag_name(name): HOSTILE[name] for name in REPRESENTABLE}
    result, dest = render(tmp_path, tags)
    assert result.returncode == 0, result.stderr
    expected = expected_env(tags)
    assert systemd_env(dest) == [raw(f"{key}={value}") for key, value in expected.items()]


@pytest.mark.parametrize("name", UNREPRESENTABLE)
def test_unrepresentable_tag_value_fails_the_resource_without_showing_it(
        name: str, tmp_path: Path) -> None:
    result, dest = render(tmp_path, {"Name": HOSTILE[name]})
    assert result.returncode == 1
    assert not dest.exists()
    errors = [line for line in result.stderr.splitlines() if "envfile" in line]
    assert len(errors) == 1, result.stderr
    assert "service.env.j2:" in errors[0] and "envfile: value holds " in errors[0]
    assert "web" not in result.stderr and "attacker" not in result.stderr
    assert "Traceback" not in result.stderr


def test_tag_key_that_is_no_variable_name_fails_the_resource(tmp_path: Path) -> None:
    result, dest = render(tmp_path, {"a;b": "x"})
    assert result.returncode == 1
    assert "env_name: key holds U+003B" in result.stderr
    assert not dest.exists()
