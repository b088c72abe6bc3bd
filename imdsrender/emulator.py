"""An IMDSv2 emulator for tests, benchmarks, ``imdsrender demo`` and ``imdsrender emulator``.

It behaves like the real service where a client can tell the difference:
token PUT with TTL bounds and ``X-Forwarded-For`` refusal, 401 without a
valid token, listings with trailing ``/`` for sub-directories, the real
service's HTML error pages, HTTP/1.1 keep-alive.  On top of that it can add
latency and inject faults (status codes, delays, resets, dripping or short
bodies, connection closes, HTTP/1.0 answers) and it counts every request, so
tests and benchmarks can assert exactly what a run asked for.

Each response (status line, headers and body) is written with one
``sendall`` on a ``TCP_NODELAY`` socket: http.server's usual split writes
make keep-alive clients stall on delayed ACKs (~40 ms a request).

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

import base64
import contextlib
import email.utils
import fnmatch
import http
import io
import logging
import secrets
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import (
    TYPE_CHECKING,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Set,
    Tuple,
    Union,
)
from urllib.parse import unquote

from .errors import UsageError
from .fixture import (
    canonical_key,
    canonical_values,
    checked_tree,
    default_fixture,
    load_fixture,
    to_bytes,
)
from .imds.wire import MAX_TTL, TOKEN_HEADER, TOKEN_PATH, TTL_HEADER
from .keys import ROOTS
from .quantities import ascii_int

if TYPE_CHECKING:  # pragma: no cover
    pass

log = logging.getLogger(__name__)

SHORT_BODY_EXTRA = 16   # bytes a short_body fault claims beyond what it sends
_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_REQUEST_BODY = 1 << 20
_TOKEN_PURGE_AT = 10000
_ERROR_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{code} - {phrase}</title>
 </head>
 <body>
  <h1>{code} - {phrase}</h1>
 </body>
</html>
"""

Value = Union[str, bytes, None]


# --------------------------------------------------------------------------
# Requests, answers, faults


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it.

    ``path`` is the raw request target (query included); ``status`` is what
    was answered, 0 when a fault reset the connection instead of answering;
    ``started`` is the emulator clock when the request was read.
    """

    method: str
    path: str
    headers: Dict[str, str] = field(hash=False)
    status: int
    started: float

    def header(self, name: str) -> Optional[str]:
        """Header value by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class _Request:
    method: str
    target: str
    version: str
    headers: Dict[str, str]     # as sent
    lower: Dict[str, str]       # lower-cased names

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def wants_close(self) -> bool:
        connection = self.lower.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection != "keep-alive"
        return connection == "close"


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()
    content_type: str = "text/plain"

    def with_headers(self, extra: Mapping[str, str]) -> _Answer:
        """Extra headers replace same-named ones (case-insensitively)."""
        names = {k.lower() for k in extra}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in names)
        return replace(self, headers=kept + tuple(extra.items()))


@dataclass(frozen=True)
class _Fault:
    """One injected misbehaviour; see ``Emulator.add_fault``."""

    pattern: str
    method: str
    status: Optional[int]
    headers: Tuple[Tuple[str, str], ...]
    body: Optional[bytes]
    delay: float
    reset: bool
    drip: Optional[float]
    short_body: bool
    close: bool
    http10: bool

    def matches(self, method: str, path: str) -> bool:
        return (fnmatch.fnmatchcase(method, self.method)
                and (path == self.pattern or fnmatch.fnmatchcase(path, self.pattern)))

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None

    @property
    def silent_reset(self) -> bool:
        """Reset before answering: nothing to cut mid-body."""
        return self.reset and self.status is None and self.body is None


class _ArmedFault:
    """A fault with its remaining use count (None: forever); guarded by the emulator lock."""

    def __init__(self, fault: _Fault, times: Optional[int]) -> None:
        self.fault = fault
        self.remaining = times


@dataclass(frozen=True)
class _Reply:
    """What the handler must do: wait, then answer (or reset) as the fault says."""

    answer: Optional[_Answer]
    wait: float
    fault: Optional[_Fault]


def _error(status: int, headers: Tuple[Tuple[str, str], ...] = ()) -> _Answer:
    return _Answer(status, _error_page(status), headers, "text/html")


def _error_page(status: int) -> bytes:
    return _ERROR_PAGE.format(code=status, phrase=_phrase(status)).encode("ascii")


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _parse_ttl(raw: Optional[str]) -> Optional[int]:
    """A TTL header value the real service accepts (1..21600), else None."""
    if raw is None:
        return None
    ttl = ascii_int(raw)
    return ttl if ttl is not None and 1 <= ttl <= MAX_TTL else None


