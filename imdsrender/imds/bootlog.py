"""What the boot wait says in the log: the first failure, a summary now and then, the end.

A dead IMDS at boot is retried several times a second for up to
``boot_wait``; a line per retry buried the journal (~51 lines a minute).
Standard library only; the clock is injectable so a test can count lines.
"""

from __future__ import annotations

import logging
from typing import Callable, Optional

log = logging.getLogger("imdsrender.imds.client")

SUMMARY_EVERY = 10.0  # seconds between "still not answering" lines


class BootLog:
    """Logs one boot wait: the first retry, one summary per :data:`SUMMARY_EVERY`, the outcome."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._started = self._last = 0.0
        self._failures = 0

    def start(self) -> None:
        """A token request begins: nothing logged until it has to wait."""
        self._started = self._last = self._clock()
        self._failures = 0

    def waiting(self, reason: str, pause: float) -> None:
        """An attempt found no IMDS; the next one follows in *pause* seconds."""
        self._failures += 1
        now = self._clock()
        if self._failures == 1:
            log.info("IMDS not answering yet (%s); retrying in %.1fs", reason, pause)
            self._last = now
        elif now - self._last >= SUMMARY_EVERY:
            log.info("IMDS still not answering after %.0fs (last: %s)", now - self._started,
                     reason)
            self._last = now

    def outcome(self, failure: Optional[str]) -> None:
        """The wait ended: IMDS answered (*failure* None) or the wait gave up."""
        if not self._failures:
            return
        waited = self._clock() - self._started
        if failure is None:
            log.info("IMDS answered after %.1fs", waited)
        else:
            log.warning("IMDS did not answer within %.1fs (last: %s)", waited, failure)
