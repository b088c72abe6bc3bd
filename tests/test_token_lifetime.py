"""The IMDSv2 token's lifetime and single-flight renewal (issue 19, survivors 7-8).

The client talks to an in-memory pool whose handler can move the clock or
run another thread mid-request, so "when was the PUT sent" and "another
thread renewed while my request was out" are exact, with no sleeps.
"""

from __future__ import annotations

import io
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from urllib3._collections import HTTPHeaderDict

from imdsrender.imds import client
from imdsrender.model import ImdsSettings

TOKEN_PATH = "/latest/api/token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
Answer = Tuple[int, bytes, Dict[str, Optional[str]]]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reply:
    """Just enough of urllib3's HTTPResponse for the client.

    Headers are case-insensitive as urllib3's are; a ``None`` header value
    leaves the header out (no Content-Length); *on_read* runs before each
    chunk is handed over (tests move the clock there).
    """

    def __init__(self, status: int, body: bytes, headers: Dict[str, Optional[str]],
                 on_read: Callable[[], None] = lambda: None) -> None:
        self.status = status
        given = {"Content-Length": str(len(body)), **headers}
        self.headers = HTTPHeaderDict({k: v for k, v in given.items() if v is not None})
        self._body = io.BytesIO(body)
        self._on_read = on_read

    def read1(self, n: int) -> bytes:
        self._on_read()
        return self._body.read(n)

    def read(self) -> bytes:
        return self._body.read()

    def release_conn(self) -> None:
        pass

    def close(self) -> None:
        pass


class Pool:
    """Answers requests with *handler(method, path, headers)*; logs every request.

    The handler returns (status, body, headers) or a ready Reply, or raises
    (a urllib3 error stands for a network failure).  ``kwargs`` keeps the
    keyword arguments of every request.
    """

    def __init__(self, handler: Callable[[str, str, Dict[str, str]], Any]) -> None:
        self.handler = handler
        self.log: List[Tuple[str, str, Optional[str]]] = []
        self.kwargs: List[Dict[str, object]] = []
        self._lock = threading.Lock()

    def request(self, method: str, url: str, headers: Dict[str, str], **kw: object) -> Reply:
        path = "/" + url.split("://", 1)[1].split("/", 1)[1]
        with self._lock:
            self.log.append((method, path, headers.get("X-aws-ec2-metadata-token")))
            self.kwargs.append(kw)
        answer = self.handler(method, path, headers)
        return answer if isinstance(answer, Reply) else Reply(*answer)

    def puts(self) -> int:
        return sum(1 for method, path, _ in self.log if method == "PUT" and path == TOKEN_PATH)


def make_client(pool: Pool, clock: Clock, ttl: int = 21600) -> client.ImdsClient:
    """A client whose request deadline (30 s) and boot wait outlast the slow PUT below."""
    settings = ImdsSettings(token_ttl=ttl, timeout=30.0, retries=0, boot_wait=60.0)
    return client.ImdsClient(settings, endpoint="http://127.0.0.1:9", pool=pool,  # type: ignore[arg-type]
                             environ={}, clock=clock, sleep=lambda s: None, rand=lambda: 0.0)


def test_lifetime_counts_from_when_the_put_was_sent() -> None:
    """A token PUT that takes 20 s to answer has 20 s less to live.

    Granted 60 s, the token may be used until 60 - min(60, 30) = 30 s after
    the PUT was *sent*: 10 s after the slow answer, not 30 s after it.
    """
    clock = Clock()
    tokens = iter(["token-1", "token-2"])

    def handler(method: str, path: str, headers: Dict[str, str]) -> Answer:
        if method == "PUT":
            clock.now += 20.0  # the answer arrives 20 s after the PUT left
            return 200, next(tokens).encode(), {TTL_HEADER: "60"}
        return 200, headers["X-aws-ec2-metadata-token"].encode(), {}

    pool = Pool(handler)
    imds = make_client(pool, clock, ttl=60)
    sent = clock.now
    assert imds.get("/meta-data/instance-id") == b"token-1"

    clock.now = sent + 29.0
    assert imds.get("/meta-data/instance-id") == b"token-1"
    assert pool.puts() == 1

    clock.now = sent + 30.0  # 10 s after the answer: already too old to send
    assert imds.get("/meta-data/instance-id") == b"token-2"
    assert pool.puts() == 2


def test_late_401_after_another_thread_renewed_costs_no_extra_put() -> None:
    """Thread A's request with the old token comes back 401 after thread B renewed.

    A must retry with B's token: forgetting B's fresh token too would send a
    third PUT, and under load every late 401 would start another renewal.
    """
    clock = Clock()
    tokens = iter(["old", "new", "extra"])
    b_result: List[bytes] = []
    imds: Optional[client.ImdsClient] = None

    def thread_b() -> None:
        assert imds is not None
        b_result.append(imds.get("/meta-data/b"))

    def handler(method: str, path: str, headers: Dict[str, str]) -> Answer:
        if method == "PUT":
            return 200, next(tokens).encode(), {TTL_HEADER: "21600"}
        token = headers.get("X-aws-ec2-metadata-token")
        if path == "/latest/meta-data/a" and token == "old":
            # While A's request is out, the old token goes stale and B renews it.
            clock.now += 21600.0
            other = threading.Thread(target=thread_b)
            other.start()
            other.join(timeout=30)
            return 401, b"", {}
        return 200, f"{path}:{token}".encode(), {}

    pool = Pool(handler)
    imds = make_client(pool, clock)
    result = imds.get("/meta-data/a")

    assert b_result == [b"/latest/meta-data/b:new"]
    assert result == b"/latest/meta-data/a:new"
    assert pool.puts() == 2
    assert [entry for entry in pool.log if entry[0] == "GET"] == [
        ("GET", "/latest/meta-data/a", "old"),
        ("GET", "/latest/meta-data/b", "new"),
        ("GET", "/latest/meta-data/a", "new"),
    ]