def _normalize_pattern(pattern: str) -> str:
    """Let ``/meta-data/x`` and ``/api/token`` stand for their ``/latest`` paths."""
    if pattern.startswith(tuple(ROOTS) + ("/api/",)):
        return "/latest" + pattern
    return pattern


# --------------------------------------------------------------------------
# The emulator


class Emulator:
    """IMDSv2 on loopback.  Thread-safe; use as a context manager or start()/stop().

    ``data`` maps fixture keys to str/bytes (``None``/``""`` for a declared
    directory); None means the default fixture.  ``clock`` drives token
    expiry and ``RequestRecord.started``; ``sleep`` is used for latency,
    fault delays and dripping (inject both in tests).

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
                 sleep: Callable[[float], None] = time.sleep) -> None:
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
        self.requests: List[RequestRecord] = []
        self.max_in_flight = 0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens: Dict[str, float] = {}
        self._faults: List[_ArmedFault] = []
        self._in_flight = 0
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle

    def start(self) -> Emulator:
        """Bind and serve in a daemon thread; ``url`` and ``port`` are then set."""
        if self._server is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        server = _Server((self.host, self.port), self, family)
        self._server = server
        self.port = server.server_address[1]
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=f"imds-emulator-{self.port}", daemon=True)
        self._thread.start()
        log.debug("IMDS emulator serving on %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections (handlers are daemon threads)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._shutdown(server)
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @staticmethod
    def _shutdown(server: _Server) -> None:
        """server.shutdown(), without waiting out the accept loop's poll interval.

        The loop only sees the stop flag when select() returns, so connect
        until it has: tests start and stop hundreds of emulators.
        """
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError), socket.socket(server.address_family) as sock:
                sock.settimeout(0.1)
                sock.connect(server.server_address[:2])
            stopper.join(0.01)

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
                  times: Optional[int] = None) -> None:
        """Make requests matching *path* (exact or fnmatch glob, where ``*`` also
        matches ``/`` and the empty string) and *method* misbehave.

        ``path`` is matched against the request path without query string;
        ``/meta-data/...``, ``/dynamic/...``, ``/user-data`` and ``/api/...``
        get ``/latest`` prepended.  ``method`` is a glob too (``"*"`` for all).
        The first fault added that matches wins; ``times`` limits it to the
        first N matching requests (None: forever).

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
        - ``drip`` sends the head at once, then the body one byte every
          ``drip`` seconds.
        - ``short_body`` declares a Content-Length 16 bytes larger than the
          body it sends, then closes.
        - ``close`` answers with ``Connection: close`` and closes.
        - ``http10`` answers as ``HTTP/1.0`` with ``Connection: close`` and closes.
        """
        fault = _Fault(pattern=_normalize_pattern(path), method=method.upper(), status=status,
                       headers=tuple((headers or {}).items()), body=body, delay=delay,
                       reset=reset, drip=drip, short_body=short_body, close=close, http10=http10)
        with self._lock:
            self._faults.append(_ArmedFault(fault, times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes invalid (as after an instance stop/start)."""
        with self._lock:
            self._tokens.clear()

    # -- counters

    def count(self, method: Optional[str] = None, path: Optional[str] = None) -> int:
        """Requests seen with that method and path (exact target or glob; None: any)."""
        pattern = None if path is None else _normalize_pattern(path)
        wanted = None if method is None else method.upper()
        with self._lock:
            records = list(self.requests)
        return sum(1 for r in records
                   if (wanted is None or r.method == wanted)
                   and (pattern is None or r.path == pattern
                        or fnmatch.fnmatchcase(r.path, pattern)))

    def reset_counters(self) -> None:
        """Forget the request log; ``max_in_flight`` restarts from what is in flight now."""
        with self._lock:
            del self.requests[:]
            self.max_in_flight = self._in_flight

    @property
    def active_connections(self) -> int:
        """Connections currently open (idle keep-alive ones included)."""
        server = self._server
        return 0 if server is None else server.active_count()

    # -- request handling (called from handler threads)

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handle(self, request: _Request) -> _Reply:
        """Decide the answer and log the request before any waiting.

        Logging first means a client that gave up (timeout) still finds its
        request counted when it looks.
        """
        started = self._clock()
        fault = self._take_fault(request)
        answer = self._answer(request, fault)
        status = 0 if answer is None else answer.status
        record = RequestRecord(request.method, request.target, dict(request.headers), status,
                               started)
        with self._lock:
            self.requests.append(record)
        wait = self.latency_ms / 1000.0 + (fault.delay if fault else 0.0)
        return _Reply(answer, wait, fault)

    def _take_fault(self, request: _Request) -> Optional[_Fault]:
        path = request.path
        with self._lock:
            for armed in self._faults:
                if armed.fault.matches(request.method, path):
                    if armed.remaining is not None:
                        armed.remaining -= 1
                        if armed.remaining <= 0:
                            self._faults.remove(armed)
                    return armed.fault
        return None

    def _answer(self, request: _Request, fault: Optional[_Fault]) -> Optional[_Answer]:
        if fault is None:
            return self._normal(request)
        if fault.silent_reset:
            return None
        if fault.replaces_answer:
            assert fault.status is not None
            body = fault.body if fault.body is not None else (
                _error_page(fault.status) if fault.status >= 400 else b"")
            kind = "text/html" if fault.body is None and fault.status >= 400 else "text/plain"
            answer = _Answer(fault.status, body, (), kind)
        else:
            answer = self._normal(request)
            if fault.body is not None:
                answer = replace(answer, body=fault.body)
        return answer.with_headers(dict(fault.headers)) if fault.headers else answer

    def _normal(self, request: _Request) -> _Answer:
        """What the real service answers."""
        path = unquote(request.path)
        if path == TOKEN_PATH:
            if request.method != "PUT":
                return _error(405, (("Allow", "PUT"),))
            return self._issue_token(request)
        if request.method not in ("GET", "HEAD"):
            return _error(405, (("Allow", "GET, HEAD"),))
        remaining = self._check_token(request)
        if remaining is not None and remaining < 0:
            return _error(401)
        body = self._lookup(path)
        if body is None:
            return _error(404)
        headers = () if remaining is None else ((TTL_HEADER, str(remaining)),)
        return _Answer(200, body, headers)

    def _lookup(self, path: str) -> Optional[bytes]:
        if path == "/":
            return b"latest"
        if path == "/latest" or path.startswith("/latest/"):
            return self._tree.lookup(path[len("/latest"):] or "/")
        return None

    def _issue_token(self, request: _Request) -> _Answer:
        if "x-forwarded-for" in request.lower:
            return _error(403)
        ttl = _parse_ttl(request.lower.get(TTL_HEADER.lower()))
        if ttl is None:
            return _error(400)
        granted = min(ttl, self.max_ttl)
        token = base64.b64encode(secrets.token_bytes(42)).decode("ascii")
        now = self._clock()
        with self._lock:
            if len(self._tokens) >= _TOKEN_PURGE_AT:
                self._tokens = {t: e for t, e in self._tokens.items() if e > now}
            self._tokens[token] = now + granted
        headers = () if self.omit_ttl_header else ((TTL_HEADER, str(granted)),)
        return _Answer(200, token.encode("ascii"), headers)

    def _check_token(self, request: _Request) -> Optional[int]:
        """Remaining whole seconds of the request's token; None: no token; -1: refuse.

        No token is refused unless v1 is allowed; a bad token always is.
        """
        token = request.lower.get(TOKEN_HEADER.lower())
        if token is None:
            return None if self.allow_v1 else -1
        with self._lock:
            expiry = self._tokens.get(token)
        now = self._clock()
        if expiry is None or now >= expiry:
            return -1
        return int(expiry - now)


