"""Issue 13 item 7: a hostile IMDS answer cannot make a run do unbounded work.

The attacks: a listing of 100,000 entries (it made 84,186 GETs in 120 s and
was still going), a tree of empty leaves (0 bytes each against the byte
cap), and listings that change names every poll (the interval cache grew
without bound).
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Dict, List

import pytest

from imdsrender.fetch import FetchFailed, Plan, fetch
from imdsrender.model import FetchLimits, Settings
from imdsrender.source import CachedSource, NotFound

TAGS = "/meta-data/tags/instance/"
NAME = "/meta-data/tags/instance/Name"


class Hostile:
    """A Source whose listings come from *listing*; every leaf is empty; GETs counted."""

    def __init__(self, listing: Callable[[str], List[str]]) -> None:
        self.listing = listing
        self.requests = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> bytes:
        with self._lock:
            self.requests += 1
        if path.endswith("/"):
            return "\n".join(self.listing(path)).encode()
        if path == "/meta-data/instance-id":
            return b"i-0abc"
        return b""  # an empty leaf: zero bytes against the byte cap


def names(count: int, start: int = 0) -> Callable[[str], List[str]]:
    return lambda path: [f"t{i}" for i in range(start, start + count)] if path == TAGS else []


def test_a_listing_of_100000_entries_costs_one_request(caplog: pytest.LogCaptureFixture
                                                       ) -> None:
    source = Hostile(names(100_000))
    with caplog.at_level(logging.WARNING, logger="imdsrender.fetch"):
        snapshot = fetch(Plan.of([[TAGS], ["/meta-data/instance-id"]]), source,
                         Settings().fetch_limits())
    assert source.requests == 2  # the listing itself and the other resource's key
    assert snapshot.value("/meta-data/instance-id") == b"i-0abc"  # others still render
    with pytest.raises(FetchFailed, match="100000 entries, more than the cap of 10000"):
        snapshot.children(TAGS)
    assert len([r for r in caplog.records if "cap" in r.getMessage()]) == 1


def test_empty_leaves_count_against_the_request_cap(caplog: pytest.LogCaptureFixture) -> None:
    source = Hostile(names(5_000))
    limits = FetchLimits(max_requests=500)
    with caplog.at_level(logging.WARNING, logger="imdsrender.fetch"):
        snapshot = fetch(Plan.of([[TAGS]]), source, limits)
    assert source.requests == 500
    assert len(snapshot.values) == 499  # the listing took one request
    with pytest.raises(FetchFailed, match="cap of 500 requests was reached"):
        snapshot.matching(TAGS + "*")
    assert len([r for r in caplog.records if "500 requests" in r.getMessage()]) == 1


def test_only_resources_needing_the_cut_keys_fail() -> None:
    source = Hostile(names(50))
    snapshot = fetch(Plan.of([["/meta-data/instance-id"], [TAGS]]), source,
                     FetchLimits(max_requests=10, concurrency=1))
    assert snapshot.value("/meta-data/instance-id") == b"i-0abc"
    with pytest.raises(FetchFailed):
        snapshot.matching(TAGS + "*")


def test_changing_listings_keep_the_interval_cache_bounded() -> None:
    """Each poll lists 100 new names; the cache holds one poll's worth, not all of them."""
    poll = [0]
    source = Hostile(lambda path: [f"t{poll[0]}-{i}" for i in range(100)]
                     if path == TAGS else [])
    cache = CachedSource(source, ttl=0.0)
    sizes: Dict[int, int] = {}
    for poll[0] in range(30):
        with cache.poll():
            fetch(Plan.of([[TAGS]]), cache, FetchLimits())
        sizes[poll[0]] = cache.entries
    assert max(sizes.values()) == 101  # the listing and its 100 leaves
    assert source.requests == 30 * 101


def test_a_404_is_evicted_too() -> None:
    class Missing:
        def get(self, path: str) -> bytes:
            raise NotFound(path, "not found (404)")

    cache = CachedSource(Missing(), ttl=60.0)
    with cache.poll(), pytest.raises(NotFound):
        cache.get("/meta-data/tags/instance/gone")
    with cache.poll():
        pass
    assert cache.entries == 0


def test_the_caps_are_settings(tmp_path) -> None:
    from imdsrender.config import load_settings

    path = tmp_path / "imdsrender.yaml"
    path.write_text("imds:\n  max_listing_entries: 50\n  max_requests: 900\n")
    limits = load_settings(str(path)).fetch_limits()
    assert (limits.max_listing_entries, limits.max_requests) == (50, 900)


def test_cli_against_a_listing_of_100000_tags(tmp_path, make_emulator) -> None:
    """End to end: one GET for the huge listing, one warning, only its resource fails."""
    from imdsrender.fixture import default_fixture
    from tests.helpers import ConfDir, run_cli

    tags = {f"{TAGS}t{i}": b"" for i in range(100_000)}
    emulator = make_emulator(data={**default_fixture(), **tags})
    confdir = ConfDir(tmp_path)
    confdir.resource("tags.j2", "{% for t in ls('%s') %}{{ t }}\n{% endfor %}".replace("%s", TAGS))
    confdir.resource("id.j2", "{{ getv('/meta-data/instance-id') }}\n")
    result = run_cli("--onetime", *confdir.flags(emulator), timeout=120)
    assert result.returncode == 1, result.stderr
    assert confdir.dest("id").read_text().startswith("i-")
    assert not confdir.dest("tags").exists()
    assert result.stderr.count("more than the cap of 10000") == 2  # the warning, the error
    assert "templates/tags.j2:1" in result.stderr
    assert len([r for r in emulator.requests if "/tags/instance/" in r.path]) == 1
