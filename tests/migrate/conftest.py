"""Fixtures of the migrate tests: the Go renderer the differential tests compare with."""

from __future__ import annotations

import pytest

from tests.migrate.differential import build_go_renderer


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/gotemplate built once a session; skips when Go is not installed."""
    binary = build_go_renderer(tmp_path_factory.mktemp("gotemplate"))
    if binary is None:
        pytest.skip("the Go toolchain (`go`) is not installed; CI installs Debian's golang-go")
    return binary