# --------------------------------------------------------------------------
# HTTP plumbing


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _read_request(rfile: io.BufferedIOBase) -> Optional[_Request]:
    """Parse one request head (and drain its body); None at end of stream.

    A small parser of our own: http.server's goes through the email package
    and costs more than the rest of an answer.
    """
    line = rfile.readline(_MAX_LINE + 1)
    if line in (b"\r\n", b"\n"):        # tolerate one stray CRLF between requests
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise _BadRequest(414)
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400)
    headers: Dict[str, str] = {}
    lower: Dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        raw = rfile.readline(_MAX_LINE + 1)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise _BadRequest(400)
        headers[name.strip()] = value.strip()
        lower[name.strip().lower()] = value.strip()
    else:
        raise _BadRequest(431)
    _drain_body(rfile, lower)
    return _Request(parts[0].upper(), parts[1], parts[2], headers, lower)


def _drain_body(rfile: io.BufferedIOBase, lower: Mapping[str, str]) -> None:
    """Read a request body we ignore so the next request on the connection parses."""
    if "transfer-encoding" in lower:
        raise _BadRequest(411)
    length = ascii_int(lower.get("content-length", "0") or "0")
    if length is None:
        raise _BadRequest(400)
    if length > _MAX_REQUEST_BODY:
        raise _BadRequest(413)
    if length:
        rfile.read(length)


