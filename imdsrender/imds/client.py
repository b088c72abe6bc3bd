"""The IMDS client: the one place that sends requests to the metadata service.

urllib3 is imported only when a client is built, so commands that never
talk to IMDS (``--version``, ``check``) do not pay for it; the pool is
injectable, so tests and the health probe can hand in their own.

The rules are DESIGN.md's "IMDS client rules"; the short version:
IMDSv2 only unless told otherwise, every request bounded (retries, a
per-request deadline, body caps), no redirects, no proxies, and an error that
says which path failed and what to do.  Failures are the Source errors
(:mod:`imdsrender.source`), so the fetcher handles them without importing
this module; :class:`ImdsConfigError` is the one error of its own.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Tuple

from ..keys import is_dir
from ..model import ImdsSettings
from ..quantities import ascii_int, is_ascii_digits
from ..source import NotFound, SourceError, SourceUnavailable
from .bootlog import BootLog
from .deadline import deadline_pool_manager, deadline_scope
from .endpoint import ImdsConfigError, metadata_disabled, resolve_endpoint
from .limits import AdaptiveLimit, Observer
from .policy import RetryPolicy, giving_up_because, parse_retry_after, run_deadline
from .token import TOKEN_REFUSED_HINT, Grant, TokenManager, read_token_answer
from .wire import TOKEN_HEADER, TOKEN_PATH, TTL_HEADER

if TYPE_CHECKING:  # pragma: no cover
    import urllib3

__all__ = ["ImdsClient", "ImdsConfigError"]

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024


class _Retryable(Exception):
    """One attempt failed in a way worth trying again (internal).

    ``status`` is the HTTP status when IMDS did answer (5xx, 429);
    ``attempts`` and ``ending`` are filled in when the request gives up, so
    the message can say how many attempts there really were and why it
    stopped ("deadline reached", a Retry-After too long to honour).
    """

    def __init__(self, reason: str, retry_after: Optional[str] = None,
                 connect: bool = False, timeout: bool = False,
                 status: Optional[int] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.connect = connect
        self.timeout = timeout
        self.status = status
        self.attempts = 1
        self.ending = ""

    def gave_up(self) -> str:
        """"gave up after N attempts (why; how it ended)"."""
        if self.attempts == 0:
            return f"not sent ({self.reason})"
        plural = "attempt" if self.attempts == 1 else "attempts"
        ending = f"; {self.ending}" if self.ending else ""
        return f"gave up after {self.attempts} {plural} ({self.reason}{ending})"


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
            raise SourceUnavailable("IMDS", "disabled by AWS_EC2_METADATA_DISABLED=true",
                                    "unset it to let imdsrender query the metadata service")
        self.settings = settings
        self.endpoint = resolve_endpoint(settings, endpoint, environ)
        self.policy = RetryPolicy.from_settings(settings)
        self.limit = AdaptiveLimit(concurrency)
        self.observer = observer or Observer()
        self._clock, self._wall, self._sleep, self._rand = clock, wall, sleep, rand
        self._run_until = float("inf")  # no run deadline until begin_run()
        # urllib3's PoolManager never reads proxy settings from the
        # environment, and redirects/retries are disabled per request below.
        self._pool = pool or deadline_pool_manager(
            maxsize=max(1, concurrency), block=False, retries=False,
            timeout=urllib3.Timeout(connect=settings.timeout, read=settings.timeout))
        self._tokens = TokenManager(self._fetch_token, clock)
        self._boot_log = BootLog(clock)

    # -- public --------------------------------------------------------------

    def begin_run(self) -> None:
        """Start the clock of a whole run: no request outlives ``run_deadline(settings)``.

        The caller says when a run starts (``--onetime`` once, interval mode
        at each poll): a client outlives runs in interval mode, so it cannot
        guess.  Until then only the per-request deadlines apply.
        """
        self._run_until = self._clock() + run_deadline(self.settings)

    def get(self, path: str) -> bytes:
        """The body of ``/latest<path>``; NotFound on 404, SourceError otherwise."""
        token = self._tokens.get()
        status, body, headers = self._get_with_token(path, token)
        if status == 401:
            log.debug("401 for %s: renewing the token once", path)
            self._tokens.invalidate(token)
            status, body, headers = self._get_with_token(path, self._tokens.get())
        if status == 200:
            return body
        if 300 <= status < 400:
            raise SourceError(path, f"redirect (HTTP {status}) to "
                              f"{headers.get('Location', 'elsewhere')} refused",
                              "IMDS never redirects; check --endpoint and any proxy in the way")
        if status == 404:
            raise NotFound(path, "not found (404)")
        if status == 401:
            raise SourceError(path, "IMDS rejected a freshly issued token (401)",
                              "check the instance's metadata options")
        raise SourceError(path, f"unexpected HTTP {status}", "see the debug log for the answer")

    def wait_until_ready(self) -> None:
        """Block until IMDS answers a token request (up to ``boot_wait``).

        Raises SourceUnavailable when it never does, before anything is
        fetched; a run calls this once so "IMDS is not there" fails fast.
        """
        self._tokens.get()

    def current_token(self) -> Optional[str]:
        """The token requests carry now (None in IMDSv1 fallback), renewed if stale."""
        return self._tokens.get()

    # -- token ---------------------------------------------------------------

    def _fetch_token(self) -> Grant:
        """PUT for a token, waiting up to boot_wait for IMDS to answer at all.

        ``boot_wait`` 0 means one try: that attempt still gets its timeout.
        """
        ttl = self.settings.token_ttl
        started = self._clock()
        boot_deadline = started + self.settings.boot_wait
        pacing = self.policy
        self._boot_log.start()
        while True:
            until = max(boot_deadline, self._clock() + self.settings.timeout)
            try:
                status, body, headers = self._request_retrying(
                    "PUT", TOKEN_PATH, {TTL_HEADER: str(ttl)}, "token", until)
                break
            except _Retryable as exc:
                if not exc.connect or self._clock() >= boot_deadline:
                    self._boot_log.outcome(exc.reason)
                    raise self._unavailable(exc) from None
                pause = min(pacing.backoff(self._rand) + 0.1,
                            max(0.0, boot_deadline - self._clock()))
                self._boot_log.waiting(exc.reason, pause)
                self._sleep(pause)
                pacing = pacing.increment()
        self._boot_log.outcome(None)
        if status == 200:
            self.observer.token_refresh()
        return read_token_answer(status, body, headers, requested_ttl=ttl,
                                 allow_imdsv1=self.settings.allow_imdsv1, endpoint=self.endpoint)

    def _unavailable(self, exc: _Retryable) -> SourceUnavailable:
        if exc.status is not None:
            times = "once" if exc.attempts == 1 else f"{exc.attempts} times"
            return SourceUnavailable(self.endpoint, f"IMDS answered HTTP {exc.status} to the "
                                     f"token request {times}", TOKEN_REFUSED_HINT)
        if exc.timeout and not exc.connect:
            return SourceUnavailable(self.endpoint,
                                     f"no answer to the token request ({exc.reason})",
                                     "in a container, raise the instance's metadata hop limit "
                                     "(HttpPutResponseHopLimit 2)")
        return SourceUnavailable(self.endpoint, f"no answer from IMDS ({exc.reason})",
                                 "check that this runs on EC2 with the metadata service "
                                 "enabled; --boot-wait sets how long to wait")

    # -- requests ------------------------------------------------------------

    def _get_with_token(self, path: str, token: Optional[str]) -> Tuple[int, bytes, Any]:
        headers = {TOKEN_HEADER: token} if token else {}
        operation = "list" if is_dir(path) else "get"
        try:
            return self._request_retrying("GET", "/latest" + path, headers, operation)
        except _Retryable as exc:
            hint = ("the whole run took longer than imds.run_timeout; raise it, or lower "
                    "the number of keys" if exc.attempts == 0
                    else "IMDS is unhealthy or throttling; try again later")
            raise SourceError(path, exc.gave_up(), hint) from None

    def _request_retrying(self, method: str, url_path: str, headers: Mapping[str, str],
                          operation: str, until: float = float("inf")) -> Tuple[int, bytes, Any]:
        """One logical request: attempts until an answer, retries or deadline run out.

        Returns the status, body and headers of the answer that ends it.
        """
        deadline = min(until, self._run_until, self._clock() + self.policy.deadline)
        if self._clock() >= deadline:  # a request that could only be abandoned is not sent
            unsent = _Retryable("the run's deadline had passed", timeout=True)
            unsent.attempts = 0
            raise unsent
        policy = self.policy.new(attempt=0)
        while True:
            try:
                status, body, answer = self._attempt(method, url_path, headers, operation,
                                                     deadline)
            except _Retryable as exc:
                failure = exc
            else:
                if not policy.is_retry(status):
                    return status, body, answer
                failure = _Retryable(f"HTTP {status}", retry_after=answer.get("Retry-After"),
                                     status=status)
                if status == 429:
                    self.limit.throttled()
            advised = parse_retry_after(failure.retry_after, self._wall())
            pause = policy.pause(advised, self._rand)
            if policy.is_exhausted() or self._clock() + pause >= deadline:
                failure.attempts = policy.attempt + 1
                failure.ending = giving_up_because(policy.is_exhausted(), advised,
                                         deadline - self._clock())
                raise failure
            self.observer.retry(operation, failure.reason)
            log.debug("%s %s: %s; retry %d in %.2fs", method, url_path, failure.reason,
                      policy.attempt + 1, pause)
            self._sleep(pause)
            policy = policy.increment()

    def _attempt(self, method: str, url_path: str, headers: Mapping[str, str],
                 operation: str, deadline: float) -> Tuple[int, bytes, Any]:
        """Send once, read the body within the caps and the deadline."""
        urllib3 = self._urllib3
        started = self._clock()
        status: Optional[int] = None
        try:
            with self.limit, deadline_scope(self._clock, deadline):
                reply = self._pool.request(method, self.endpoint + url_path, headers=dict(headers),
                                           redirect=False, retries=False, preload_content=False)
                body = self._read_whole(reply, url_path, deadline)
                status = reply.status  # only now: a broken body is no answer
        except urllib3.exceptions.NewConnectionError as exc:
            raise _Retryable(f"connection failed: {_reason(exc)}", connect=True) from None
        except urllib3.exceptions.ConnectTimeoutError:
            raise _Retryable("connect timed out", connect=True, timeout=True) from None
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            # http.client's IncompleteRead escapes urllib3 1.26 (a chunked body cut short).
            if self._clock() >= deadline:
                raise _Retryable("no complete answer before the deadline", timeout=True) from None
            if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
                raise _Retryable("read timed out", timeout=True) from None
            raise _Retryable(f"connection error: {_reason(exc)}") from None
        finally:
            self.observer.request(operation, url_path, status, self._clock() - started)
        return reply.status, body, reply.headers

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
        length = reply.headers.get("Content-Length")
        declared = ascii_int(length)
        if (declared is not None and declared > cap) or (declared is None
                                                         and is_ascii_digits(length)):
            shown = f"{declared} bytes" if declared is not None else f"{len(length)} digits"
            raise SourceError(url_path, f"answer of {shown} exceeds the {cap}-byte cap",
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
                raise SourceError(url_path, f"answer exceeds the {cap}-byte cap",
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


def _reason(exc: BaseException) -> str:
    """The readable part of a urllib3 error ("<...Connection object at 0x..>: why")."""
    return str(exc).split(">: ", 1)[-1]
