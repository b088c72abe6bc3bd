"""The README's quick start works verbatim: its YAML and template pass ``check`` and render.

The snippets are read from README.md itself, so an edit that breaks them
(a group that does not exist, a comment that leaves a blank first line)
fails here, not for a new user.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict

import yaml

from imdsrender.emulator import Emulator

from .helpers import ROOT, run_cli

FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def quick_start_files() -> Dict[str, str]:
    """Each fenced block of the quick start whose first line names its file: path -> text."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start on an instance", 1)[1].split("\n## ", 1)[0]
    files = {}
    for _, body in FENCE.findall(section):
        named = re.search(r"(/etc/imdsrender/\S+)", body.splitlines()[0])
        if named:
            files[named.group(1)] = body
    return files


def install(tmp_path: Path, files: Dict[str, str]) -> Path:
    confdir = tmp_path / "etc-imdsrender"
    for path, text in files.items():
        target = confdir / path[len("/etc/imdsrender/"):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return confdir


def test_quick_start_snippets_are_found() -> None:
    assert set(quick_start_files()) == {"/etc/imdsrender/conf.d/app.yaml",
                                        "/etc/imdsrender/templates/app.conf.j2"}


def test_quick_start_passes_check_verbatim(tmp_path: Path) -> None:
    confdir = install(tmp_path, quick_start_files())
    result = run_cli("check", "--confdir", str(confdir))
    assert result.returncode == 0, result.stderr
    assert "1 resources OK" in result.stdout


def test_quick_start_renders_without_a_blank_first_line(tmp_path: Path,
                                                        emulator: Emulator) -> None:
    confdir = install(tmp_path, quick_start_files())
    resources = confdir / "conf.d" / "app.yaml"
    doc = yaml.safe_load(resources.read_text())
    dest = tmp_path / "out" / "app.conf"
    for entry in doc["templates"]:  # this box has no /etc/app and no app to check or reload
        entry.update(dest=str(dest))
        entry.pop("check_cmd")
        entry.pop("reload_cmd")
    resources.write_text(yaml.safe_dump(doc))
    dest.parent.mkdir()
    result = run_cli("--onetime", "--confdir", str(confdir), "--endpoint", emulator.url)
    assert result.returncode == 0, result.stderr
    assert dest.read_text() == ("instance_id = i-0123456789abcdef0\n"
                                "region      = us-east-1\n"
                                "name        = web-1\n")
