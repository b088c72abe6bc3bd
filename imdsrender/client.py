"""IMDS transport: one urllib3 pool, the IMDSv2 token, retries and timeouts.

Everything that touches the network lives here.  urllib3 is imported only
when a client is built, so commands that never talk to IMDS (``--version``,
``check``) do not pay for it.

The rules are DESIGN.md's "IMDS client rules"; the short version:
IMDSv2 only unless told otherwise, every request bounded (retries, a
per-request deadline, body caps), no redirects, no proxies, and an error that
says which path failed and what to do.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Tuple

from .errors import UsageError
from .imds.wire import IPV4_ENDPOINT, IPV6_ENDPOINT, TOKEN_HEADER, TOKEN_PATH, TTL_HEADER
from .keys import is_dir
from .model import ImdsSettings
from .quantities import ascii_int
from .source import NotFound, SourceError, SourceUnavailable

if TYPE_CHECKING:  # pragma: no cover
    import urllib3

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


# The transport raises the Source errors, so the fetcher can catch them
# without importing this module.
ImdsError = SourceError
ImdsUnavailable = SourceUnavailable


class ImdsConfigError(UsageError):
    """IMDS refused our own request as malformed (token PUT 400): exit 2."""


class _Retryable(Exception):
    """One attempt failed in a way worth trying again (internal)."""

    def __init__(self, reason: str, retry_after: Optional[str] = None,
                 connect: bool = False, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.connect = connect
        self.timeout = timeout


# --- endpoint -------------------------------------------------------------

def metadata_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """``AWS_EC2_METADATA_DISABLED=true``: the SDKs' off switch, honoured too."""
    return environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true"


def resolve_endpoint(settings: ImdsSettings, flag: Optional[str] = None,
                     environ: Mapping[str, str] = os.environ) -> str:
    """flag > IMDS_ENDPOINT > AWS_EC2_METADATA_SERVICE_ENDPOINT > file > mode."""
    for candidate in (flag, environ.get("IMDS_ENDPOINT"),
                      environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"), settings.endpoint):
        if candidate:
            return candidate.rstrip("/")
    mode = environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") or settings.endpoint_mode
    if mode.strip().lower() == "ipv6":
        return IPV6_ENDPOINT
    if mode.strip().lower() == "ipv4":
        return IPV4_ENDPOINT
    raise ImdsConfigError("endpoint_mode", f"unknown endpoint mode {mode!r}", "use ipv4 or ipv6")


# --- retry policy ---------------------------------------------------------

def parse_retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date).

    Garbage and negative values mean "no advice" (None), never a crash or a
    wait of minus ten seconds.
    """
    if not value:
        return None
    value = value.strip()
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again and how long to wait first.

    Capped exponential back-off with full jitter, so a fleet booting at once
    does not retry in lock-step; a server's Retry-After is honoured but
    capped, so a hostile or confused answer cannot park a boot for an hour.
    ``deadline`` bounds one logical request (all attempts and waits).
    """

    retries: int = 3
    backoff_base: float = 0.05
    backoff_cap: float = 2.0
    retry_after_cap: float = 5.0
    deadline: float = 10.0

    @staticmethod
    def retryable_status(status: int) -> bool:
        return status == 429 or 500 <= status <= 599

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        return rand() * min(self.backoff_cap, self.backoff_base * (2 ** attempt))

    def wait(self, attempt: int, retry_after: Optional[str], now: float,
             rand: Callable[[], float]) -> float:
        advised = parse_retry_after(retry_after, now)
        if advised is not None:
            return min(advised, self.retry_after_cap)
        return self.backoff(attempt, rand)


# --- hooks ------------------------------------------------------------------

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


# --- token ------------------------------------------------------------------

