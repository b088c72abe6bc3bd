"""What the client reports and how much it may send at once.

:class:`Observer` is the hook set metrics implement, so the client counts
without knowing about Prometheus; :class:`AdaptiveLimit` caps requests in
flight and backs off after a 429.  Standard library only.
"""

from __future__ import annotations

import threading
from typing import Optional


class Observer:
    """Hooks the client calls so metrics can count without the client knowing
    about Prometheus.  The default does nothing."""

    def request(self, operation: str, path: str, status: Optional[int], seconds: float) -> None:
        """One HTTP attempt ended (status None: no HTTP answer)."""

    def retry(self, operation: str, reason: str) -> None:
        """An attempt failed and will be tried again."""

    def token_refresh(self) -> None:
        """A new token was obtained."""


class AdaptiveLimit:
    """How many requests may be in flight; halved (down to 1) after a 429.

    IMDS throttles per instance: answering a 429 with the same parallelism
    only earns more 429s.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._in_flight = 0
        self._cond = threading.Condition()

    def __enter__(self) -> AdaptiveLimit:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()

    def throttled(self) -> None:
        with self._cond:
            self.limit = max(1, self.limit // 2)
