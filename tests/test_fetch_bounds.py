"""Fetch limits, listing hygiene and Snapshot look-ups, found by mutation testing.

Each test pins a behaviour that a mutmut survivor changed without any
other test noticing (docs/testing.md lists them): the concurrency bound,
children requested as soon as their listing is in, exact caps, which
listing entries are refused, and errors that name the path.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict

import pytest

from imdsrender import fetch
from imdsrender.model import FetchLimits
from imdsrender.source import SourceError
from tests.test_fetch_walk_once import Source

TAGS = "/meta-data/tags/instance/"


def leaves(n: int) -> Dict[str, object]:
    return {f"/meta-data/k{i}": b"v" for i in range(n)}


@pytest.mark.parametrize("concurrency,limit", [(1, 1), (2, 2), (None, 8)])
def test_never_more_requests_in_flight_than_the_concurrency(
        concurrency: object, limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool is sized by --concurrency (default 8), and requests respect it."""
    sizes = []

    class Pool(ThreadPoolExecutor):
        def __init__(self, max_workers: int, **kw: Any) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers, **kw)

    monkeypatch.setattr(fetch, "ThreadPoolExecutor", Pool)
    source = Source(leaves(24), hold=lambda path: time.sleep(0.01))
    limits = None if concurrency is None else FetchLimits(concurrency=concurrency)

    fetch.fetch(fetch.Plan.of([list(source.answers)]), source, limits)

    assert sizes == [limit]
    assert len(source.calls) == 24
    assert source.max_in_flight <= limit


def test_a_child_is_requested_as_soon_as_its_listing_is_in() -> None:
    """A slow leaf does not hold back the walk of a directory that answered."""
    child_requested = threading.Event()
    seen_while_slow = []

    def hold(path: str) -> None:
        if path == "/meta-data/slow":
            seen_while_slow.append(child_requested.wait(timeout=10))

    def mark(path: str) -> None:
        if path == TAGS + "Name":
            child_requested.set()
        hold(path)

    source = Source({"/meta-data/slow": b"s", TAGS: b"Name", TAGS + "Name": b"web"}, hold=mark)
    snapshot = fetch.fetch(fetch.Plan.of([["/meta-data/slow", TAGS]]), source,
                           FetchLimits(concurrency=4))

    assert seen_while_slow == [True]
    assert snapshot.values == {"/meta-data/slow": b"s", TAGS + "Name": b"web"}


def test_the_snapshot_remembers_the_planned_keys() -> None:
    plan = fetch.Plan.of([["/meta-data/instance-id", TAGS]])
    snapshot = fetch.fetch(plan, Source({TAGS: b""}))
    assert snapshot.requested == plan.keys
    assert not snapshot.is_requested("/meta-data/ami-id")


def test_run_size_cap_is_inclusive() -> None:
    answers = {"/meta-data/a": b"x" * 600, "/meta-data/b": b"y" * 400}
    snapshot = fetch.fetch(fetch.Plan.of([list(answers)]), Source(answers),
                           FetchLimits(max_run_bytes=1000))
    assert snapshot.errors == {}
    assert snapshot.values == answers


def test_run_size_cap_error_and_warning(caplog: pytest.LogCaptureFixture) -> None:
    answers = {"/meta-data/a": b"x" * 600, "/meta-data/b": b"y" * 600}
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([list(answers)]), Source(answers),
                               FetchLimits(concurrency=1, max_run_bytes=1000))
    assert snapshot.errors == {"/meta-data/b": "the run's total size cap was exceeded"}
    assert caplog.messages == ["/meta-data/b: the run's total size cap was exceeded"]


def test_source_error_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    error = SourceError("/meta-data/a", "gave up after 4 attempts (HTTP 503)", "try later")
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([["/meta-data/a"]]), Source({"/meta-data/a": error}))
    assert snapshot.errors == {"/meta-data/a": "gave up after 4 attempts (HTTP 503)"}
    assert caplog.messages == [str(error)]


def test_depth_cap_default_and_nothing_below_it_is_requested(
        caplog: pytest.LogCaptureFixture) -> None:
    """16 levels by default; the too-deep directory is never requested."""
    path = "/meta-data/"
    answers: Dict[str, object] = {}
    for level in range(1, 17):  # /meta-data/d1/ ... /meta-data/d1/.../d16/
        answers[path] = f"d{level}/".encode()
        path += f"d{level}/"
    answers[path] = b"leaf"
    too_deep = path
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([["/meta-data/"]]), source := Source(answers))
    assert too_deep not in source.calls
    assert snapshot.errors == {too_deep: "deeper than the 16-level directory cap"}
    assert caplog.messages == [f"{too_deep}: deeper than the 16-level directory cap"]


