"""The retry policy: when to try an IMDS request again and how long to wait.

One value object in the manner of urllib3's ``Retry``: the options are
fields, the decisions are named predicates (:meth:`RetryPolicy.is_retry`,
:meth:`RetryPolicy.is_exhausted`), and counting an attempt returns a new
policy (:meth:`RetryPolicy.increment`) instead of editing a shared one, so
concurrent requests never share a counter.  Standard library only.
"""

from __future__ import annotations

import dataclasses
import email.utils
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ..model import ImdsSettings
from ..quantities import ascii_int, is_ascii_digits


def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date).

    Garbage and negative values mean "no advice" (None), never a crash or a
    wait of minus ten seconds; thousands of digits mean "forever" (inf).
    """
    if not value:
        return None
    value = value.strip()
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds)
    if is_ascii_digits(value):
        return math.inf
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential back-off with full jitter, bounded by count and time.

    Jitter keeps a fleet booting at once from retrying in lock-step; a
    server's Retry-After is honoured but capped, so a hostile or confused
    answer cannot park a boot for an hour.

    :param retries: how many times one request is tried again after its
        first attempt (connection errors, timeouts, 5xx, 429).
    :param backoff_base: the first back-off ceiling in seconds; it doubles
        with every attempt.
    :param backoff_cap: the largest back-off ceiling in seconds.
    :param retry_after_cap: the longest wait a Retry-After header can ask for.
    :param deadline: seconds one logical request may take, all attempts and
        waits included.
    :param attempt: retries already spent; 0 for a fresh request.
        :meth:`increment` counts one more.
    """

    retries: int = 3
    backoff_base: float = 0.05
    backoff_cap: float = 2.0
    retry_after_cap: float = 5.0
    deadline: float = 10.0
    attempt: int = 0

    @classmethod
    def from_settings(cls, settings: ImdsSettings) -> RetryPolicy:
        """The policy for *settings*: the deadline leaves every attempt its timeout."""
        return cls(retries=settings.retries,
                   deadline=max(cls.deadline, settings.timeout * (settings.retries + 1)))

    def new(self, **changes: Any) -> RetryPolicy:
        """A copy with *changes* applied (the object itself never changes)."""
        return dataclasses.replace(self, **changes)

    def increment(self) -> RetryPolicy:
        """The policy after one more failed attempt."""
        return self.new(attempt=self.attempt + 1)

    @staticmethod
    def is_retry(status: int) -> bool:
        """Whether an HTTP answer with *status* is worth another attempt."""
        return status == 429 or 500 <= status <= 599

    def is_exhausted(self) -> bool:
        """No retries left: the next failure is final."""
        return self.attempt >= self.retries

    def backoff(self, rand: Callable[[], float]) -> float:
        """The jittered back-off before the next attempt."""
        return rand() * min(self.backoff_cap, self.backoff_base * (2 ** self.attempt))

    def wait(self, retry_after: Optional[str], now: float, rand: Callable[[], float]) -> float:
        """Seconds to sleep before the next attempt: Retry-After (capped), else back-off."""
        return self.pause(parse_retry_after(retry_after, now), rand)

    def pause(self, advised: Optional[float], rand: Callable[[], float]) -> float:
        """The wait for an already parsed Retry-After (None: no advice, back off)."""
        if advised is not None:
            return min(advised, self.retry_after_cap)
        return self.backoff(rand)


def run_deadline(settings: ImdsSettings) -> float:
    """Seconds a whole run may spend on IMDS: ``imds.run_timeout``, else derived.

    The default leaves the boot wait plus six request deadlines (each all
    of a request's attempts), enough for a few rounds of concurrent fetches
    at the worst pace the per-request rules allow.
    """
    if settings.run_timeout is not None:
        return settings.run_timeout
    return settings.boot_wait + 6 * RetryPolicy.from_settings(settings).deadline


def giving_up_because(exhausted: bool, advised: Optional[float], left: float) -> str:
    """Why a request stopped early, for the message ("" when it ran out of retries)."""
    if exhausted:
        return ""
    if advised is not None and advised > left:
        shown = f"{advised:.0f}s" if advised < 1e9 else "(too large to read)"
        return f"Retry-After {shown} exceeds the deadline"
    return "deadline reached"
