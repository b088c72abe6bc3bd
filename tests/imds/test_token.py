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


# The error for each non-200 answer to the token PUT, text and hint exact:
# the boundaries of the redirect range and of the "IMDSv2 off" set matter.
MISBEHAVING = ("IMDS or something in front of it is misbehaving; check --endpoint and any "
               "proxy in the way, then try again later")


@pytest.mark.parametrize("status, what, hint", [
    (299, "token request answered HTTP 299", MISBEHAVING),
    (300, "token request redirected (HTTP 300); redirect refused", MISBEHAVING),
    (399, "token request redirected (HTTP 399); redirect refused", MISBEHAVING),
    (401, "token request answered HTTP 401", MISBEHAVING),
    (403, "IMDSv2 token request refused (HTTP 403)",
     "enable IMDSv2 on the instance, or set imds.allow_imdsv1: true"),
    (405, "IMDSv2 token request refused (HTTP 405)",
     "enable IMDSv2 on the instance, or set imds.allow_imdsv1: true"),
    (406, "token request answered HTTP 406", MISBEHAVING),
])
def test_each_refused_token_answer_says_what_and_what_to_do(status: int, what: str,
                                                            hint: str) -> None:
    with pytest.raises(SourceUnavailable) as caught:
        read_token_answer(status, b"", {}, requested_ttl=60, allow_imdsv1=False,
                          endpoint="http://e")
    assert str(caught.value) == f"http://e: {what}; {hint}"


def test_a_400_names_the_ttl_setting_and_its_range() -> None:
    with pytest.raises(ImdsConfigError) as caught:
        read_token_answer(400, b"", {}, requested_ttl=60, allow_imdsv1=True, endpoint="http://e")
    assert str(caught.value) == ("imds.token_ttl: IMDS rejected the token request (400) for "
                                 "a TTL of 60; use a TTL from 1 to 21600")
