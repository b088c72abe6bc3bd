"""Fixtures of the config tests: both YAML loaders, and a confdir builder."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, Iterator

import pytest
import yaml

from imdsrender.config import yamldoc
from tests.config.support import Build


@pytest.fixture(params=["C", "pure"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the YAML tests with libyaml's loader and with the pure-Python one."""
    if request.param == "pure":
        monkeypatch.setattr(yamldoc, "_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML built without libyaml")
    yield request.param


@pytest.fixture
def confdir(tmp_path: Path, loader: str) -> Build:
    """build({"conf.d/app.yaml": "...", "templates/x.j2": "..."}) -> confdir path."""

    def build(files: Dict[str, str]) -> str:
        (tmp_path / "conf.d").mkdir(exist_ok=True)
        (tmp_path / "templates").mkdir(exist_ok=True)
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return str(tmp_path)

    return build