class TokenManager:
    """Holds the IMDSv2 token and renews it before it runs out.

    The lifetime counted is the one IMDS granted, from when the PUT was
    sent, on a monotonic clock.  A token is not used once less than
    min(60 s, TTL/2) remains: a request must not arrive with a token that
    expires in flight.  The lock makes renewal single-flight: threads that
    find the token stale wait for the one renewal instead of each sending a
    PUT.
    """

    def __init__(self, fetch: Callable[[], Tuple[Optional[str], float]],
                 clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Optional[str] = None
        self._usable_until = float("-inf")
        self._fetched = False

    def get(self) -> Optional[str]:
        """The current token (None in IMDSv1 fallback mode)."""
        with self._lock:
            if not self._fetched or self._clock() >= self._usable_until:
                sent = self._clock()
                token, ttl = self._fetch()
                self._token, self._fetched = token, True
                self._usable_until = sent + ttl - min(60.0, ttl / 2)
            return self._token

    def invalidate(self, token: Optional[str]) -> None:
        """Forget *token* after a 401, unless another thread already renewed it."""
        with self._lock:
            if self._token == token:
                self._fetched = False


# --- client -----------------------------------------------------------------

class ImdsClient:
    """Fetches single IMDS paths: ``get("/meta-data/instance-id") -> bytes``.

    Thread-safe; one pool of keep-alive connections shared by all callers.
    """

    def __init__(self, settings: ImdsSettings, *, endpoint: Optional[str] = None,
                 pool: Optional[urllib3.PoolManager] = None, concurrency: int = 8,
                 observer: Optional[Observer] = None,
                 environ: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> None:
        import urllib3

        self._urllib3 = urllib3
        if metadata_disabled(environ):
            raise ImdsUnavailable("IMDS", "disabled by AWS_EC2_METADATA_DISABLED=true",
                                  "unset it to let imdsrender query the metadata service")
        self.settings = settings
        self.endpoint = resolve_endpoint(settings, endpoint, environ)
        self.policy = RetryPolicy(retries=settings.retries,
                                  deadline=max(RetryPolicy.deadline,
                                               settings.timeout * (settings.retries + 1)))
        self.limit = AdaptiveLimit(concurrency)
        self.observer = observer or Observer()
        self._clock, self._wall, self._sleep, self._rand = clock, wall, sleep, rand
        # urllib3's PoolManager never reads proxy settings from the
        # environment, and redirects/retries are disabled per request below.
        self._pool = pool or urllib3.PoolManager(
            maxsize=max(1, concurrency), block=False, retries=False,
            timeout=urllib3.Timeout(connect=settings.timeout, read=settings.timeout))
        self._tokens = TokenManager(self._fetch_token, clock)

    # -- public --------------------------------------------------------------

    def get(self, path: str) -> bytes:
        """The body of ``/latest<path>``; NotFound on 404, ImdsError otherwise."""
        token = self._tokens.get()
        status, body = self._get_with_token(path, token)
        if status == 401:
            log.debug("401 for %s: renewing the token once", path)
            self._tokens.invalidate(token)
            status, body = self._get_with_token(path, self._tokens.get())
        if status == 200:
            return body
        if status == 404:
            raise NotFound(path, "not found (404)")
        if status == 401:
            raise ImdsError(path, "IMDS rejected a freshly issued token (401)",
                            "check the instance's metadata options")
        raise ImdsError(path, f"unexpected HTTP {status}", "see the debug log for the answer")

    def token(self) -> Optional[str]:
        """Make sure a token is held (or IMDSv1 fallback chosen): the boot wait."""
        return self._tokens.get()

    # -- token ---------------------------------------------------------------

    def _fetch_token(self) -> Tuple[Optional[str], float]:
        """PUT for a token, waiting up to boot_wait for IMDS to answer at all."""
        ttl = self.settings.token_ttl
        headers = {TTL_HEADER: str(ttl)}
        boot_deadline = self._clock() + self.settings.boot_wait
        attempt = 0
        while True:
            try:
                status, body, reply = self._request_retrying("PUT", TOKEN_PATH, headers, "token",
                                                             boot_deadline)
                break
            except _Retryable as exc:
                if not exc.connect or self._clock() >= boot_deadline:
                    raise self._unavailable(exc) from None
                pause = min(self.policy.backoff(attempt, self._rand) + 0.1,
                            max(0.0, boot_deadline - self._clock()))
                log.info("IMDS not answering yet (%s); retrying in %.1fs", exc.reason, pause)
                self._sleep(pause)
                attempt += 1
        if status == 200:
            self.observer.token_refresh()
            return _usable_token(body, self.endpoint), _granted_ttl(reply, ttl)
        if status == 400:
            raise ImdsConfigError("imds.token_ttl", f"IMDS rejected the token request "
                                  f"(400) for a TTL of {ttl}", "use a TTL from 1 to 21600")
        if status in (403, 404, 405) and self.settings.allow_imdsv1:
            log.warning("IMDSv2 unavailable (HTTP %s); falling back to IMDSv1 "
                        "because allow_imdsv1 is set", status)
            return None, float("inf")
        if status in (403, 404, 405):
            raise ImdsUnavailable(self.endpoint, f"IMDSv2 token request refused (HTTP {status})",
                                  "enable IMDSv2 on the instance, or set imds.allow_imdsv1: true")
        raise ImdsUnavailable(self.endpoint, f"token request answered HTTP {status}",
                              "IMDS is misbehaving; try again later")

    def _unavailable(self, exc: _Retryable) -> ImdsUnavailable:
        if exc.timeout and not exc.connect:
            return ImdsUnavailable(self.endpoint, f"no answer to the token request ({exc.reason})",
                                   "in a container, raise the instance's metadata hop limit "
                                   "(HttpPutResponseHopLimit 2)")
        return ImdsUnavailable(self.endpoint, f"no answer from IMDS ({exc.reason})",
                               "check that this runs on EC2 with the metadata service enabled; "
                               "--boot-wait sets how long to wait")

    # -- requests ------------------------------------------------------------

    def _get_with_token(self, path: str, token: Optional[str]) -> Tuple[int, bytes]:
        headers = {TOKEN_HEADER: token} if token else {}
        operation = "list" if is_dir(path) else "get"
        try:
            status, body, _ = self._request_retrying("GET", "/latest" + path, headers, operation)
        except _Retryable as exc:
            raise ImdsError(path, f"gave up after {self.policy.retries + 1} attempts "
                            f"({exc.reason})", "IMDS is unhealthy or throttling; "
                            "try again later") from None
        return status, body

    def _request_retrying(self, method: str, url_path: str, headers: Mapping[str, str],
                          operation: str, until: float = float("inf")) -> Tuple[int, bytes, Any]:
        """One logical request: attempts until an answer, retries or deadline run out."""
        deadline = min(until, self._clock() + self.policy.deadline)
        attempt = 0
        while True:
            try:
                status, body, reply = self._attempt(method, url_path, headers, operation, deadline)
            except _Retryable as exc:
                failure = exc
            else:
                if not self.policy.retryable_status(status):
                    return status, body, reply
                failure = _Retryable(f"HTTP {status}", retry_after=reply.headers.get("Retry-After"))
                if status == 429:
                    self.limit.throttled()
            pause = self.policy.wait(attempt, failure.retry_after, self._wall(), self._rand)
            if attempt >= self.policy.retries or self._clock() + pause >= deadline:
                raise failure
            self.observer.retry(operation, failure.reason)
            log.debug("%s %s: %s; retry %d in %.2fs", method, url_path, failure.reason,
                      attempt + 1, pause)
            self._sleep(pause)
            attempt += 1

    def _attempt(self, method: str, url_path: str, headers: Mapping[str, str],
                 operation: str, deadline: float) -> Tuple[int, bytes, Any]:
        """Send once, read the body within the caps and the deadline."""
        urllib3 = self._urllib3
        started = self._clock()
        status: Optional[int] = None
        try:
            with self.limit:
                reply = self._pool.request(method, self.endpoint + url_path, headers=dict(headers),
                                           redirect=False, retries=False, preload_content=False)
                body = self._read_whole(reply, url_path, deadline)
                status = reply.status  # only now: a broken body is no answer
        except urllib3.exceptions.NewConnectionError as exc:
            raise _Retryable(f"connection failed: {_reason(exc)}", connect=True) from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise _Retryable("connect timed out", connect=True, timeout=True) from None
        except urllib3.exceptions.ReadTimeoutError:
            raise _Retryable("read timed out", timeout=True) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retryable(f"connection error: {_reason(exc)}") from None
        finally:
            self.observer.request(operation, url_path, status, self._clock() - started)
        if 300 <= reply.status < 400:
            where = reply.headers.get("Location", "elsewhere")
            raise ImdsError(url_path, f"redirect (HTTP {reply.status}) to {where} refused",
                            "IMDS never redirects; check --endpoint and any proxy in the way")
        return reply.status, body, reply

    def _read_whole(self, reply: Any, url_path: str, deadline: float) -> bytes:
        """Read the body; a connection left mid-body is closed, never reused."""
        try:
            body = self._read_body(reply, url_path, deadline)
        except BaseException:
            reply.close()
            raise
        finally:
            reply.release_conn()
        return body

    def _read_body(self, reply: Any, url_path: str, deadline: float) -> bytes:
        """Read the body chunk by chunk, enforcing the leaf cap and the deadline.

        A slow-drip answer keeps every single read under the read timeout;
        only a clock check between chunks bounds it.  Content-Length is
        checked by hand because urllib3 1.26 does not enforce it.
        """
        cap = self.settings.max_leaf_bytes
        declared = ascii_int(reply.headers.get("Content-Length"))
        if declared is not None and declared > cap:
            raise ImdsError(url_path, f"answer of {declared} bytes exceeds the {cap}-byte cap",
                            "this path is too large to render")
        read1 = getattr(reply, "read1", None) or reply._fp.read1  # urllib3 1.26 has no read1
        parts = []
        size = 0
        while True:
            chunk = read1(_CHUNK)
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
            if size > cap:
                raise ImdsError(url_path, f"answer exceeds the {cap}-byte cap",
                                "this path is too large to render")
            if self._clock() > deadline:
                raise _Retryable("body not complete before the request deadline", timeout=True)
        # Let the response see its own end: http.client's read1() never marks a
        # fully read response closed, and urllib3 1.26 would then reuse a
        # connection that still has a response pending (ResponseNotReady).
        reply.read()
        if declared is not None and size != declared:
            raise _Retryable(f"short body ({size} of {declared} bytes)")
        return b"".join(parts)


def _usable_token(body: bytes, endpoint: str) -> str:
    """The token, if it can safely travel in a header.

    Empty, non-ASCII or whitespace-holding answers are refused: sent on,
    they would be a 401 per key at best and a header injection at worst.
    """
    token = body.strip()
    if not token or not token.isascii() or any(c <= 32 or c == 127 for c in token):
        raise ImdsUnavailable(endpoint, "the token request answered 200 with an unusable token",
                              "IMDS or something in front of it is misbehaving; try again later")
    return token.decode("ascii")


def _granted_ttl(reply: Any, requested: int) -> float:
    """The TTL IMDS granted (header), else the one asked for."""
    granted = ascii_int(reply.headers.get(TTL_HEADER))
    return float(granted) if granted else float(requested)


def _reason(exc: BaseException) -> str:
    """The readable part of a urllib3 error ("<...Connection object at 0x..>: why")."""
    return str(exc).split(">: ", 1)[-1]
