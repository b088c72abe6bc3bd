"""The retry policy value object and Retry-After parsing, without a socket."""

from __future__ import annotations

import math

import pytest

from imdsrender.imds.policy import RetryPolicy, giving_up_because, parse_retry_after, run_deadline
from imdsrender.model import ImdsSettings


@pytest.mark.parametrize("header, expected", [
    ("5", 5.0), ("0", 0.0), ("-3", None), ("soon", None), ("", None), (None, None),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
])
def test_parse_retry_after(header: str, expected: object) -> None:
    assert parse_retry_after(header, now=1_700_000_000.0) == expected


def test_increment_returns_a_new_policy_and_counts_to_exhaustion() -> None:
    fresh = RetryPolicy(retries=2)
    once = fresh.increment()
    assert (fresh.attempt, once.attempt) == (0, 1)  # the original is untouched
    assert not fresh.is_exhausted() and not once.is_exhausted()
    assert once.increment().is_exhausted()
    assert RetryPolicy(retries=0).is_exhausted()


@pytest.mark.parametrize("status, retry", [(429, True), (500, True), (503, True), (599, True),
                                           (200, False), (301, False), (401, False),
                                           (404, False), (600, False)])
def test_is_retry(status: int, retry: bool) -> None:
    assert RetryPolicy.is_retry(status) is retry


def test_backoff_doubles_up_to_the_cap_and_retry_after_is_capped() -> None:
    policy = RetryPolicy(backoff_base=0.05, backoff_cap=0.3, retry_after_cap=5.0)
    ceilings = []
    for _ in range(5):
        ceilings.append(policy.backoff(lambda: 1.0))
        policy = policy.increment()
    assert ceilings == [0.05, 0.1, 0.2, 0.3, 0.3]
    assert policy.wait("60", now=0.0, rand=lambda: 1.0) == 5.0
    assert policy.wait("2", now=0.0, rand=lambda: 1.0) == 2.0
    assert policy.wait("soon", now=0.0, rand=lambda: 0.5) == 0.15  # no advice: back-off


def test_from_settings_gives_every_attempt_its_timeout() -> None:
    assert RetryPolicy.from_settings(ImdsSettings(retries=1, timeout=1.0)).deadline == 10.0
    policy = RetryPolicy.from_settings(ImdsSettings(retries=4, timeout=3.0))
    assert (policy.retries, policy.deadline) == (4, 15.0)


def test_a_5000_digit_retry_after_means_forever_not_a_crash() -> None:
    assert parse_retry_after("9" * 5000, now=0.0) == math.inf
    assert RetryPolicy().wait("9" * 5000, 0.0, lambda: 1.0) == RetryPolicy.retry_after_cap


@pytest.mark.parametrize("exhausted, advised, left, ending", [
    (True, 120.0, 1.0, ""),  # out of retries: the count says it all
    (False, 120.0, 4.0, "Retry-After 120s exceeds the deadline"),
    (False, math.inf, 4.0, "Retry-After (too large to read) exceeds the deadline"),
    (False, 1.0, 4.0, "deadline reached"),  # the back-off or a slow answer ran out the time
    (False, None, 0.5, "deadline reached"),
    # the boundaries: advice equal to the time left still fits; the shown
    # number is rounded; from 1e9 s on it is "too large to read"
    (False, 4.0, 4.0, "deadline reached"),
    (False, 4.4, 4.0, "Retry-After 4s exceeds the deadline"),
    (False, 999999999.0, 4.0, "Retry-After 999999999s exceeds the deadline"),
    (False, 1e9, 4.0, "Retry-After (too large to read) exceeds the deadline"),
])
def test_giving_up_says_why(exhausted: bool, advised: float | None, left: float,
                            ending: str) -> None:
    assert giving_up_because(exhausted, advised, left) == ending


def test_run_deadline_is_the_setting_else_derived_from_the_others() -> None:
    assert run_deadline(ImdsSettings(run_timeout=30.0)) == 30.0
    derived = ImdsSettings(boot_wait=60.0, timeout=1.0, retries=3)
    assert run_deadline(derived) == 60.0 + 6 * RetryPolicy.from_settings(derived).deadline
