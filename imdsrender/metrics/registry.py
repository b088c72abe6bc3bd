"""Metrics: every imdsrender series in its own registry, fed by hooks and outcomes.

prometheus-client is the optional extra ``metrics``; it is imported only when
a :class:`Metrics` is built, so importing this module works without it.
IMDS requests come in through the client's Observer hooks; everything about
resources and commands is read from each run's outcomes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from .. import __version__
from ..model import RUN_ERROR, RUN_FAILED, RUN_OK, STATUSES, WRITTEN
from ..source import SourceError
from .labels import error_reason, path_category, retry_reason
from .recorder import EXTRA_HINT, MetricsUnavailable, Recorder
from .textfile import MetricsError, write_textfile

if TYPE_CHECKING:  # pragma: no cover
    from ..model import Outcome
    from ..source import CachedSource

log = logging.getLogger(__name__)

# IMDS answers in about a millisecond; the default buckets start at 5 ms.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics(Recorder):
    """All imdsrender metrics in their own registry (never the global one).

    Counters and the request histogram are updated as events happen (from
    any thread: prometheus-client metrics are thread-safe).  Per-run state
    (last status per resource, cache, health) is kept here under a lock and
    exposed by a collector at scrape time, so a resource dropped by a
    SIGHUP reload disappears from the output instead of lingering.
    """

    def __init__(self, textfile: Optional[str] = None,
                 wall: Callable[[], float] = time.time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        try:
            import prometheus_client as prom
        except ImportError:
            raise MetricsUnavailable("--metrics-addr/--metrics-textfile",
                                     "metrics need prometheus-client, which is not installed",
                                     EXTRA_HINT) from None
        if hasattr(prom, "disable_created_metrics"):
            prom.disable_created_metrics()  # *_created series only add noise to textfiles
        self._prom = prom
        self.textfile = textfile
        self._wall, self._clock = wall, clock
        self._lock = threading.Lock()
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._define(prom)
        self._state = _RunState()
        self.registry.register(_StateCollector(self))

    def _define(self, prom: Any) -> None:
        reg = self.registry
        self._duration = prom.Histogram(
            "confd_backend_request_duration_seconds", "IMDS request duration (one HTTP attempt)",
            ["operation", "category"], buckets=REQUEST_BUCKETS, registry=reg)
        self._requests = prom.Counter(
            "confd_backend_request_total", "IMDS requests (HTTP attempts) by answer code; "
            "code 'none' means no HTTP answer", ["operation", "category", "code"], registry=reg)
        self._errors = prom.Counter(
            "confd_backend_errors_total", "IMDS attempts that failed (404 on get/list is not "
            "an error)", ["operation", "category", "reason"], registry=reg)
        self._retries = prom.Counter(
            "imdsrender_retries_total", "IMDS attempts retried, by reason", ["reason"],
            registry=reg)
        self._tokens = prom.Counter(
            "imdsrender_token_refreshes_total", "IMDSv2 tokens obtained", registry=reg)
        self._changed = prom.Counter(
            "imdsrender_files_changed_total", "Files written because their content, mode or "
            "owner changed", ["dest"], registry=reg)
        self._failures = prom.Counter(
            "imdsrender_resource_failures_total", "Resources that failed to render or sync",
            ["dest"], registry=reg)
        self._runs = prom.Counter(
            "imdsrender_runs_total", "Runs (polls in interval mode) by result: ok, failed "
            "(some resource failed) or error (nothing rendered)", ["result"], registry=reg)
        info = prom.Gauge("imdsrender_info", "Version of imdsrender", ["version"], registry=reg)
        info.labels(__version__).set(1)

    # -- Observer hooks (called by ImdsClient) ----------------------------------

    def request(self, operation: str, path: str, status: Optional[int], seconds: float) -> None:
        category = path_category(path)
        self._duration.labels(operation, category).observe(max(0.0, seconds))
        self._requests.labels(operation, category,
                              "none" if status is None else str(status)).inc()
        reason = error_reason(operation, status)
        if reason is not None:
            self._errors.labels(operation, category, reason).inc()

    def retry(self, operation: str, reason: str) -> None:
        self._retries.labels(retry_reason(reason)).inc()

    def token_refresh(self) -> None:
        self._tokens.inc()

    # -- run hooks (called by the CLI) --------------------------------------------

    def run_started(self, deadline: Optional[float]) -> None:
        with self._lock:
            self._state.running = (self._clock(), deadline)

    def run_finished(self, outcomes: Sequence[Outcome], seconds: float,
                     cache: Optional[CachedSource] = None,
                     error: Optional[BaseException] = None) -> None:
        """Record a run; then write the textfile, if one was asked for.

        The run counts as successful (last success timestamp) when it ended
        without *error* and no resource failed.  IMDS counts as healthy
        unless the run failed for want of IMDS.
        """
        failed = [o for o in outcomes if o.failed]
        for outcome in outcomes:
            if outcome.status == WRITTEN:
                self._changed.labels(outcome.dest).inc()
        for outcome in failed:
            self._failures.labels(outcome.dest).inc()
        result = RUN_ERROR if error is not None else RUN_FAILED if failed else RUN_OK
        self._runs.labels(result).inc()
        now = self._wall()
        with self._lock:
            state = self._state
            if error is None:
                state.read_outcomes(outcomes)
            state.failed = len(failed)
            state.last_run, state.last_duration, state.last_result = now, seconds, result
            state.running, state.last_error = None, None if error is None else str(error)
            if result == RUN_OK:
                state.last_success = now
            if cache is not None:
                state.cache = cache
            state.healthy = not isinstance(error, SourceError)
        if self.textfile:
            try:
                write_textfile(self.textfile, self)
            except MetricsError as exc:
                log.error("%s", exc)

    def set_healthy(self, healthy: bool) -> None:
        """Result of a /ready check: feeds ``confd_backend_healthy``."""
        with self._lock:
            self._state.healthy = healthy

    # -- reading ----------------------------------------------------------------

    def not_ready(self) -> Optional[str]:
        """Why the polls make this process unready: one stuck past its deadline, or the
        last one failed as a whole (RUN_ERROR: nothing rendered; a failed resource is
        its own metric); None when neither (a live IMDS alone is not readiness)."""
        with self._lock:
            state = self._state
            if state.running is not None and state.running[1] is not None:
                took, deadline = self._clock() - state.running[0], state.running[1]
                if took > deadline:
                    return f"poll running for {took:.0f}s, past its {deadline:g}s deadline"
            if state.last_result == RUN_ERROR:
                return f"last poll {state.last_result}" + (f": {state.last_error}"
                                                            if state.last_error else "")
        return None

    def details(self) -> Dict[str, Any]:
        """The ``details`` object of /ready/detailed: cache stats and the last run."""
        with self._lock:
            state = self._state
            cache = state.cache
            detail: Dict[str, Any] = {
                "cache_entries": cache.entries if cache else 0,
                "cache_ttl": cache.ttl if cache else None,
                "cache_hits": cache.hits if cache else 0,
                "cache_misses": cache.misses if cache else 0,
                "last_run": iso_time(state.last_run) if state.last_run else None,
                "last_result": state.last_result,
                "last_success": iso_time(state.last_success) if state.last_success else None,
                "resources": dict(sorted(state.statuses.items())),
            }
        return detail

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what /metrics serves)."""
        data: bytes = self._prom.generate_latest(self.registry)
        return data

    @property
    def content_type(self) -> str:
        return str(self._prom.CONTENT_TYPE_LATEST)

    def copy_run_state(self) -> _RunState:
        """A copy of what the last run left behind, for the collector."""
        with self._lock:
            return self._state.copy()


