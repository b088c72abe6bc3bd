"""The Emulator: fixture data, tokens, faults and a scenario behind one server.

It behaves like the real service where a client can tell the difference:
token PUT with TTL bounds and ``X-Forwarded-For`` refusal, 401 without a
valid token, listings with trailing ``/`` for sub-directories, the real
service's HTML error pages, HTTP/1.1 keep-alive.  On top of that it can add
latency, inject faults (status codes, delays, resets, dripping or short
bodies, connection closes, HTTP/1.0 answers, held answers) and play a named
scenario, and it counts every request, so tests and benchmarks can assert
exactly what a run asked for.

Serving rules
-------------
- A directory answers with its sorted child names, one a line, sub-directories
  with a trailing ``/``, no trailing newline, with or without a ``/`` at the
  end of the URL.  A leaf answers with or without a trailing ``/`` too.
- ``GET /latest/`` lists ``dynamic/``, ``meta-data/`` and ``user-data`` (when
  present); ``GET /`` answers ``latest``.  A query string is ignored.
- GETs with a valid token carry the token's remaining lifetime in the
  ``X-aws-ec2-metadata-token-ttl-seconds`` header, as the real service does.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Union
from urllib.parse import unquote

from ..fixture import canonical_key, canonical_values, checked_tree, default_fixture, to_bytes
from ..imds.wire import MAX_TTL
from . import service
from .faults import Fault, FaultTable, normalize_pattern
from .handler import Server
from .protocol import Answer, Request
from .records import RequestLog, RequestRecord
from .scenarios import Scenario, make_scenario
from .service import Policy
from .tokens import TokenStore

log = logging.getLogger("imdsrender.emulator")

Value = Union[str, bytes, None]
AccessLog = Callable[[str], None]


@dataclass(frozen=True)
class Reply:
    """What the handler must do: wait, then answer (or reset, or hold) as the fault says."""

    answer: Optional[Answer]
    wait: float
    fault: Optional[Fault]


class Emulator:
    """IMDSv2 on loopback.  Thread-safe; use as a context manager or start()/stop().

    ``data`` maps fixture keys to str/bytes (``None``/``""`` for a declared
    directory); None means the default fixture.  ``clock`` drives token
    expiry, throttling windows and ``RequestRecord.started``; ``sleep`` is
    used for latency, fault delays and dripping (inject both in tests).
    ``scenario`` is a name from ``SCENARIOS`` or a ``Scenario``; ``seed``
    makes a named scenario's random choices repeatable.  ``access_log``
    receives one line per request (method, path, status, ms; never a token).

    Bounds (see :mod:`imdsrender.serving`): at most ``max_threads``
    connections at once, connections idle or half-sent for
    ``connection_timeout`` seconds are closed, and a held request (the
    ``hop-limit`` scenario, ``hold`` faults) waits at most ``hold_seconds``.

    Attributes tests may set at any time: ``latency_ms``, ``allow_v1``,
    ``max_ttl``, ``omit_ttl_header`` (token PUT answers without the TTL
    header) and ``max_connections`` (connections beyond N open at once are
    closed as soon as accepted; None: no limit).

    Counters: ``requests`` (every answered or reset request, logged before
    any latency so a client that timed out still finds it), ``count()``,
    ``max_in_flight`` (a request leaves the in-flight count just before its
    last byte is sent) and ``active_connections``.
    """

    def __init__(self, data: Optional[Mapping[str, Value]] = None, *, host: str = "127.0.0.1",
                 port: int = 0, latency_ms: float = 0.0, allow_v1: bool = False,
                 max_ttl: int = MAX_TTL, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 scenario: Union[str, Scenario, None] = None, seed: int = 0,
                 access_log: Optional[AccessLog] = None, max_threads: int = 512,
                 connection_timeout: float = 60.0, hold_seconds: float = 30.0) -> None:
        values = default_fixture() if data is None else canonical_values(data.items(), "<data>")
        self._values: Dict[str, bytes] = values
        self._tree = checked_tree(values, "<data>")
        self.host = host
        self.port = port
        self.url = ""
        self.latency_ms = latency_ms
        self.allow_v1 = allow_v1
        self.max_ttl = max_ttl
        self.omit_ttl_header = False
        self.max_connections: Optional[int] = None
        self.max_threads = max_threads
        self.connection_timeout = connection_timeout
        self.hold_seconds = hold_seconds
        self._clock = clock
        self._sleep = sleep
        self._access_log = access_log
        self._lock = threading.Lock()
        self._tokens = TokenStore(clock)
        self._faults = FaultTable()
        self._log = RequestLog()
        self._stopping = threading.Event()
        self._server: Optional[Server] = None
        self.scenario = make_scenario(scenario, seed) if isinstance(scenario, str) else scenario
        if self.scenario is not None:
            self.scenario.setup(self)

    # -- lifecycle

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; ``url`` and ``port`` are then set."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = Server((self.host, self.port), self, max_threads=self.max_threads,
                        timeout=self.connection_timeout)
        self._server = server
        self.port = server.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"http://{host}:{self.port}"
        server.start(f"imds-emulator-{self.port}")
        log.debug("IMDS emulator serving on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving, release held requests and drop open keep-alive connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- data

    @property
    def values(self) -> Dict[str, bytes]:
        """A copy of the served data in canonical fixture form."""
        with self._lock:
            return dict(self._values)

    def set_value(self, path: str, value: Value) -> None:
        """Change one value between polls.

        None deletes the key (a leaf, or a declared directory); directories
        that only it implied disappear with it.
        """
        key = canonical_key(path, "set_value")
        with self._lock:
            values = dict(self._values)
            if value is None:
                values.pop(key, None)
            else:
                values[key] = to_bytes(key, path, value, "set_value")
            self._tree = checked_tree(values, "set_value")
            self._values = values

    # -- faults and tokens

    def add_fault(self, path: str, *, method: str = "GET", status: Optional[int] = None,
                  headers: Optional[Mapping[str, str]] = None, body: Optional[bytes] = None,
                  delay: float = 0.0, reset: bool = False, drip: Optional[float] = None,
                  short_body: bool = False, close: bool = False, http10: bool = False,
                  hold: bool = False, times: Optional[int] = None) -> None:
        """Make requests matching *path* (exact or fnmatch glob, where ``*`` also
        matches ``/`` and the empty string) and *method* misbehave.

        ``path`` is matched against the request path without query string;
        ``/meta-data/...``, ``/dynamic/...``, ``/user-data`` and ``/api/...``
        get ``/latest`` prepended.  ``method`` is a glob too (``"*"`` for all).
        The first fault added that matches wins (a scenario's come first);
        ``times`` limits it to the first N matching requests (None: forever).

        - ``status`` replaces the normal answer (no token is issued or
          checked): its body is ``body`` or the service's HTML error page
          (empty for status < 400).  Without ``status`` the normal answer is
          computed and ``body``/``headers`` only override parts of it.
        - ``headers`` replace same-named headers (e.g. the granted TTL).
        - ``delay`` seconds are slept before answering (after the latency).
        - ``reset``: alone (no ``status``, no ``body``) the connection is reset
          (SO_LINGER 0, a TCP RST) instead of answering; with ``status`` or
          ``body`` the headers and the first half of the body are sent, then
          the connection is reset mid-body.
        - ``hold``: alone, nothing is ever answered: the request is held
          for ``hold_seconds`` (or until stop()), then the connection closed.
        - ``drip`` sends the head at once, then the body one byte every
          ``drip`` seconds.
        - ``short_body`` declares a Content-Length 16 bytes larger than the
          body it sends, then closes.
        - ``close`` answers with ``Connection: close`` and closes.
        - ``http10`` answers as ``HTTP/1.0`` with ``Connection: close`` and closes.
        """
        fault = Fault(pattern=normalize_pattern(path), method=method.upper(), status=status,
                      headers=tuple((headers or {}).items()), body=body, delay=delay,
                      reset=reset, drip=drip, short_body=short_body, close=close,
                      http10=http10, hold=hold)
        self._faults.add(fault, times)

    def clear_faults(self) -> None:
        self._faults.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes invalid (as after an instance stop/start)."""
        self._tokens.revoke()

    # -- counters

    @property
    def requests(self) -> List[RequestRecord]:
        """Every request seen, in order (answered, reset or held)."""
        return self._log.requests

    @property
    def max_in_flight(self) -> int:
        return self._log.max_in_flight

    def count(self, method: Optional[str] = None, path: Optional[str] = None) -> int:
        """Requests seen with that method and path (exact target or glob; None: any)."""
        return self._log.count(method, path)

    def reset_counters(self) -> None:
        """Forget the request log; ``max_in_flight`` restarts from what is in flight now."""
        self._log.reset()

    @property
    def active_connections(self) -> int:
        """Connections currently open (idle keep-alive ones included)."""
        server = self._server
        return 0 if server is None else server.active_count()

    # -- request handling (called from handler threads)

    def _begin(self) -> None:
        self._log.begin()

    def _end(self) -> None:
        self._log.end()

    def _hold(self) -> None:
        """Wait out a held request: bounded, and cut short by stop()."""
        self._stopping.wait(self.hold_seconds)

    def _log_access(self, request: Request, reply: Reply, seconds: float) -> None:
        if self._access_log is None:
            return
        status = "-" if reply.answer is None else str(reply.answer.status)
        path = request.target.encode("unicode_escape").decode("ascii")
        self._access_log(f"{request.method} {path} {status} {seconds * 1000:.1f}ms")

    def _handle(self, request: Request) -> Reply:
        """Decide the answer and log the request before any waiting.

        Logging first means a client that gave up (timeout) still finds its
        request counted when it looks.
        """
        started = self._clock()
        fault = self._take_fault(request, started)
        answer = self._answer(request, fault)
        status = 0 if answer is None else answer.status
        record = RequestRecord(request.method, request.target, dict(request.headers), status,
                               started)
        self._log.add(record)
        wait = self.latency_ms / 1000.0 + (fault.delay if fault else 0.0)
        return Reply(answer, wait, fault)

    def _take_fault(self, request: Request, now: float) -> Optional[Fault]:
        if self.scenario is not None:
            fault = self.scenario.fault(request.method, unquote(request.path), now)
            if fault is not None:
                return fault
        return self._faults.take(request.method, request.path)

    def _answer(self, request: Request, fault: Optional[Fault]) -> Optional[Answer]:
        if fault is None:
            return self._normal(request)
        return fault.apply(lambda: self._normal(request))

    def _normal(self, request: Request) -> Answer:
        """What the real service answers."""
        policy = Policy(self.allow_v1, self.max_ttl, self.omit_ttl_header)
        return service.answer(request, self._tree, self._tokens, policy)
