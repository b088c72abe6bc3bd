"""Shared pytest fixtures: IMDS emulators on loopback, stopped after each test."""

from __future__ import annotations

import socket
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


_LOOPBACK = ("127.", "::1", "localhost")


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse, inside the test process, any connection that is not loopback.

    The link-local IMDS address (or anything else off this machine) must
    never be contacted from tests: a test that forgets an endpoint fails
    here instead of sending a packet.  Subprocesses get a loopback
    IMDS_ENDPOINT from tests.helpers.run_cli.
    """
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not str(host).startswith(
                _LOOPBACK):
            raise AssertionError(f"test tried to connect to {address!r}: loopback only")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    for name in ("IMDS_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
