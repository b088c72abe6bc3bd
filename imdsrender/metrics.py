"""Observability: Prometheus metrics, the status server and the textfile collector.

Operators run fleets; when a file did not change on some instance they need
to see why without logging in.  This module turns the client's
:class:`~imdsrender.imds.limits.Observer` hooks and each run's outcomes into
Prometheus metrics, and exposes them two ways:

- ``--metrics-addr HOST:PORT`` (interval mode): a small HTTP server with
  ``/metrics``, ``/health`` (liveness), ``/ready`` (a real IMDS check, 200 or
  503) and ``/ready/detailed`` (the same check as JSON, with cache and
  per-resource status).
- ``--metrics-textfile PATH``: the same registry written atomically in the
  text exposition format after each run, for node_exporter's textfile
  collector (a oneshot or timer run has no server to scrape).

prometheus-client is the optional extra ``metrics``; it is imported only when
a :class:`Metrics` is built, so importing this module (and everything else)
works without it.

Label rules: IMDS requests are labelled with the operation (token/get/list)
and a path *category* (meta-data, dynamic, user-data, token, other), never
the path itself: paths carry role names and would make cardinality
unbounded.  Resources are labelled by ``dest``, which the configuration
bounds.  Retry reasons and error reasons are mapped to a small fixed set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from . import __version__
from .errors import Error, UsageError
from .imds.limits import Observer
from .quantities import ascii_int
from .source import SourceError

if TYPE_CHECKING:  # pragma: no cover
    from http.server import ThreadingHTTPServer

    from .model import ImdsSettings, Outcome, Resource
    from .source import CachedSource
    from .write import CommandResult, Runner

log = logging.getLogger(__name__)

EXTRA_HINT = "pip install 'imdsrender[metrics]'"
STATUSES = ("unchanged", "written", "would-write", "failed")
# IMDS answers in about a millisecond; the default buckets start at 5 ms.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
HealthCheck = Callable[[], Tuple[bool, str]]


class MetricsUnavailable(UsageError):
    """A metrics flag was given but prometheus-client is not installed (exit 2)."""


class MetricsError(Error):
    """The textfile could not be written (the run itself is not affected)."""


# --- labels -------------------------------------------------------------------

def path_category(path: str) -> str:
    """meta-data / dynamic / user-data / token / other: a bounded label for a URL path."""
    parts = path.lstrip("/").split("/")
    if parts and parts[0] == "latest":
        parts = parts[1:]
    head = parts[0] if parts else ""
    if head == "api" and len(parts) > 1 and parts[1] == "token":
        return "token"
    return head if head in ("meta-data", "dynamic", "user-data") else "other"


def error_reason(operation: str, status: Optional[int]) -> Optional[str]:
    """Why an attempt counts as an IMDS error, or None when it does not.

    A 404 on get/list is a key this instance does not have (an optional tag,
    no public IP): normal, so not an error.  On the token PUT it means
    IMDSv2 is off, which is.
    """
    if status is None:
        return "no_answer"
    if 200 <= status < 300:
        return None
    if status == 404:
        return "not_found" if operation == "token" else None
    named = {401: "unauthorized", 403: "forbidden", 429: "throttled"}
    if status in named:
        return named[status]
    if 300 <= status < 400:
        return "redirect"
    return "server_error" if status >= 500 else "client_error"


_RETRY_PREFIXES = (
    ("connect timed out", "connect_timeout"),
    ("read timed out", "read_timeout"),
    ("connection failed", "connection_failed"),
    ("connection error", "connection_error"),
    ("short body", "short_body"),
    ("body not complete", "deadline"),
)


def retry_reason(reason: str) -> str:
    """Map the client's free-text retry reason to a bounded label.

    "HTTP 503" -> "http_503" (only 429 and 5xx are retried, so this is
    bounded), "connection failed: [Errno 111] ..." -> "connection_failed".
    """
    if reason.startswith("HTTP ") and ascii_int(reason[5:]) is not None:
        return "http_" + reason[5:].strip()
    for prefix, label in _RETRY_PREFIXES:
        if reason.startswith(prefix):
            return label
    return "other"


# --- recorders ----------------------------------------------------------------

class Recorder(Observer):
    """The hooks the CLI calls on every run; this base records nothing.

    The CLI always holds a Recorder, so wiring needs no ``if metrics:``
    around each call; :class:`Metrics` is the one that records.
    """

    def resource_finished(self, dest: str, status: str, seconds: float) -> None:
        """One resource was rendered and synced (or failed) in *seconds*."""

    def command_runner(self, resource: Resource, run: Optional[Runner] = None) -> Runner:
        """A Runner for ``write.sync(run=...)``; Metrics wraps it to time commands."""
        from .write import run_command

        return run or run_command

    def run_finished(self, outcomes: Sequence[Outcome], seconds: float,
                     cache: Optional[CachedSource] = None,
                     error: Optional[BaseException] = None) -> None:
        """A whole run (or poll) ended; *error* when it ended without outcomes."""

    def record(self, run: Callable[[], Sequence[Outcome]],
               cache: Optional[CachedSource] = None) -> Sequence[Outcome]:
        """Call *run* (one pass: fetch, render, write) and report it to run_finished.

        Whatever *run* raises (ImdsUnavailable, a usage error, Ctrl-C) is
        reported as the run's error and re-raised, so a onetime run's
        textfile is written on failure too.
        """
        started = time.monotonic()
        try:
            outcomes = run()
        except BaseException as exc:
            self.run_finished([], time.monotonic() - started, cache, error=exc)
            raise
        self.run_finished(outcomes, time.monotonic() - started, cache)
        return outcomes


class Metrics(Recorder):
    """All imdsrender metrics in their own registry (never the global one).

    Counters and the request histogram are updated as events happen (from
    any thread: prometheus-client metrics are thread-safe).  Per-run state
    (last status per resource, cache, health) is kept here under a lock and
    exposed by a collector at scrape time, so a resource dropped by a
    SIGHUP reload disappears from the output instead of lingering.
    """

    def __init__(self, textfile: Optional[str] = None,
                 wall: Callable[[], float] = time.time) -> None:
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
        self._wall = wall
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

    def resource_finished(self, dest: str, status: str, seconds: float) -> None:
        with self._lock:
            self._state.durations[dest] = max(0.0, seconds)

    def command_runner(self, resource: Resource, run: Optional[Runner] = None) -> Runner:
        """Wrap *run* so check_cmd and reload_cmd durations and exit codes are recorded.

        write.sync calls its runner for check_cmd (if any) and then for
        reload_cmd (if any), each at most once per sync: the n-th call is
        the n-th of those.  Use a fresh runner for every sync.  A command
        that could not start records exit status 127, like the shell would.
        """
        inner = super().command_runner(resource, run)
        steps = [kind for kind, cmd in (("check", resource.check_cmd),
                                        ("reload", resource.reload_cmd)) if cmd]
        calls = iter(steps)

        def timed(cmd: str, timeout: float) -> CommandResult:
            kind = next(calls, "command")
            started = time.monotonic()
            try:
                result = inner(cmd, timeout)
            except OSError:
                self.command_finished(resource.dest, kind, time.monotonic() - started, 127)
                raise
            self.command_finished(resource.dest, kind, time.monotonic() - started,
                                  result.returncode)
            return result

        return timed

    def command_finished(self, dest: str, kind: str, seconds: float, returncode: int) -> None:
        """check_cmd/reload_cmd of *dest* ended (negative returncode: killed by that signal)."""
        with self._lock:
            self._state.commands[(dest, kind)] = (max(0.0, seconds), returncode)

    def run_finished(self, outcomes: Sequence[Outcome], seconds: float,
                     cache: Optional[CachedSource] = None,
                     error: Optional[BaseException] = None) -> None:
        """Record a run; then write the textfile, if one was asked for.

        The run counts as successful (last success timestamp) when it ended
        without *error* and no resource failed.  IMDS counts as healthy
        unless the run failed for want of IMDS.
        """
        failed = [o for o in outcomes if o.status == "failed"]
        for outcome in outcomes:
            if outcome.status == "written":
                self._changed.labels(outcome.dest).inc()
        for outcome in failed:
            self._failures.labels(outcome.dest).inc()
        result = "error" if error is not None else "failed" if failed else "ok"
        self._runs.labels(result).inc()
        now = self._wall()
        with self._lock:
            state = self._state
            if error is None:
                state.statuses = {o.dest: o.status for o in outcomes}
                state.durations = {d: s for d, s in state.durations.items()
                                   if d in state.statuses}
                state.commands = {k: v for k, v in state.commands.items()
                                  if k[0] in state.statuses}
            state.failed = len(failed)
            state.last_run, state.last_duration, state.last_result = now, seconds, result
            if result == "ok":
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
                "last_run": _iso(state.last_run) if state.last_run else None,
                "last_result": state.last_result,
                "last_success": _iso(state.last_success) if state.last_success else None,
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

    def snapshot_state(self) -> _RunState:
        """A copy of the per-run state, for the collector."""
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

        state = self._metrics.snapshot_state()
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


def _iso(timestamp: float) -> str:
    """RFC 3339 UTC with milliseconds, like the JSON logs."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{whole}.{int(timestamp * 1000) % 1000:03d}Z"


