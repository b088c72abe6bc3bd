"""The status server of interval mode: ``/metrics``, ``/health``, ``/ready``, ``/ready/detailed``.

``--metrics-addr HOST:PORT``: /health is the cached IMDS check (200 or
503, as confd's "basic IMDS availability check", so probes written for
confd keep working); /ready is that check plus the polls' own state (503
while a poll is stuck past its deadline or after a failed poll);
/ready/detailed the same as JSON with cache and per-resource status.  http.server
is imported on first use only: every --onetime run would pay ~2 ms for it.

Served by :class:`imdsrender.serving.BoundedServer`: a flood of idle or
half-sent connections costs at most ``max_connections`` threads, each closed
after ``timeout`` seconds without a complete request, and never the poll
loop's threads (a plain ThreadingHTTPServer pinned one thread per connection
until a pids limit killed the renders).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

from .. import __version__
from ..errors import UsageError
from ..imds.health import HealthCheck, make_health_check
from ..quantities import ascii_int
from .recorder import EXTRA_HINT, Recorder
from .registry import Metrics, iso_time

if TYPE_CHECKING:  # pragma: no cover
    from ..model import ImdsSettings
    from ..serving import BoundedServer

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 16  # scrapers and probes: a handful at once
CONNECTION_TIMEOUT = 5.0  # seconds to deliver a request head, or the connection closes


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

    /health and /ready run *health_check* (a real IMDS request, as confd's
    /health does); results are reused for
    *min_interval* seconds and checks never run concurrently, so a probe
    storm cannot turn into an IMDS request storm (IMDS throttles per
    instance, and the renders need it).
    """

    def __init__(self, addr: str, metrics: Metrics, health_check: HealthCheck,
                 details: Optional[Callable[[], Dict[str, Any]]] = None, *,
                 min_interval: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, max_connections: int = MAX_CONNECTIONS,
                 timeout: float = CONNECTION_TIMEOUT) -> None:
        self.host, requested = parse_addr(addr)
        self.metrics = metrics
        self._health_check = health_check
        self._details = details or metrics.details
        self._min_interval = min_interval
        self._clock, self._wall = clock, wall
        self._check_lock = threading.Lock()
        self._last: Optional[Tuple[float, _Check]] = None
        self._server = _make_server(self.host, requested, self, max_connections, timeout)
        self.port: int = self._server.port
        self._started = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> StatusServer:
        if not self._started:
            self._server.start(f"imdsrender-status-{self.port}")
            self._started = True
            log.info("serving /metrics, /health and /ready on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and release the port (idempotent)."""
        self._server.stop()

    def __enter__(self) -> StatusServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def check(self) -> _Check:
        """The IMDS health check (a fresh result is reused), then the polls' own state.

        confd_backend_healthy follows IMDS only; /ready also fails while a
        poll is stuck past its deadline or when the last poll failed.
        """
        result = self.imds_check()
        problem = self.metrics.not_ready()
        return _Check(False, problem, result.seconds, result.at) \
            if result.healthy and problem else result

    def imds_check(self) -> _Check:
        """The cached IMDS health check alone: what /health answers, as confd's does."""
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
                "checked_at": iso_time(result.at), "details": self._details()}


def _make_server(host: str, port: int, status: StatusServer, max_connections: int,
                 timeout: float) -> BoundedServer:
    from ..serving import BoundedServer  # only --metrics-addr pays for http.server

    class Server(BoundedServer):
        allow_reuse_address = True

    class Handler(_handler_class()):  # type: ignore[misc]
        owner = status

    try:
        return Server((host, port), Handler, max_connections=max_connections, timeout=timeout,
                      logger=log)
    except OSError as exc:
        raise UsageError("--metrics-addr", f"cannot listen on {host}:{port}: {exc.strerror}",
                         "choose a free port and an address of this machine") from None


def _handler_class() -> type:
    """The status server's handler class, built on first use: importing
    http.server costs every --onetime run ~2 ms and only --metrics-addr needs it."""
    from ..serving import BoundedHandler

    class _Handler(BoundedHandler):
        owner: StatusServer
        server_version = f"imdsrender/{__version__}"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if path == "/metrics":
                metrics = self.owner.metrics
                self._send(200, metrics.exposition(), metrics.content_type)
            elif path in ("/health", "/ready"):
                # /health as confd's: IMDS availability only; /ready also the polls' state
                result = self.owner.check() if path == "/ready" else self.owner.imds_check()
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


def start_status_server(addr: str, recorder: Recorder, settings: ImdsSettings,
                        endpoint: Optional[str] = None,
                        data: Optional[str] = None, *,
                        min_interval: float = 1.0) -> StatusServer:
    """The interval-mode server, started: what the CLI calls for --metrics-addr."""
    if not isinstance(recorder, Metrics):
        raise UsageError("--metrics-addr", "metrics are not enabled", EXTRA_HINT)
    check = make_health_check(settings, endpoint, data)
    return StatusServer(addr, recorder, check, min_interval=min_interval).start()
