"""Shared pytest fixtures: IMDS emulators on loopback, stopped after each test."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, List

import pytest

from imdsrender.emulator import Emulator
from tests.helpers import ConfDir


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A started emulator serving the default fixture (IMDSv2 only, no latency)."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def make_emulator() -> Iterator[Callable[..., Emulator]]:
    """Factory: ``make_emulator(data=..., latency_ms=..., ...)`` -> a started Emulator.

    Takes Emulator's keyword arguments; every emulator made is stopped at
    teardown, so a test may make several.
    """
    started: List[Emulator] = []

    def make(**kwargs: Any) -> Emulator:
        emu = Emulator(**kwargs).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()


@pytest.fixture
def confdir(tmp_path: Path) -> ConfDir:
    """An empty confdir whose resources write below tmp_path/out."""
    return ConfDir(tmp_path)
