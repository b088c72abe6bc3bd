"""Plan and fetch against an in-memory source: each path once, errors per path."""

from __future__ import annotations

import threading
import time
from typing import Dict, List, Optional

import pytest

from imdsrender.fetch import FetchFailed, Plan, Snapshot, fetch
from imdsrender.keys import glob_match, glob_root
from imdsrender.model import FetchLimits, ImdsSettings, Settings
from imdsrender.source import CachedSource, NotFound, SourceError, SourceUnavailable


class FakeSource:
    """Answers from a dict: bytes for a path, an exception to raise, or 404."""

    def __init__(self, answers: Dict[str, object], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.calls: List[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> bytes:
        with self._lock:
            self.calls.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            answer = self.answers.get(path)
            if answer is None:
                raise NotFound(path, "not found (404)")
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, bytes)
            return answer
        finally:
            with self._lock:
                self.in_flight -= 1


TREE = {
    "/meta-data/instance-id": b"i-1",
    "/meta-data/tags/instance/": b"Name\nEnv",
    "/meta-data/tags/instance/Name": b"web-1",
    "/meta-data/tags/instance/Env": b"prod",
    "/meta-data/network/interfaces/macs/": b"0a:01/",
    "/meta-data/network/interfaces/macs/0a:01/": b"local-ipv4s\nsubnet-id",
    "/meta-data/network/interfaces/macs/0a:01/local-ipv4s": b"10.0.0.1\n10.0.0.2",
    "/meta-data/network/interfaces/macs/0a:01/subnet-id": b"subnet-1",
}


def test_plan_is_the_union_with_covered_keys_dropped() -> None:
    plan = Plan.of([["/meta-data/tags/instance/Name", "/meta-data/instance-id"],
                    ["/meta-data/tags/instance/", "/meta-data/instance-id"]])
    assert plan.keys == ("/meta-data/instance-id", "/meta-data/tags/instance/")


def test_each_path_fetched_once_and_directories_walked() -> None:
    source = FakeSource(TREE)
    plan = Plan.of([["/meta-data/instance-id", "/meta-data/network/interfaces/macs/"],
                    ["/meta-data/tags/instance/", "/meta-data/tags/instance/Name"]])
    snapshot = fetch(plan, source)
    assert sorted(source.calls) == sorted(TREE)  # every path exactly once
    assert snapshot.values["/meta-data/network/interfaces/macs/0a:01/local-ipv4s"] == \
        b"10.0.0.1\n10.0.0.2"  # a multi-line leaf stays a leaf
    assert snapshot.listings["/meta-data/network/interfaces/macs/"] == \
        ("/meta-data/network/interfaces/macs/0a:01/",)  # one entry, no newline: a directory
    assert snapshot.value("/meta-data/tags/instance/Env") == b"prod"


def test_listed_child_404_is_missing_and_walk_goes_on() -> None:
    answers = dict(TREE)
    del answers["/meta-data/tags/instance/Env"]
    snapshot = fetch(Plan.of([["/meta-data/tags/instance/"]]), FakeSource(answers))
    assert snapshot.value("/meta-data/tags/instance/Env") is None
    assert snapshot.value("/meta-data/tags/instance/Name") == b"web-1"
    assert snapshot.errors == {}


def test_failure_is_recorded_for_that_path_only() -> None:
    answers: Dict[str, object] = dict(TREE)
    answers["/meta-data/tags/instance/Env"] = SourceError("/meta-data/tags/instance/Env",
                                                        "gave up after 4 attempts (HTTP 503)")
    snapshot = fetch(Plan.of([["/meta-data/tags/instance/", "/meta-data/instance-id"]]),
                     FakeSource(answers))
    assert snapshot.value("/meta-data/instance-id") == b"i-1"
    with pytest.raises(FetchFailed, match="HTTP 503"):
        snapshot.value("/meta-data/tags/instance/Env")
    with pytest.raises(FetchFailed):
        snapshot.matching("/meta-data/tags/instance/*")  # the directory is incomplete


def test_unavailable_aborts_the_run() -> None:
    answers: Dict[str, object] = {"/meta-data/a": SourceUnavailable("x", "down")}
    with pytest.raises(SourceUnavailable):
        fetch(Plan.of([["/meta-data/a"]]), FakeSource(answers))


def test_requests_overlap() -> None:
    answers = {f"/meta-data/k{i}": b"v" for i in range(20)}
    source = FakeSource(answers, delay=0.02)
    fetch(Plan.of([list(answers)]), source, FetchLimits(concurrency=8))
    assert source.max_in_flight > 1
    assert source.max_in_flight <= 8


def test_hostile_listing_entries_are_skipped() -> None:
    answers = {"/meta-data/d/": b"ok\n../etc\n.\na/b\nq?x\n", "/meta-data/d/ok": b"1"}
    source = FakeSource(answers)
    snapshot = fetch(Plan.of([["/meta-data/d/"]]), source)
    assert snapshot.listings["/meta-data/d/"] == ("/meta-data/d/ok",)
    assert sorted(source.calls) == ["/meta-data/d/", "/meta-data/d/ok"]


def test_depth_cap_names_the_path() -> None:
    answers = {"/meta-data/a/": b"b/", "/meta-data/a/b/": b"c/", "/meta-data/a/b/c/": b"x"}
    snapshot = fetch(Plan.of([["/meta-data/a/"]]), FakeSource(answers), FetchLimits(max_depth=3))
    assert "/meta-data/a/b/c/" in snapshot.errors
    assert "3-level" in snapshot.errors["/meta-data/a/b/c/"]


def test_run_size_cap() -> None:
    answers = {"/meta-data/a": b"x" * 600, "/meta-data/b": b"y" * 600}
    snapshot = fetch(Plan.of([list(answers)]), FakeSource(answers), FetchLimits(max_run_bytes=1000))
    assert len(snapshot.errors) == 1
    assert "size cap" in next(iter(snapshot.errors.values()))


def test_cache_serves_within_ttl_and_counts() -> None:
    now = [0.0]
    source = FakeSource({"/meta-data/a": b"1"})
    cache = CachedSource(source, ttl=60, clock=lambda: now[0])
    assert cache.get("/meta-data/a") == b"1"
    with pytest.raises(NotFound):
        cache.get("/meta-data/missing")
    assert cache.get("/meta-data/a") == b"1"
    with pytest.raises(NotFound):
        cache.get("/meta-data/missing")  # the 404 is cached too
    assert source.calls == ["/meta-data/a", "/meta-data/missing"]
    assert (cache.hits, cache.misses, cache.entries) == (2, 2, 2)
    now[0] = 61.0
    cache.get("/meta-data/a")
    assert source.calls[-1] == "/meta-data/a" and cache.misses == 3


def test_cache_does_not_keep_failures() -> None:
    answers: Dict[str, object] = {"/meta-data/a": SourceError("/meta-data/a", "HTTP 503")}
    source = FakeSource(answers)
    cache = CachedSource(source, ttl=60, clock=lambda: 0.0)
    with pytest.raises(SourceError):
        cache.get("/meta-data/a")
    answers["/meta-data/a"] = b"ok"
    assert cache.get("/meta-data/a") == b"ok"


@pytest.mark.parametrize("pattern, root", [
    ("/meta-data/tags/instance/*", "/meta-data/tags/instance/"),
    ("/meta-data/network/interfaces/macs/*/subnet-id", "/meta-data/network/interfaces/macs/"),
    ("/meta-data/instance-id", "/meta-data/instance-id"),
])
def test_glob_root(pattern: str, root: str) -> None:
    assert glob_root(pattern) == root


def test_snapshot_lookups() -> None:
    snapshot = Snapshot(values={"/meta-data/t/a": b"1", "/meta-data/t/b": b"2"},
                        listings={"/meta-data/t/": ("/meta-data/t/a", "/meta-data/t/b")},
                        requested=("/meta-data/t/",))
    assert snapshot.matching("/meta-data/t/*") == (("/meta-data/t/a", b"1"),
                                                   ("/meta-data/t/b", b"2"))
    assert snapshot.exists("/meta-data/t/") and not snapshot.exists("/meta-data/t/c")
    assert snapshot.is_requested("/meta-data/t/a") and not snapshot.is_requested("/meta-data/u")
    missing: Optional[bytes] = snapshot.value("/meta-data/t/c")
    assert missing is None


@pytest.mark.parametrize("pattern, path, matches", [
    ("/meta-data/t/*", "/meta-data/t/a", True),
    ("/meta-data/t/*", "/meta-data/t/sub/a", False),  # * stays within one segment
    ("/meta-data/macs/*/subnet-id", "/meta-data/macs/0a:01/subnet-id", True),
    ("/meta-data/macs/*/subnet-id", "/meta-data/macs/0a:01/vpc-id", False),
    ("/meta-data/t/?", "/meta-data/t/ab", False),
])
def test_glob_match_is_segment_aware(pattern: str, path: str, matches: bool) -> None:
    assert glob_match(pattern, path) is matches


def test_fetch_limits_come_from_the_settings() -> None:
    """One place for the caps: every command builds them with Settings.fetch_limits()."""
    settings = Settings(concurrency=3, imds=ImdsSettings(max_depth=4, max_run_bytes=99))
    assert settings.fetch_limits() == FetchLimits(concurrency=3, max_depth=4, max_run_bytes=99)
    assert Settings().fetch_limits() == FetchLimits()  # the defaults agree