@pytest.mark.parametrize("entry", ["/", "a/b/", "q?x/", "..", "x\x01y"])
def test_hostile_listing_entries_are_skipped_and_logged(
        entry: str, caplog: pytest.LogCaptureFixture) -> None:
    listing = f"ok\n{entry}\n".encode()
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([[TAGS]]),
                               source := Source({TAGS: listing, TAGS + "ok": b"1"}))
    assert snapshot.listings[TAGS] == (TAGS + "ok",)
    assert sorted(source.calls) == [TAGS, TAGS + "ok"]
    assert caplog.messages == [f"{TAGS}: skipped listing entry {entry!r} (not a safe path name)"]


def test_names_with_spaces_and_crlf_listings_are_kept() -> None:
    """Tag keys may hold spaces; only control characters make an entry hostile."""
    listing = b"Cost Center\r\nName\r\n"
    source = Source({TAGS: listing, TAGS + "Cost Center": b"42", TAGS + "Name": b"web"})
    snapshot = fetch.fetch(fetch.Plan.of([[TAGS]]), source)
    assert snapshot.listings[TAGS] == (TAGS + "Cost Center", TAGS + "Name")
    assert snapshot.values[TAGS + "Cost Center"] == b"42"


# ---------------------------------------------------------------- Snapshot look-ups

FAILED_DIR = fetch.Snapshot(values={"/meta-data/instance-id": b"i-1"},
                            listings={"/meta-data/placement/": ("/meta-data/placement/region",)},
                            errors={TAGS: "HTTP 500"})


def test_a_failed_listing_makes_everything_below_it_unknowable() -> None:
    with pytest.raises(fetch.FetchFailed) as caught:
        FAILED_DIR.value(TAGS + "Name")
    assert str(caught.value) == (f"{TAGS}Name: could not be fetched ({TAGS}: HTTP 500); "
                                 "see the earlier log lines for the IMDS error")
    with pytest.raises(fetch.FetchFailed):
        FAILED_DIR.exists(TAGS)
    with pytest.raises(fetch.FetchFailed):
        FAILED_DIR.children(TAGS)


def test_lookups_outside_the_failure_still_answer() -> None:
    assert FAILED_DIR.exists("/meta-data/instance-id")
    assert not FAILED_DIR.exists("/meta-data/ami-id")
    assert FAILED_DIR.children("/meta-data/placement/") == ("/meta-data/placement/region",)
    assert FAILED_DIR.children("/meta-data/events/") is None
    with pytest.raises(fetch.FetchFailed):  # an error below a directory makes it incomplete
        FAILED_DIR.children("/meta-data/")


# ------------------------------------------- caps found loose by the re-run on the new layout

def test_request_cap_fails_the_planned_keys_past_it_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    """Planned keys count against the cap too; each one past it gets its own error."""
    answers = {f"/meta-data/{name}": name.encode() for name in "abcd"}
    source = Source(answers)
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([list(answers)]), source,
                               FetchLimits(max_requests=2, concurrency=1))
    reason = "the run's cap of 2 requests was reached"
    assert sorted(source.calls) == ["/meta-data/a", "/meta-data/b"]
    assert snapshot.errors == {"/meta-data/c": reason, "/meta-data/d": reason}
    assert caplog.messages == [f"/meta-data/c: {reason}; the resources needing it and later "
                               "paths fail (imds.max_requests)"]


@pytest.mark.parametrize("entries,kept", [(3, True), (4, False)])
def test_listing_entry_cap_is_inclusive_and_counts_skipped_entries(
        caplog: pytest.LogCaptureFixture, entries: int, kept: bool) -> None:
    """A cap of 3: two names and one hostile entry pass, one more entry is too many."""
    body = b"\n".join([b"a", b"..", b"b", b"c"][:entries])
    answers = {TAGS: body, TAGS + "a": b"1", TAGS + "b": b"2", TAGS + "c": b"3"}
    with caplog.at_level(logging.WARNING):
        snapshot = fetch.fetch(fetch.Plan.of([[TAGS]]), Source(answers),
                               FetchLimits(max_listing_entries=3))
    if kept:
        assert snapshot.errors == {}
        assert snapshot.listings[TAGS] == (TAGS + "a", TAGS + "b")
        assert caplog.messages == [f"{TAGS}: skipped listing entry '..' (not a safe path name)"]
    else:
        cut = "the listing has 4 entries, more than the cap of 3"
        assert snapshot.errors == {TAGS: cut}
        assert TAGS not in snapshot.listings
        assert caplog.messages == [f"{TAGS}: {cut}"]


def test_no_thread_for_a_fetch_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pids limit (systemd TasksMax) refuses new threads: say so, and what to change."""
    def refuse(self: Any, *args: Any, **kw: Any) -> Any:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(ThreadPoolExecutor, "submit", refuse)
    with pytest.raises(fetch.FetchFailed) as caught:
        fetch.fetch(fetch.Plan.of([["/meta-data/a"]]), Source({"/meta-data/a": b"1"}))
    assert str(caught.value) == ("fetch: cannot start a fetch thread (can't start new thread); "
                                 "raise the service's TasksMax, or lower concurrency")