# --- building from flags ------------------------------------------------------

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
        parse_addr(metrics_addr)
    if textfile is not None:
        check_textfile_path(textfile)
    if metrics_addr is None and textfile is None:
        return Recorder()
    try:
        return Metrics(textfile=textfile)
    except MetricsUnavailable as exc:
        flag = "--metrics-addr" if metrics_addr is not None else "--metrics-textfile"
        raise MetricsUnavailable(flag, exc.what, exc.hint) from None


def check_textfile_path(path: str) -> None:
    """A textfile path whose directory exists and that is not a directory (exit 2)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise UsageError("--metrics-textfile", f"{path!r} is not a file path",
                         "give a file such as /var/lib/node_exporter/textfile/imdsrender.prom")
    if not os.path.isdir(directory):
        raise UsageError("--metrics-textfile", f"directory {directory} does not exist",
                         "create it or point at node_exporter's textfile directory")


# --- textfile -----------------------------------------------------------------

def write_textfile(path: str, metrics: Metrics) -> None:
    """Write the exposition to *path* atomically, for node_exporter's textfile collector.

    A temp file in the same directory (hidden and not ending in ``.prom``,
    so the collector never reads it half-written) is written, fsynced,
    made 0644 and renamed over *path*.  Raises MetricsError.
    """
    directory, name = os.path.split(os.path.abspath(path))
    data = metrics.exposition()
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise MetricsError("--metrics-textfile", f"writing {path} failed: {exc.strerror}",
                           "check that the directory exists and is writable") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), 0o644)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as exc:
        _remove_quietly(temp)
        raise MetricsError("--metrics-textfile", f"writing {path} failed: {exc.strerror}",
                           "check free space and that the path is a writable file") from exc
    log.debug("metrics written to %s", path, extra={"path": path})


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


# --- address ------------------------------------------------------------------

def parse_addr(text: str) -> Tuple[str, int]:
    """``HOST:PORT`` -> (host, port) for --metrics-addr.

    ``127.0.0.1:9100``, ``localhost:9100``, ``[::1]:9100``.  An empty host
    (``:9100``) means all IPv4 interfaces, as in confd and every Go
    server; ``[::]:9100`` all IPv6 ones.  Port 0 picks a free port (logged).
    """
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        bracketed = True
    else:
        bracketed = False
    number = ascii_int(port) if sep else None
    valid = (number is not None and number <= 65535
             and (bracketed or ":" not in host) and not any(c in host for c in "[]/ "))
    if not valid or number is None:
        raise UsageError("--metrics-addr", f"expected HOST:PORT, got {text!r}",
                         "e.g. 127.0.0.1:9100, [::1]:9100 or :9100 for all interfaces")
    return host or "0.0.0.0", number


# --- status server ------------------------------------------------------------

class _Check:
    """One IMDS health check result, shared by /ready and /ready/detailed."""

    def __init__(self, healthy: bool, message: str, seconds: float, at: float) -> None:
        self.healthy, self.message, self.seconds, self.at = healthy, message, seconds, at


class StatusServer:
    """``/metrics``, ``/health``, ``/ready`` and ``/ready/detailed`` on one address.

    /health is liveness: the process answers, so 200 "ok".  /ready runs
    *health_check* (a real IMDS request); results are reused for
    *min_interval* seconds and checks never run concurrently, so a probe
    storm cannot turn into an IMDS request storm (IMDS throttles per
    instance, and the renders need it).
    """

    def __init__(self, addr: str, metrics: Metrics, health_check: HealthCheck,
                 details: Optional[Callable[[], Dict[str, Any]]] = None, *,
                 min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.host, requested = parse_addr(addr)
        self.metrics = metrics
        self._health_check = health_check
        self._details = details or metrics.details
        self._min_interval = min_interval
        self._clock, self._wall = clock, wall
        self._check_lock = threading.Lock()
        self._last: Optional[Tuple[float, _Check]] = None
        self._server = _make_server(self.host, requested, self)
        self.port: int = self._server.server_address[1]
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> StatusServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.1},
                                            name=f"imdsrender-status-{self.port}", daemon=True)
            self._thread.start()
            log.info("serving /metrics, /health and /ready on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (idempotent)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def check(self) -> _Check:
        """Run the health check (or reuse a fresh result) and update confd_backend_healthy."""
        with self._check_lock:
            now = self._clock()
            if self._last is not None and now - self._last[0] < self._min_interval:
                return self._last[1]
            try:
                healthy, message = self._health_check()
            except Exception as exc:  # a broken check must answer 503, not kill the thread
                healthy, message = False, f"health check failed: {exc}"
            result = _Check(healthy, message, self._clock() - now, self._wall())
            self._last = (now, result)
        self.metrics.set_healthy(healthy)
        return result

    def detailed(self) -> Dict[str, Any]:
        result = self.check()
        return {"healthy": result.healthy, "message": result.message,
                "duration_ms": round(result.seconds * 1000, 3),
                "checked_at": _iso(result.at), "details": self._details()}


def _make_server(host: str, port: int, status: StatusServer) -> ThreadingHTTPServer:
    from http.server import ThreadingHTTPServer  # only --metrics-addr pays for it

    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(ThreadingHTTPServer):
        address_family = family
        daemon_threads = True
        allow_reuse_address = True

    class Handler(_handler_class()):  # type: ignore[misc]
        owner = status

    try:
        return Server((host, port), Handler)
    except OSError as exc:
        raise UsageError("--metrics-addr", f"cannot listen on {host}:{port}: {exc.strerror}",
                         "choose a free port and an address of this machine") from None


def _handler_class() -> type:
    """The status server's handler class, built on first use: importing
    http.server costs every --onetime run ~2 ms and only --metrics-addr needs it."""
    from http.server import BaseHTTPRequestHandler

    class _Handler(BaseHTTPRequestHandler):
        owner: StatusServer
        server_version = f"imdsrender/{__version__}"
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                metrics = self.owner.metrics
                self._send(200, metrics.exposition(), metrics.content_type)
            elif path == "/health":
                self._send(200, b"ok\n")
            elif path == "/ready":
                result = self.owner.check()
                text = "ok\n" if result.healthy else f"not ready: {result.message}\n"
                self._send(200 if result.healthy else 503, text.encode("utf-8", "replace"))
            elif path == "/ready/detailed":
                report = self.owner.detailed()
                body = (json.dumps(report, indent=2, sort_keys=True) + "\n").encode()
                self._send(200 if report["healthy"] else 503, body, "application/json")
            else:
                self._send(404, b"not found: try /metrics, /health, /ready, /ready/detailed\n")

        def _send(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
                  ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - inherited name
            """Access log to the debug log, never raw stderr (which would break JSON logs)."""
            log.debug("status server: %s " + format, self.address_string(), *args)

    return _Handler


# --- IMDS health check --------------------------------------------------------

def make_health_check(settings: ImdsSettings, endpoint: Optional[str] = None,
                      data: Optional[str] = None, timeout: float = 1.0) -> HealthCheck:
    """A check that asks IMDS for a fresh token: one PUT, no retries, *timeout* bounded.

    A fresh client per check (over one shared connection pool) so the
    client's cached token cannot hide an IMDS that stopped answering.
    With ``--data`` there is no IMDS to check: always healthy.
    """
    if data:
        return lambda: (True, f"rendering from {data} (--data): no IMDS to check")
    import dataclasses

    # boot_wait is the token request's overall deadline, so it cannot be 0.
    bound = min(settings.timeout, timeout)
    quick = dataclasses.replace(settings, timeout=bound, retries=0, boot_wait=bound)
    pools: List[Any] = []

    def check() -> Tuple[bool, str]:
        from .imds.client import ImdsClient

        if not pools:
            import urllib3

            pools.append(urllib3.PoolManager(
                maxsize=1, block=False, retries=False,
                timeout=urllib3.Timeout(connect=quick.timeout, read=quick.timeout)))
        try:
            client = ImdsClient(quick, endpoint=endpoint, pool=pools[0], concurrency=1)
            token = client.current_token()
        except Error as exc:
            return False, str(exc)
        return True, ("IMDS answered (IMDSv1 fallback)" if token is None
                      else "IMDS issued a token")

    return check


def start_status_server(addr: str, recorder: Recorder, settings: ImdsSettings,
                        endpoint: Optional[str] = None,
                        data: Optional[str] = None, *,
                        min_interval: float = 1.0) -> StatusServer:
    """The interval-mode server, started: what the CLI calls for --metrics-addr."""
    if not isinstance(recorder, Metrics):
        raise UsageError("--metrics-addr", "metrics are not enabled", EXTRA_HINT)
    check = make_health_check(settings, endpoint, data)
    return StatusServer(addr, recorder, check, min_interval=min_interval).start()
