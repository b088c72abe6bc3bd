"""Wire-level tests of the IMDS client against pytest-httpserver (127.0.0.1)."""

from __future__ import annotations

import email.utils
import logging
import socket
import threading
from typing import List, Optional, Tuple

import pytest
from pytest_httpserver import HTTPServer
from werkzeug.wrappers import Request, Response

from imdsrender.imds import client as client_module
from imdsrender.imds.client import ImdsClient, ImdsConfigError
from imdsrender.imds.limits import Observer
from imdsrender.imds.policy import RetryPolicy
from imdsrender.imds.token import TOKEN_REFUSED_HINT
from imdsrender.imds.wire import IPV4_ENDPOINT
from imdsrender.model import ImdsSettings
from imdsrender.source import NotFound, SourceError, SourceUnavailable

TOKEN = "AQAEAtokenvalue=="


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: List[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(server: HTTPServer, fake_time: FakeTime, **settings: object) -> ImdsClient:
    options = dict(timeout=1.0, retries=3, boot_wait=5.0)
    options.update(settings)
    return ImdsClient(ImdsSettings(**options), endpoint=server.url_for("").rstrip("/"),  # type: ignore[arg-type]
                      environ={}, clock=fake_time.clock, wall=fake_time.wall,
                      sleep=fake_time.sleep, rand=lambda: 1.0)


def expect_token(server: HTTPServer, ttl: str = "21600", oneshot: bool = False) -> None:
    expect = server.expect_oneshot_request if oneshot else server.expect_request
    expect("/latest/api/token", method="PUT").respond_with_data(
        TOKEN, headers={"X-aws-ec2-metadata-token-ttl-seconds": ttl})


def requests_to(server: HTTPServer, path: str, method: str = "GET") -> list:
    return [req for req, _ in server.log if req.path == path and req.method == method]


def test_exact_headers_on_put_and_get(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/instance-id").respond_with_data("i-123")
    client = make_client(httpserver, fake_time, token_ttl=300)

    assert client.get("/meta-data/instance-id") == b"i-123"

    (put,) = requests_to(httpserver, "/latest/api/token", "PUT")
    assert put.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert "X-aws-ec2-metadata-token" not in put.headers
    assert "X-Forwarded-For" not in put.headers
    (get,) = requests_to(httpserver, "/latest/meta-data/instance-id")
    assert get.headers["X-aws-ec2-metadata-token"] == TOKEN
    assert "X-Forwarded-For" not in get.headers
    assert "X-aws-ec2-metadata-token-ttl-seconds" not in get.headers


def test_token_is_reused_while_valid(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("1")
    client = make_client(httpserver, fake_time)
    for _ in range(5):
        client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 1


def test_shorter_granted_ttl_is_honoured(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver, ttl="100")  # asked for 21600, granted 100 s
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("1")
    client = make_client(httpserver, fake_time)
    client.get("/meta-data/a")
    fake_time.now += 49  # 100 s granted - min(60, 50) margin = usable for 50 s
    client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 1
    fake_time.now += 2
    client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 2


def test_missing_ttl_header_means_requested_ttl(httpserver: HTTPServer,
                                                fake_time: FakeTime) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data(TOKEN)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("1")
    client = make_client(httpserver, fake_time, token_ttl=600)
    client.get("/meta-data/a")
    fake_time.now += 539  # 600 - 60 margin
    client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 1
    fake_time.now += 2
    client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 2


def test_401_refreshes_once_and_retries(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_oneshot_request("/latest/meta-data/a").respond_with_data("", status=401)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("value")
    client = make_client(httpserver, fake_time)
    assert client.get("/meta-data/a") == b"value"
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 2
    assert len(requests_to(httpserver, "/latest/meta-data/a")) == 2


def test_persistent_401_is_no_loop(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("", status=401)
    client = make_client(httpserver, fake_time)
    with pytest.raises(SourceError, match="401"):
        client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 2
    assert len(requests_to(httpserver, "/latest/meta-data/a")) == 2


@pytest.mark.parametrize("status", [403, 404, 405])
def test_put_refused_means_imdsv2_unavailable(httpserver: HTTPServer, fake_time: FakeTime,
                                              status: int) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data(
        "", status=status)
    client = make_client(httpserver, fake_time)
    with pytest.raises(SourceUnavailable) as info:
        client.get("/meta-data/instance-id")
    assert info.value.exit_code == 3
    assert f"HTTP {status}" in str(info.value) and "allow_imdsv1" in str(info.value)
    assert not requests_to(httpserver, "/latest/meta-data/instance-id")  # no tokenless GET


def test_put_refused_falls_back_to_v1_only_when_allowed(httpserver: HTTPServer,
                                                        fake_time: FakeTime) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data("", status=403)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("v1")
    client = make_client(httpserver, fake_time, allow_imdsv1=True)
    assert client.get("/meta-data/a") == b"v1"
    (get,) = requests_to(httpserver, "/latest/meta-data/a")
    assert "X-aws-ec2-metadata-token" not in get.headers


def test_put_400_is_a_configuration_error(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data("", status=400)
    client = make_client(httpserver, fake_time)
    with pytest.raises(ImdsConfigError) as info:
        client.get("/meta-data/a")
    assert info.value.exit_code == 2
    assert "token_ttl" in str(info.value)


def test_retry_after_seconds_is_honoured(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_oneshot_request("/latest/meta-data/a").respond_with_data(
        "", status=503, headers={"Retry-After": "2"})
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("ok")
    client = make_client(httpserver, fake_time)
    assert client.get("/meta-data/a") == b"ok"
    assert fake_time.sleeps == [2.0]


def test_retry_after_http_date_is_honoured(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    when = email.utils.formatdate(fake_time.wall() + 3, usegmt=True)
    httpserver.expect_oneshot_request("/latest/meta-data/a").respond_with_data(
        "", status=429, headers={"Retry-After": when})
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("ok")
    client = make_client(httpserver, fake_time)
    assert client.get("/meta-data/a") == b"ok"
    assert len(fake_time.sleeps) == 1 and 2.0 <= fake_time.sleeps[0] <= 3.0


def test_retry_after_is_capped(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_oneshot_request("/latest/meta-data/a").respond_with_data(
        "", status=503, headers={"Retry-After": "3600"})
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("ok")
    make_client(httpserver, fake_time).get("/meta-data/a")
    assert fake_time.sleeps == [RetryPolicy.retry_after_cap]


def test_persistent_503_gives_up_after_retries(httpserver: HTTPServer,
                                               fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("", status=503)
    client = make_client(httpserver, fake_time, retries=2)
    with pytest.raises(SourceError, match="gave up after 3 attempts"):
        client.get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/meta-data/a")) == 3


def test_404_is_not_retried(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/nope").respond_with_data("", status=404)
    client = make_client(httpserver, fake_time)
    with pytest.raises(NotFound):
        client.get("/meta-data/nope")
    assert len(requests_to(httpserver, "/latest/meta-data/nope")) == 1
    assert fake_time.sleeps == []


def test_other_4xx_is_not_retried(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("", status=403)
    with pytest.raises(SourceError, match="HTTP 403"):
        make_client(httpserver, fake_time).get("/meta-data/a")
    assert len(requests_to(httpserver, "/latest/meta-data/a")) == 1


def test_redirect_is_not_followed(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    target = httpserver.url_for("/elsewhere")
    httpserver.expect_request("/latest/meta-data/a").respond_with_data(
        "", status=302, headers={"Location": target})
    httpserver.expect_request("/elsewhere").respond_with_data("stolen")
    with pytest.raises(SourceError, match="redirect"):
        make_client(httpserver, fake_time).get("/meta-data/a")
    assert not requests_to(httpserver, "/elsewhere")
    assert len(requests_to(httpserver, "/latest/meta-data/a")) == 1


def test_environment_proxy_is_ignored(httpserver: HTTPServer, fake_time: FakeTime,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = HTTPServer(host="127.0.0.1", port=0)
    proxy.start()
    try:
        proxy.expect_request("").respond_with_data("proxied")
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.url_for("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        expect_token(httpserver)
        httpserver.expect_request("/latest/meta-data/a").respond_with_data("direct")
        assert make_client(httpserver, fake_time).get("/meta-data/a") == b"direct"
        assert proxy.log == []
    finally:
        proxy.clear()
        proxy.stop()


def test_leaf_body_cap(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/big").respond_with_data("x" * 2048)
    client = make_client(httpserver, fake_time, max_leaf_bytes=1024)
    with pytest.raises(SourceError, match="1024-byte cap") as info:
        client.get("/meta-data/big")
    assert "/meta-data/big" in str(info.value)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_boot_wait_then_unavailable(fake_time: FakeTime) -> None:
    port = free_port()  # nothing listens: connection refused
    client = ImdsClient(ImdsSettings(boot_wait=3.0, retries=1), endpoint=f"http://127.0.0.1:{port}",
                        environ={}, clock=fake_time.clock, wall=fake_time.wall,
                        sleep=fake_time.sleep, rand=lambda: 1.0)
    with pytest.raises(SourceUnavailable, match="no answer from IMDS") as info:
        client.get("/meta-data/a")
    assert info.value.exit_code == 3
    assert 3.0 <= fake_time.now - 1000.0 <= 3.5  # waited the boot wait, not longer


def test_metadata_disabled_fails_fast() -> None:
    with pytest.raises(SourceUnavailable, match="AWS_EC2_METADATA_DISABLED"):
        ImdsClient(ImdsSettings(), environ={"AWS_EC2_METADATA_DISABLED": "true"})


def test_tests_cannot_reach_the_real_imds() -> None:
    """The autouse guard in conftest refuses the link-local address before any packet."""
    host = IPV4_ENDPOINT.split("//")[1]
    with pytest.raises(AssertionError, match="loopback only"):
        socket.create_connection((host, 80), timeout=0.1)


def test_429_halves_the_concurrency(httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_oneshot_request("/latest/meta-data/a").respond_with_data("", status=429)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("ok")
    client = ImdsClient(ImdsSettings(), endpoint=httpserver.url_for("").rstrip("/"), environ={},
                        concurrency=8, clock=fake_time.clock, wall=fake_time.wall,
                        sleep=fake_time.sleep, rand=lambda: 1.0)
    assert client.limit.limit == 8
    assert client.get("/meta-data/a") == b"ok"
    assert client.limit.limit == 4


def refused_client(fake_time: FakeTime, **settings: object) -> ImdsClient:
    """A client of a port nobody listens on: every attempt is refused at once."""
    return ImdsClient(ImdsSettings(**settings), endpoint=f"http://127.0.0.1:{free_port()}",  # type: ignore[arg-type]
                      environ={}, clock=fake_time.clock, wall=fake_time.wall,
                      sleep=fake_time.sleep, rand=lambda: 1.0)


def test_a_dead_imds_at_boot_logs_the_first_failure_summaries_and_the_outcome(
        fake_time: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="imdsrender.imds")
    client = refused_client(fake_time, boot_wait=60.0)
    with pytest.raises(SourceUnavailable):
        client.wait_until_ready()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("imdsrender.imds")]
    assert len(fake_time.sleeps) > 20  # many attempts ...
    assert sum("not answering yet" in line for line in lines) == 1  # ... one line for the first
    assert 4 <= sum("still not answering" in line for line in lines) <= 6  # one per ~10 s
    assert "did not answer within 60" in lines[-1]
    assert len(lines) <= 8


def test_imds_coming_up_after_a_wait_logs_the_outcome(
        httpserver: HTTPServer, fake_time: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    expect_token(httpserver)
    client = make_client(httpserver, fake_time)
    real = client._attempt
    refused = [True] * 5  # the token request's 4 attempts, then one more

    def attempt(*args: object, **kwargs: object) -> object:
        if refused:
            refused.pop()
            raise client_module._Retryable("connection failed: refused", connect=True)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    client._attempt = attempt  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="imdsrender.imds")
    client.wait_until_ready()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("imdsrender.imds")]
    assert len(lines) == 2 and "not answering yet" in lines[0]
    assert "IMDS answered after" in lines[1]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirected_token_request_is_refused_like_any_other_exit_3(
        httpserver: HTTPServer, fake_time: FakeTime, status: int) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data(
        "", status=status, headers={"Location": "http://127.0.0.1:9/latest/api/token"})
    with pytest.raises(SourceUnavailable, match=f"redirected \\(HTTP {status}\\)") as info:
        make_client(httpserver, fake_time).wait_until_ready()
    assert info.value.exit_code == 3 and info.value.hint == TOKEN_REFUSED_HINT


def test_a_token_request_answered_500_says_it_answered(httpserver: HTTPServer,
                                                       fake_time: FakeTime) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data(
        "", status=500)
    with pytest.raises(SourceUnavailable) as info:
        make_client(httpserver, fake_time, retries=3).wait_until_ready()
    assert info.value.what == "IMDS answered HTTP 500 to the token request 4 times"
    assert info.value.hint == TOKEN_REFUSED_HINT and info.value.exit_code == 3
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == 4


def test_persistent_503_counts_the_attempts_it_made(httpserver: HTTPServer,
                                                   fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("", status=503)
    with pytest.raises(SourceError) as info:
        make_client(httpserver, fake_time, retries=1).get("/meta-data/a")
    assert info.value.what == "gave up after 2 attempts (HTTP 503)"


def test_no_request_outlives_the_run_deadline(httpserver: HTTPServer,
                                             fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/meta-data/a").respond_with_data("1")
    client = make_client(httpserver, fake_time, run_timeout=5.0)
    assert client.get("/meta-data/a") == b"1"
    fake_time.now += 3600  # no run begun: only per-request deadlines apply
    assert client.get("/meta-data/a") == b"1"
    client.begin_run()
    fake_time.now += 6  # the run's 5 s are gone: the request is not even sent
    sent = len(httpserver.log)
    with pytest.raises(SourceError) as caught:
        client.get("/meta-data/a")
    assert str(caught.value) == (
        "/meta-data/a: not sent (the run's deadline had passed); the whole run took longer "
        "than imds.run_timeout; raise it, or lower the number of keys")
    assert len(httpserver.log) == sent
    client.begin_run()  # the next poll starts a new run
    assert client.get("/meta-data/a") == b"1"


# What the client reports to its Observer (the metrics hooks): each attempt
# once with operation, path, status and seconds on the client clock; each
# retry with its reason; each new token once.
class Recorder(Observer):
    def __init__(self) -> None:
        self.calls: List[Tuple[object, ...]] = []

    def request(self, operation: str, path: str, status: Optional[int], seconds: float) -> None:
        self.calls.append(("request", operation, path, status, seconds))

    def retry(self, operation: str, reason: str) -> None:
        self.calls.append(("retry", operation, reason))

    def token_refresh(self) -> None:
        self.calls.append(("token_refresh",))


def test_each_attempt_retry_and_token_is_reported_with_its_arguments(
        httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)

    def slow_busy(request: Request) -> Response:
        fake_time.now += 2.5  # the attempt takes 2.5 s on the client's clock
        return Response("busy", status=503)

    httpserver.expect_oneshot_request("/latest/meta-data/x").respond_with_handler(slow_busy)
    httpserver.expect_request("/latest/meta-data/x").respond_with_data("v")
    client = make_client(httpserver, fake_time)
    client.observer = recorder = Recorder()

    assert client.get("/meta-data/x") == b"v"
    assert recorder.calls == [
        ("request", "token", "/latest/api/token", 200, 0.0),
        ("token_refresh",),
        ("request", "get", "/latest/meta-data/x", 503, 2.5),
        ("retry", "get", "HTTP 503"),
        ("request", "get", "/latest/meta-data/x", 200, 0.0),
    ]


REDIRECT_HINT = "IMDS never redirects; check --endpoint and any proxy in the way"


@pytest.mark.parametrize("status, headers, message", [
    (299, {}, "/s: unexpected HTTP 299; see the debug log for the answer"),
    (300, {"Location": "http://x/"},
     f"/s: redirect (HTTP 300) to http://x/ refused; {REDIRECT_HINT}"),
    (399, {}, f"/s: redirect (HTTP 399) to elsewhere refused; {REDIRECT_HINT}"),
    (400, {}, "/s: unexpected HTTP 400; see the debug log for the answer"),
])
def test_each_non_200_answer_to_a_get_says_what_it_was(httpserver: HTTPServer,
                                                        fake_time: FakeTime, status: int,
                                                        headers: dict, message: str) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/s").respond_with_data("b", status=status, headers=headers)
    with pytest.raises(SourceError) as caught:
        make_client(httpserver, fake_time).get("/s")
    assert not isinstance(caught.value, NotFound)
    assert str(caught.value) == message
    assert len(requests_to(httpserver, "/latest/s")) == 1  # never retried


def test_a_declared_length_one_past_the_cap_is_refused_at_the_cap_it_is_read(
        httpserver: HTTPServer, fake_time: FakeTime) -> None:
    expect_token(httpserver)
    httpserver.expect_request("/latest/at").respond_with_data("x" * 1024)
    httpserver.expect_request("/latest/past").respond_with_data("x" * 1025)
    client = make_client(httpserver, fake_time, max_leaf_bytes=1024)
    assert client.get("/at") == b"x" * 1024
    with pytest.raises(SourceError) as caught:
        client.get("/past")
    assert str(caught.value) == ("/latest/past: answer of 1025 bytes exceeds the 1024-byte cap; "
                                 "this path is too large to render")


def test_an_answer_cut_by_the_deadline_says_so(fake_time: FakeTime) -> None:
    """The deadline passes after the status line: the next read fails at once, and
    the message names the deadline, not a read timeout."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held: List[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        held.append(conn)
        while True:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(4096)
                if not more:
                    return
                data += more
            if data.startswith(b"PUT"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                             b"X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\ntok")
                continue
            fake_time.now += 1000  # the deadline passes while the answer is under way
            conn.sendall(b"HTTP/1.1 200 OK\r\n")  # ...and nothing more, ever
            return

    threading.Thread(target=serve, daemon=True).start()
    client = ImdsClient(ImdsSettings(timeout=1.0, retries=0, boot_wait=5.0),
                        endpoint=f"http://127.0.0.1:{srv.getsockname()[1]}", environ={},
                        clock=fake_time.clock, wall=fake_time.wall, sleep=fake_time.sleep,
                        rand=lambda: 1.0)
    try:
        with pytest.raises(SourceError) as caught:
            client.get("/x")
    finally:
        srv.close()
        for conn in held:
            conn.close()
    assert str(caught.value) == ("/x: gave up after 1 attempt (no complete answer before the "
                                 "deadline); IMDS is unhealthy or throttling; try again later")


@pytest.mark.parametrize("retries, times", [(0, "once"), (2, "3 times")])
def test_a_token_request_that_keeps_failing_says_how_often(httpserver: HTTPServer,
                                                           fake_time: FakeTime, retries: int,
                                                           times: str) -> None:
    httpserver.expect_request("/latest/api/token", method="PUT").respond_with_data(
        "busy", status=503)
    client = make_client(httpserver, fake_time, retries=retries)
    with pytest.raises(SourceUnavailable) as caught:
        client.get("/x")
    endpoint = httpserver.url_for("").rstrip("/")
    assert str(caught.value) == (
        f"{endpoint}: IMDS answered HTTP 503 to the token request {times}; IMDS or something "
        "in front of it is misbehaving; check --endpoint and any proxy in the way, then try "
        "again later")
    assert len(requests_to(httpserver, "/latest/api/token", "PUT")) == retries + 1
