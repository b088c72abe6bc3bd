"""Helpers shared by the config tests: exact one-line errors, one-resource confdirs."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable, Dict

import pytest

from imdsrender import config
from imdsrender.config import load_resources
from imdsrender.errors import UsageError

Build = Callable[..., str]


def error_of(func: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def one(build: Build, resource_yaml: str, templates: Dict[str, str]) -> config.Resource:
    files = {"conf.d/app.yaml": resource_yaml}
    files.update({f"templates/{k}": v for k, v in templates.items()})
    (resource,) = load_resources(build(files))
    return resource


def write(tmp_path: Path, text: str, name: str = "imdsrender.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)
