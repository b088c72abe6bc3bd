"""TokenManager and the token PUT's answer, without a socket."""

from __future__ import annotations

import threading
from typing import List, Optional, Tuple

import pytest

from imdsrender.imds.endpoint import ImdsConfigError
from imdsrender.imds.token import TokenManager, read_token_answer
from imdsrender.source import SourceUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lifetime_counts_from_the_put_minus_the_margin() -> None:
    clock = Clock()
    grants: List[Tuple[Optional[str], float]] = [("t1", 300.0), ("t2", 300.0)]
    manager = TokenManager(lambda: grants.pop(0), clock)
    assert manager.get() == "t1"
    clock.now += 239.9  # 300 - min(60, 150) = 240 usable seconds
    assert manager.get() == "t1"
    clock.now += 0.1
    assert manager.get() == "t2"


def test_short_ttl_keeps_half_of_it() -> None:
    clock = Clock()
    grants = [("t1", 10.0), ("t2", 10.0)]
    manager = TokenManager(lambda: grants.pop(0), clock)
    manager.get()
    clock.now += 4.9
    assert manager.get() == "t1"
    clock.now += 0.1
    assert manager.get() == "t2"


def test_invalidate_only_forgets_the_token_it_names() -> None:
    grants = [("t1", 300.0), ("t2", 300.0), ("t3", 300.0)]
    manager = TokenManager(lambda: grants.pop(0), Clock())
    manager.get()
    manager.invalidate("t0")  # stale: someone already renewed past it
    assert manager.get() == "t1"
    manager.invalidate("t1")
    assert manager.get() == "t2"


def test_renewal_is_single_flight() -> None:
    entered = threading.Event()
    release = threading.Event()
    calls: List[int] = []

    def fetch() -> Tuple[Optional[str], float]:
        calls.append(1)
        entered.set()
        release.wait(10)
        return "tok", 300.0

    manager = TokenManager(fetch, Clock())
    results: List[Optional[str]] = []
    threads = [threading.Thread(target=lambda: results.append(manager.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    entered.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == ["tok"] * 8
    assert len(calls) == 1


def test_token_answers() -> None:
    answer = dict(requested_ttl=600, allow_imdsv1=False, endpoint="http://e")
    assert read_token_answer(200, b" tok \n", {}, **answer) == ("tok", 600.0)
    assert read_token_answer(200, b"tok", {"X-aws-ec2-metadata-token-ttl-seconds": "30"},
                             **answer) == ("tok", 30.0)
    with pytest.raises(ImdsConfigError, match="TTL of 600"):
        read_token_answer(400, b"", {}, **answer)
    with pytest.raises(SourceUnavailable, match="refused .HTTP 403."):
        read_token_answer(403, b"", {}, **answer)
    with pytest.raises(SourceUnavailable, match="unusable token"):
        read_token_answer(200, b"to ken", {}, **answer)
    fallback = dict(answer, allow_imdsv1=True)
    assert read_token_answer(405, b"", {}, **fallback) == (None, float("inf"))


class NoLock:
    """A lock that must not be taken: the fresh-token path is lock-free."""

    def __enter__(self) -> None:
        raise AssertionError("the lock was taken for a fresh token")

    def __exit__(self, *exc: object) -> None:
        pass


def test_a_fresh_token_is_read_without_the_lock() -> None:
    clock = Clock()
    manager = TokenManager(lambda: ("t1", 300.0), clock)
    assert manager.get() == "t1"  # the first fetch takes the lock
    manager._lock = NoLock()  # type: ignore[assignment]
    for _ in range(3):
        assert manager.get() == "t1"
