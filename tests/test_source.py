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


class RunCountingSource(FakeSource):
    """A source with a whole-run deadline, as the IMDS client has."""

    def __init__(self) -> None:
        super().__init__({"/meta-data/a": b"1"})
        self.runs = 0

    def begin_run(self) -> None:
        self.runs += 1


def test_each_poll_is_one_run_of_the_source_below() -> None:
    # The client outlives polls in interval mode: started once, its run deadline
    # would fail every poll after the first run_timeout.
    source = RunCountingSource()
    cache = CachedSource(source, 60.0, clock=lambda: 0.0)
    for expected in (1, 2, 3):
        with cache.poll():
            cache.get("/meta-data/a")
        assert source.runs == expected


def test_a_source_without_runs_is_polled_as_before() -> None:
    cache = CachedSource(FakeSource({"/meta-data/a": b"1"}), 60.0, clock=lambda: 0.0)
    with cache.poll():
        assert cache.get("/meta-data/a") == b"1"