def _head(answer: _Answer, *, length: int, close: bool, http10: bool) -> bytes:
    """Status line and headers, ending with the blank line."""
    version = "HTTP/1.0" if http10 else "HTTP/1.1"
    lines = [f"{version} {answer.status} {_phrase(answer.status)}"]
    names = {k.lower() for k, _ in answer.headers}
    defaults = (
        ("Content-Type", answer.content_type),
        ("Accept-Ranges", "none"),
        ("Content-Length", str(length)),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Server", "EC2ws"),
        ("Connection", "close" if close else "keep-alive"),
    )
    lines.extend(f"{name}: {value}" for name, value in defaults if name.lower() not in names)
    lines.extend(f"{name}: {value}" for name, value in answer.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Handler(BaseHTTPRequestHandler):
    """Reads requests and writes each answer in one sendall (see module docstring)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # TCP_NODELAY on every accepted socket
    server: _Server
    _in_flight = False

    def handle_one_request(self) -> None:
        self.close_connection = True
        try:
            request = _read_request(self.rfile)
        except _BadRequest as exc:
            answer = _error(exc.status)
            self._send(_head(answer, length=len(answer.body), close=True, http10=False)
                       + answer.body)
            return
        except OSError:
            return
        if request is None:
            return
        emulator = self.server.emulator
        emulator._begin()
        self._in_flight = True
        try:
            self._deliver(request, emulator._handle(request), emulator._sleep)
        except OSError:
            self.close_connection = True
        finally:
            self._finished()

    def _finished(self) -> None:
        """Leave the in-flight count once, before the client can see the last byte.

        Otherwise a client reading its answer could still find its own
        request counted as in flight.
        """
        if self._in_flight:
            self._in_flight = False
            self.server.emulator._end()

    def _deliver(self, request: _Request, reply: _Reply,
                 sleep: Callable[[float], None]) -> None:
        if reply.wait > 0:
            sleep(reply.wait)
        fault = reply.fault
        if reply.answer is None:
            self._finished()
            self._abort()
            return
        body = reply.answer.body
        announced = request.wants_close() or bool(fault and (fault.close or fault.http10))
        # short bodies and resets look like a crash mid-answer: not announced
        closing = announced or bool(fault and (fault.short_body or fault.reset))
        length = len(body) + (SHORT_BODY_EXTRA if fault and fault.short_body else 0)
        head = _head(reply.answer, length=length, close=announced,
                     http10=bool(fault and fault.http10))
        if request.method == "HEAD":
            body = b""
        if fault is not None and fault.reset:
            body = body[:len(body) // 2]
        if fault is not None and fault.drip is not None:
            self._send(head)
            for i in range(len(body)):
                sleep(fault.drip)
                if i == len(body) - 1:
                    self._finished()
                self._send(body[i:i + 1])
            self._finished()
        else:
            self._finished()
            self._send(head + body)
        if fault is not None and fault.reset:
            self._abort()
        self.close_connection = closing

    def _send(self, data: bytes) -> None:
        self.connection.sendall(data)

    def _abort(self) -> None:
        """Close with a TCP RST: linger 0, and no FIN from a shutdown() first."""
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.rfile.close()          # drop the makefile reference so close() is real
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """No stderr access log."""


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections (for max_connections and stop)."""

    daemon_threads = True
    block_on_close = False          # stop() must not wait for idle keep-alive clients
    request_queue_size = 128

    def __init__(self, address: Tuple[str, int], emulator: Emulator, family: int) -> None:
        self.address_family = family
        self.emulator = emulator
        self._active: Set[socket.socket] = set()
        self._active_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn() lookup, which can stall on DNS."""
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = self.server_address[1]

    def verify_request(self, request: object, client_address: object) -> bool:
        limit = self.emulator.max_connections
        if limit is not None and self.active_count() >= limit:
            log.debug("refusing connection from %s: %d open", client_address, limit)
            return False
        return True

    def process_request(self, request: object, client_address: object) -> None:
        assert isinstance(request, socket.socket)
        with self._active_lock:
            self._active.add(request)
        super().process_request(request, client_address)  # type: ignore[arg-type]

    def process_request_thread(self, request: object, client_address: object) -> None:
        try:
            super().process_request_thread(request, client_address)  # type: ignore[arg-type]
        finally:
            with self._active_lock:
                self._active.discard(request)  # type: ignore[arg-type]

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive sockets."""
        with self._active_lock:
            active = list(self._active)
        for sock in active:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        log.warning("emulator error serving %s", client_address, exc_info=True)


def serve(port: int, data: Optional[str], latency_ms: float,
          host: str = "127.0.0.1") -> Emulator:
    """A started emulator for ``imdsrender emulator``: fixture file or the default one."""
    values = load_fixture(data) if data else default_fixture()
    emulator = Emulator(values, host=host, port=port, latency_ms=latency_ms)
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(f"--port {port}", f"cannot listen on {host}:{port}: "
                                           f"{exc.strerror or exc}",
                         "choose a free port (0 picks one)") from exc
    log.info("IMDS emulator listening on %s", emulator.url)
    return emulator
