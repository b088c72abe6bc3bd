"""The TTL cache in front of a Source: what it logs at debug level."""

from __future__ import annotations

import logging

import pytest

from imdsrender.source import CachedSource, NotFound
from tests.metrics.helpers import FakeSource


def test_debug_log_shows_each_hit_and_miss_by_path_never_the_value(
        caplog: pytest.LogCaptureFixture) -> None:
    cache = CachedSource(FakeSource({"/meta-data/a": b"secret-value"}), 60.0, clock=lambda: 0.0)
    caplog.set_level(logging.DEBUG, logger="imdsrender.source")
    cache.get("/meta-data/a")
    cache.get("/meta-data/a")
    with pytest.raises(NotFound):
        cache.get("/meta-data/gone")
    lines = [r.getMessage() for r in caplog.records if r.name == "imdsrender.source"]
    assert lines == ["cache miss: /meta-data/a", "cache hit: /meta-data/a",
                     "cache miss: /meta-data/gone"]
    assert not any("secret-value" in line for line in lines)