class _RunState:
    """What the last run left behind (guarded by Metrics._lock)."""

    def __init__(self) -> None:
        self.statuses: Dict[str, str] = {}
        self.durations: Dict[str, float] = {}
        self.commands: Dict[Tuple[str, str], Tuple[float, int]] = {}
        self.failed = 0
        self.last_run = 0.0
        self.last_success = 0.0
        self.last_duration = 0.0
        self.last_result: Optional[str] = None
        self.healthy: Optional[bool] = None
        self.cache: Optional[CachedSource] = None
        self.running: Optional[Tuple[float, Optional[float]]] = None  # (started, deadline)
        self.last_error: Optional[str] = None

    def read_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """Take statuses, durations and commands from a run's outcomes.

        A command keeps its last result until its resource is dropped from
        the config (a run without that resource), as a gauge should.
        """
        self.statuses = {o.dest: o.status for o in outcomes}
        self.durations = {o.dest: max(0.0, o.seconds) for o in outcomes}
        self.commands = {k: v for k, v in self.commands.items() if k[0] in self.statuses}
        for outcome in outcomes:
            for step in outcome.steps:
                self.commands[(outcome.dest, step.step)] = (max(0.0, step.seconds),
                                                            step.returncode)

    def copy(self) -> _RunState:
        twin = _RunState()
        twin.__dict__.update({k: dict(v) if isinstance(v, dict) else v
                              for k, v in self.__dict__.items()})
        return twin


