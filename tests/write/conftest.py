"""Fixtures of the write tests: a destination directory, a reload log, a strict umask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    d = tmp_path / "etc" / "app"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def reloads(tmp_path: Path) -> Path:
    return tmp_path / "reloads.log"


@pytest.fixture
def umask_077() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)
