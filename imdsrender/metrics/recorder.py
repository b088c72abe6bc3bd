"""The Recorder the CLI always holds: IMDS hooks plus "a pass ended", reading outcomes.

The base records nothing, so wiring needs no ``if metrics:`` around each
call; :class:`~imdsrender.metrics.registry.Metrics` is the one that records.
It learns everything about the write step from the outcomes (status, the
resource's seconds, each command's step, seconds and result): the write
step never imports metrics.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from ..errors import UsageError
from ..imds.limits import Observer
from .textfile import check_textfile_path

if TYPE_CHECKING:  # pragma: no cover
    from ..model import Outcome
    from ..source import CachedSource

EXTRA_HINT = "pip install 'imdsrender[metrics]'"


class MetricsUnavailable(UsageError):
    """A metrics flag was given but prometheus-client is not installed (exit 2)."""


class Recorder(Observer):
    """The hooks the CLI calls on every run; this base records nothing."""

    def run_finished(self, outcomes: Sequence[Outcome], seconds: float,
                     cache: Optional[CachedSource] = None,
                     error: Optional[BaseException] = None) -> None:
        """A whole run (or poll) ended; *error* when it ended without outcomes."""

    def run_started(self, deadline: Optional[float]) -> None:
        """A run (or poll) starts and should end within *deadline* seconds (None: no limit)."""

    def run_pass(self, one_pass: Callable[[], Sequence[Outcome]],
                 cache: Optional[CachedSource] = None,
                 deadline: Optional[float] = None) -> Sequence[Outcome]:
        """Run *one_pass* (fetch, render, write), time it and report it to run_finished.

        Whatever *one_pass* raises (ImdsUnavailable, a usage error, Ctrl-C)
        is reported as the run's error and re-raised, so a onetime run's
        textfile is written on failure too.
        """
        self.run_started(deadline)
        started = time.monotonic()
        try:
            outcomes = one_pass()
        except BaseException as exc:
            self.run_finished([], time.monotonic() - started, cache, error=exc)
            raise
        self.run_finished(outcomes, time.monotonic() - started, cache)
        return outcomes


def from_flags(metrics_addr: Optional[str], textfile: Optional[str], *,
               interval: bool) -> Recorder:
    """The Recorder the CLI uses: Metrics when a metrics flag is given, else a no-op.

    Checks the flags before anything is fetched, so mistakes exit 2 at
    once: --metrics-addr only makes sense in interval mode (a onetime run
    would be gone before a scrape), its address must parse, the textfile's
    directory must exist, and prometheus-client must be installed.
    """
    if metrics_addr is not None:
        if not interval:
            raise UsageError("--metrics-addr", "serves metrics only in --interval mode",
                             "use --metrics-textfile PATH for --onetime runs")
        from .server import parse_addr

        parse_addr(metrics_addr)
    if textfile is not None:
        check_textfile_path(textfile)
    if metrics_addr is None and textfile is None:
        return Recorder()
    from .registry import Metrics

    try:
        return Metrics(textfile=textfile)
    except MetricsUnavailable as exc:
        flag = "--metrics-addr" if metrics_addr is not None else "--metrics-textfile"
        raise MetricsUnavailable(flag, exc.what, exc.hint) from None