class _StateCollector:
    """Yields the per-run gauges and the cache counters at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = self._metrics.copy_run_state()
        yield _gauge(GaugeMetricFamily, "confd_backend_healthy",
                     "1 when the last IMDS contact (run or /ready check) succeeded",
                     1.0 if state.healthy else 0.0)
        status = GaugeMetricFamily("imdsrender_resource_status", "1 for the status of each "
                                   "resource in the last run", labels=["dest", "status"])
        for dest, current in sorted(state.statuses.items()):
            for name in STATUSES:
                status.add_metric([dest, name], 1.0 if name == current else 0.0)
        yield status
        duration = GaugeMetricFamily("imdsrender_render_duration_seconds", "Time to render "
                                     "and sync each resource in the last run (commands "
                                     "included)", labels=["dest"])
        for dest, seconds in sorted(state.durations.items()):
            duration.add_metric([dest], seconds)
        yield duration
        yield from _command_families(GaugeMetricFamily, state)
        yield _gauge(GaugeMetricFamily, "imdsrender_resources_failed",
                     "Resources that failed in the last run", float(state.failed))
        yield _gauge(GaugeMetricFamily, "imdsrender_last_run_timestamp_seconds",
                     "When the last run ended (0: none yet)", state.last_run)
        yield _gauge(GaugeMetricFamily, "imdsrender_last_success_timestamp_seconds",
                     "When the last run without any failure ended (0: none yet)",
                     state.last_success)
        yield _gauge(GaugeMetricFamily, "imdsrender_last_run_duration_seconds",
                     "How long the last run took", state.last_duration)
        if state.cache is not None:
            yield from _cache_families(CounterMetricFamily, GaugeMetricFamily, state.cache)


def _gauge(family: Any, name: str, doc: str, value: float) -> Any:
    return family(name, doc, value=value)


def _command_families(family: Any, state: _RunState) -> Iterator[Any]:
    seconds = family("imdsrender_command_duration_seconds", "Duration of the last check_cmd "
                     "or reload_cmd of each resource", labels=["dest", "command"])
    status = family("imdsrender_command_exit_status", "Exit status of the last check_cmd or "
                    "reload_cmd (negative: killed by that signal, 127: could not start)",
                    labels=["dest", "command"])
    for (dest, kind), (took, code) in sorted(state.commands.items()):
        seconds.add_metric([dest, kind], took)
        status.add_metric([dest, kind], float(code))
    yield seconds
    yield status


def _cache_families(counter: Any, gauge: Any, cache: CachedSource) -> Iterator[Any]:
    yield counter("imdsrender_cache_hits", "IMDS values served from the interval-mode cache",
                  value=cache.hits)
    yield counter("imdsrender_cache_misses", "IMDS values not in the cache (fetched)",
                  value=cache.misses)
    yield gauge("imdsrender_cache_entries", "Paths held in the cache", value=cache.entries)
    yield gauge("imdsrender_cache_ttl_seconds", "How long cached values are reused",
                value=cache.ttl)


def iso_time(timestamp: float) -> str:
    """RFC 3339 UTC with milliseconds, like the JSON logs."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{whole}.{int(timestamp * 1000) % 1000:03d}Z"
