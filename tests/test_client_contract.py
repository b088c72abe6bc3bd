"""The IMDS client's contract, pinned where mutation testing found it loose.

Against the in-memory pool of test_token_lifetime (exact, no sockets, no
sleeps): every error is the one line a user sees (where: what; hint), the
pool and each request are configured so that nothing is retried or
redirected behind our back, bodies are capped exactly, back-off and
deadlines follow DESIGN.md, and the observer sees every attempt.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import pytest
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from imdsrender.errors import Error
from imdsrender.imds import client
from imdsrender.imds.endpoint import resolve_endpoint
from imdsrender.imds.policy import RetryPolicy
from imdsrender.model import ImdsSettings
from imdsrender.source import NotFound, SourceError, SourceUnavailable
from tests.test_token_lifetime import TOKEN_PATH, TTL_HEADER, Clock, Pool, Reply

EP = "http://127.0.0.1:9"
KEY = "/meta-data/instance-id"
REFUSED = "Failed to establish a new connection: [Errno 111] Connection refused"
# The one hint of every token answer that is IMDS (or a proxy) misbehaving.
MISBEHAVING = ("IMDS or something in front of it is misbehaving; check --endpoint and any "
               "proxy in the way, then try again later")
CONNECTION = "<urllib3.connection.HTTPConnection object at 0x7f00>"  # str(error) starts so


class Observer(client.Observer):
    def __init__(self) -> None:
        self.requests: List[Tuple[str, str, Optional[int], float]] = []
        self.retries: List[Tuple[str, str]] = []
        self.refreshes = 0

    def request(self, operation: str, path: str, status: Optional[int], seconds: float) -> None:
        self.requests.append((operation, path, status, seconds))

    def retry(self, operation: str, reason: str) -> None:
        self.retries.append((operation, reason))

    def token_refresh(self) -> None:
        self.refreshes += 1


def token_then(get: Any, token: bytes = b"tok") -> Any:
    """A handler: PUT answers *token*; GETs go to *get* (a fixed answer or a function)."""
    def handler(method: str, path: str, headers: Dict[str, str]) -> Any:
        if method == "PUT":
            return 200, token, {TTL_HEADER: "21600"}
        return get(path) if callable(get) else get
    return handler


def make(handler: Any, clock: Optional[Clock] = None, observer: Optional[Observer] = None,
         sleeps: Optional[List[float]] = None, rand: float = 1.0,
         **settings: Any) -> Tuple[client.ImdsClient, Pool]:
    pool = Pool(handler)
    clock = clock or Clock()
    waits = sleeps if sleeps is not None else []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds  # type: ignore[union-attr]

    options: Dict[str, Any] = dict(timeout=1.0, retries=3, boot_wait=5.0)
    options.update(settings)
    imds = client.ImdsClient(ImdsSettings(**options), endpoint=EP, pool=pool,  # type: ignore[arg-type]
                             environ={}, clock=clock, wall=lambda: 1_700_000_000.0,
                             sleep=sleep, rand=lambda: rand, observer=observer)
    return imds, pool


def error_of(call: Any) -> str:
    with pytest.raises(Error) as caught:
        call()
    return str(caught.value)


# ------------------------------------------------------------------ one-line errors

@pytest.mark.parametrize("token", [b"", b"two words", b"tab\there", b"del\x7f",
                                   b"\xc3\xa9t\xc3\xa9"])
def test_an_unusable_token_is_refused(token: bytes) -> None:
    imds, _ = make(token_then((200, b"x", {}), token=token))
    assert error_of(imds.current_token) == (f"{EP}: the token request answered 200 with an "
                                            f"unusable token; {MISBEHAVING}")


def test_every_printable_ascii_token_is_used() -> None:
    token = bytes(range(33, 127))
    imds, pool = make(token_then((200, b"x", {}), token=b" " + token + b"\n"))
    assert imds.current_token() == token.decode("ascii")
    imds.get(KEY)
    assert pool.log[-1][2] == token.decode("ascii")


def test_unknown_endpoint_mode() -> None:
    settings = ImdsSettings(endpoint_mode="ipv5")
    assert error_of(lambda: resolve_endpoint(settings, environ={})) == \
        "imds.endpoint_mode: unknown endpoint mode 'ipv5'; use ipv4 or ipv6"


def test_endpoint_loses_only_trailing_slashes() -> None:
    assert resolve_endpoint(ImdsSettings(), "http://BOX//", environ={}) == "http://BOX"


def test_the_client_reads_the_endpoint_from_its_environ() -> None:
    imds = client.ImdsClient(ImdsSettings(), environ={"IMDS_ENDPOINT": "http://127.0.0.1:7/"})
    assert imds.endpoint == "http://127.0.0.1:7"


def test_disabled_by_the_environment() -> None:
    with pytest.raises(SourceUnavailable) as caught:
        client.ImdsClient(ImdsSettings(), environ={"AWS_EC2_METADATA_DISABLED": "true"})
    assert str(caught.value) == ("IMDS: disabled by AWS_EC2_METADATA_DISABLED=true; unset it "
                                 "to let imdsrender query the metadata service")


@pytest.mark.parametrize("status,location,where", [(300, None, "elsewhere"),
                                                   (301, "http://evil.example/", "http://evil.example/"),
                                                   (399, None, "elsewhere")])
def test_a_redirect_is_refused_and_named(status: int, location: Optional[str],
                                         where: str) -> None:
    imds, pool = make(token_then((status, b"", {"Location": location})))
    assert error_of(lambda: imds.get(KEY)) == (
        f"{KEY}: redirect (HTTP {status}) to {where} refused; IMDS never redirects; "
        "check --endpoint and any proxy in the way")
    assert [p for m, p, _ in pool.log if m == "GET"] == [f"/latest{KEY}"]  # never retried


@pytest.mark.parametrize("status", [403, 404, 405])
def test_put_refused_means_imdsv2_unavailable(status: int,
                                              caplog: pytest.LogCaptureFixture) -> None:
    refuse = lambda m, p, h: (status, b"", {}) if m == "PUT" else (200, b"v1", {})  # noqa: E731
    imds, _ = make(refuse)
    assert error_of(imds.current_token) == (
        f"{EP}: IMDSv2 token request refused (HTTP {status}); enable IMDSv2 on the instance, "
        "or set imds.allow_imdsv1: true")
    fallback, pool = make(refuse, allow_imdsv1=True)
    with caplog.at_level(logging.WARNING):
        assert fallback.get(KEY) == b"v1"
    assert pool.log[-1] == ("GET", f"/latest{KEY}", None)
    assert caplog.messages == [f"IMDSv2 unavailable (HTTP {status}); falling back to IMDSv1 "
                               "because allow_imdsv1 is set"]


def test_put_400_names_the_ttl_setting() -> None:
    imds, _ = make(lambda m, p, h: (400, b"", {}))
    assert error_of(imds.current_token) == (
        "imds.token_ttl: IMDS rejected the token request (400) for a TTL of 21600; "
        "use a TTL from 1 to 21600")


def test_put_answered_otherwise() -> None:
    imds, _ = make(lambda m, p, h: (418, b"", {}))
    assert error_of(imds.current_token) == f"{EP}: token request answered HTTP 418; {MISBEHAVING}"


@pytest.mark.parametrize("status,message", [
    (401, f"{KEY}: IMDS rejected a freshly issued token (401); check the instance's "
          "metadata options"),
    (402, f"{KEY}: unexpected HTTP 402; see the debug log for the answer"),
    (403, f"{KEY}: unexpected HTTP 403; see the debug log for the answer"),
])
def test_get_errors(status: int, message: str) -> None:
    imds, _ = make(token_then((status, b"", {})))
    assert error_of(lambda: imds.get(KEY)) == message


def test_404_is_not_found_naming_the_path() -> None:
    imds, _ = make(token_then((404, b"", {})))
    with pytest.raises(NotFound) as caught:
        imds.get(KEY)
    assert str(caught.value) == f"{KEY}: not found (404)"


def test_a_401_is_logged_and_renews_once(caplog: pytest.LogCaptureFixture) -> None:
    tokens = iter([b"one", b"two"])
    handler = lambda m, p, h: ((200, next(tokens), {}) if m == "PUT"  # noqa: E731
                               else (401, b"", {}) if h.get("X-aws-ec2-metadata-token") == "one"
                               else (200, b"ok", {}))
    imds, pool = make(handler)
    with caplog.at_level(logging.DEBUG, logger="imdsrender"):
        assert imds.get(KEY) == b"ok"
    assert pool.puts() == 2
    assert f"401 for {KEY}: renewing the token once" in caplog.messages


# ------------------------------------------------------------ retries and deadlines

@pytest.mark.parametrize("status,retried", [(429, True), (499, False), (500, True),
                                            (599, True), (600, False)])
def test_which_statuses_are_retried(status: int, retried: bool) -> None:
    assert RetryPolicy.is_retry(status) is retried


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy()  # the attempt count lives on the (immutable) policy now
    assert [policy.new(attempt=n).backoff(lambda: 1.0) for n in range(7)] == \
        pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    assert policy.new(attempt=3).backoff(lambda: 0.5) == pytest.approx(0.2)
    assert policy.increment().increment() == policy.new(attempt=2)


def test_persistent_503_gives_up_naming_the_attempts(caplog: pytest.LogCaptureFixture) -> None:
    observer = Observer()
    sleeps: List[float] = []
    imds, pool = make(token_then((503, b"", {})), observer=observer, sleeps=sleeps)
    with caplog.at_level(logging.DEBUG, logger="imdsrender"):
        message = error_of(lambda: imds.get("/meta-data/tags/"))
    assert [m for m in caplog.messages if "retry" in m] == [
        f"GET /latest/meta-data/tags/: HTTP 503; retry {n} in {s}s"
        for n, s in ((1, "0.05"), (2, "0.10"), (3, "0.20"))]
    assert message == (
        "/meta-data/tags/: gave up after 4 attempts (HTTP 503); IMDS is unhealthy or "
        "throttling; try again later")
    assert sleeps == pytest.approx([0.05, 0.1, 0.2])
    assert observer.retries == [("list", "HTTP 503")] * 3
    assert [r[:3] for r in observer.requests] == [("token", TOKEN_PATH, 200)] + \
        [("list", "/latest/meta-data/tags/", 503)] * 4


def test_retry_after_is_read_whatever_its_case_and_the_deadline_is_inclusive() -> None:
    """Retry-After 5 s with a 10 s deadline: attempts at 0 s and 5 s, none at 10 s."""
    imds, pool = make(token_then((503, b"", {"retry-after": "5"})), retries=9)
    error_of(lambda: imds.get(KEY))
    assert sum(1 for m, _, _ in pool.log if m == "GET") == 2


def test_the_request_deadline_grows_with_timeout_and_retries() -> None:
    imds, _ = make(token_then((200, b"", {})), timeout=5.0, retries=3)
    assert imds.policy.deadline == 20.0


def test_the_token_put_is_bounded_by_the_boot_wait() -> None:
    """A PUT answered 503 with Retry-After 1 s is retried until boot_wait (2 s), not 10 s."""
    imds, pool = make(lambda m, p, h: (503, b"", {"Retry-After": "1"}), retries=9, boot_wait=2.0)
    assert error_of(imds.current_token) == (f"{EP}: IMDS answered HTTP 503 to the token request "
                                            f"2 times; {MISBEHAVING}")
    assert pool.puts() == 2


def refuse_connections(m: str, p: str, h: Dict[str, str]) -> Any:
    raise NewConnectionError(CONNECTION, REFUSED)  # type: ignore[arg-type]


def test_boot_wait_backs_off_then_gives_up(caplog: pytest.LogCaptureFixture) -> None:
    sleeps: List[float] = []
    imds, pool = make(refuse_connections, sleeps=sleeps, retries=0, boot_wait=1.0)
    with caplog.at_level(logging.INFO):
        message = error_of(imds.current_token)
    assert message == (f"{EP}: no answer from IMDS (connection failed: {REFUSED}); check "
                       "that this runs on EC2 with the metadata service enabled; "
                       "--boot-wait sets how long to wait")
    assert sleeps == pytest.approx([0.15, 0.2, 0.3, 0.35])  # backoff + 0.1, cut at boot_wait
    assert pool.puts() == 5
    assert caplog.messages[0] == (f"IMDS not answering yet (connection failed: {REFUSED}); "
                                  "retrying in 0.2s")


@pytest.mark.parametrize("error,message", [
    (ConnectTimeoutError("timed out"), "no answer from IMDS (connect timed out); check that "
     "this runs on EC2 with the metadata service enabled; --boot-wait sets how long to wait"),
    (ReadTimeoutError(None, "/", "Read timed out."), "no answer to the token request (read "  # type: ignore[arg-type]
     "timed out); in a container, raise the instance's metadata hop limit "
     "(HttpPutResponseHopLimit 2)"),
    (OSError("connection reset"), "no answer from IMDS (connection error: connection reset); "
     "check that this runs on EC2 with the metadata service enabled; --boot-wait sets how "
     "long to wait"),
])
def test_token_put_failures_name_the_likely_cause(error: Exception, message: str) -> None:
    def fail(m: str, p: str, h: Dict[str, str]) -> Any:
        raise error

    sleeps: List[float] = []
    imds, pool = make(fail, sleeps=sleeps, retries=0, boot_wait=0.5)
    assert error_of(imds.current_token) == f"{EP}: {message}"
    waited_for_boot = isinstance(error, ConnectTimeoutError)  # only a connect failure waits
    assert (pool.puts() > 1) is waited_for_boot


def test_a_read_timeout_on_get_is_retried_and_named() -> None:
    def handler(m: str, p: str, h: Dict[str, str]) -> Any:
        if m == "PUT":
            return 200, b"tok", {}
        raise ReadTimeoutError(None, p, "Read timed out.")  # type: ignore[arg-type]

    imds, pool = make(handler, retries=1)
    assert error_of(lambda: imds.get(KEY)) == (f"{KEY}: gave up after 2 attempts (read timed "
                                               "out); IMDS is unhealthy or throttling; try "
                                               "again later")


# ----------------------------------------------------------------------- bodies

def test_body_caps_are_exact() -> None:
    cap = 1000
    sizes = {"/latest/meta-data/at-cap": cap, "/latest/meta-data/over": cap + 1}
    imds, _ = make(token_then(lambda p: (200, b"x" * sizes[p], {})), max_leaf_bytes=cap)
    assert imds.get("/meta-data/at-cap") == b"x" * cap
    assert error_of(lambda: imds.get("/meta-data/over")) == (
        "/latest/meta-data/over: answer of 1001 bytes exceeds the 1000-byte cap; this path "
        "is too large to render")


def test_body_cap_without_content_length_counts_every_chunk() -> None:
    cap = 150 * 1024
    big = b"x" * (200 * 1024)  # more than two 64 KiB chunks
    imds, _ = make(token_then((200, big, {"Content-Length": None})), max_leaf_bytes=cap)
    assert error_of(lambda: imds.get(KEY)) == (f"/latest{KEY}: answer exceeds the {cap}-byte "
                                               "cap; this path is too large to render")
    exact, _ = make(token_then((200, big[:cap], {"Content-Length": None})), max_leaf_bytes=cap)
    assert exact.get(KEY) == big[:cap]


def test_a_short_body_is_retried_then_named() -> None:
    imds, pool = make(token_then((200, b"abc", {"Content-Length": "5"})), retries=1)
    assert error_of(lambda: imds.get(KEY)) == (f"{KEY}: gave up after 2 attempts (short body "
                                               "(3 of 5 bytes)); IMDS is unhealthy or "
                                               "throttling; try again later")
    assert sum(1 for m, _, _ in pool.log if m == "GET") == 2


def test_a_body_still_dripping_at_the_deadline_is_abandoned() -> None:
    clock = Clock()

    def slow(path: str) -> Reply:
        def tick() -> None:
            clock.now += 6.0  # two chunks later, past the 10 s request deadline
        return Reply(200, b"x" * (200 * 1024), {"Content-Length": None}, on_read=tick)

    imds, _ = make(token_then(slow), clock=clock, retries=0)
    assert error_of(lambda: imds.get(KEY)) == (f"{KEY}: gave up after 1 attempt (body not "
                                               "complete before the request deadline); IMDS "
                                               "is unhealthy or throttling; try again later")


def test_a_token_answer_still_dripping_at_the_deadline_points_at_the_hop_limit() -> None:
    clock = Clock()

    def slow(m: str, p: str, h: Dict[str, str]) -> Reply:
        def tick() -> None:
            clock.now += 6.0
        return Reply(200, b"x" * (200 * 1024), {"Content-Length": None}, on_read=tick)

    imds, _ = make(slow, clock=clock, retries=0)
    assert error_of(imds.current_token) == (
        f"{EP}: no answer to the token request (body not complete before the request "
        "deadline); in a container, raise the instance's metadata hop limit "
        "(HttpPutResponseHopLimit 2)")


def test_a_body_done_exactly_at_the_deadline_is_kept() -> None:
    clock = Clock()

    def on_time(path: str) -> Reply:
        def tick() -> None:
            clock.now += 5.0
        return Reply(200, b"x" * (70 * 1024), {"Content-Length": None}, on_read=tick)

    imds, _ = make(token_then(on_time), clock=clock, retries=0)
    assert len(imds.get(KEY)) == 70 * 1024


# ------------------------------------------------------------ pool and requests

def test_pool_never_retries_blocks_or_waits_forever() -> None:
    imds = client.ImdsClient(ImdsSettings(timeout=2.5), endpoint=EP, environ={})
    kw = imds._pool.connection_pool_kw
    assert (kw["maxsize"], kw["block"]) == (8, False)
    retries = kw["retries"]  # urllib3 2 turns False into Retry(total=False)
    assert retries is False or (retries.total is False and retries.redirect == 0)
    assert (kw["timeout"].connect_timeout, kw["timeout"].read_timeout) == (2.5, 2.5)
    one = client.ImdsClient(ImdsSettings(), endpoint=EP, environ={}, concurrency=1)
    assert one._pool.connection_pool_kw["maxsize"] == 1


def test_every_request_refuses_redirects_and_retries_and_streams() -> None:
    imds, pool = make(token_then((200, b"v", {})))
    imds.get(KEY)
    assert pool.kwargs == [dict(redirect=False, retries=False, preload_content=False)] * 2


def test_the_observer_sees_each_attempt_with_its_duration() -> None:
    clock = Clock()
    observer = Observer()

    def handler(m: str, p: str, h: Dict[str, str]) -> Any:
        clock.now += 0.25
        if m == "PUT":
            return 200, b"tok", {}
        return (200, b"a\nb", {}) if p.endswith("/") else (200, b"v", {})

    imds, _ = make(handler, clock=clock, observer=observer)
    imds.get(KEY)
    imds.get("/meta-data/tags/")
    assert observer.requests == [("token", TOKEN_PATH, 200, 0.25),
                                 ("get", f"/latest{KEY}", 200, 0.25),
                                 ("list", "/latest/meta-data/tags/", 200, 0.25)]
    assert observer.refreshes == 1


def test_a_failed_attempt_reports_no_status() -> None:
    observer = Observer()
    imds, _ = make(refuse_connections, observer=observer, retries=0, boot_wait=0.0)
    with pytest.raises(SourceError):
        imds.current_token()
    assert observer.requests == [("token", TOKEN_PATH, None, 0.0)]
