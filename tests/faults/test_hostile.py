"""Hostile answers no HTTP library sends: dripped headers, huge numbers, cut chunked bodies.

Each runs the real CLI against :class:`HostileImds` with ``--timeout 1s
--boot-wait 2s``: one bad answer fails its key (or, on the token, the run
with exit 3), the unrelated resource is written, never a traceback, and
nothing runs on past its deadline (``run_cli``'s timeout is the hang
detector, not a performance assert).  CI runs this file on urllib3 1.26 and 2.x.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

from tests.helpers import ConfDir, run_cli

from .hostile import Answer, HostileImds, ok

ID_PATH = "/latest/meta-data/instance-id"
REGION = b"eu-west-1"
OLD = b"old\n"
FLAGS = ("--timeout", "1s", "--boot-wait", "2s")
HANG = 45  # seconds: far past every deadline these flags allow
HUGE = "9" * 5000  # past int()'s 4300-digit limit
PAD = "X-Pad: " + "x" * 200  # dripped at 0.5 s a byte, a head that takes minutes


def dripped(body: bytes) -> Answer:
    """A well-formed answer whose status line and headers come one byte per 0.5 s."""
    return Answer(ok(body, PAD), 0.5)


def run(tmp_path: Path, answers: Dict[Tuple[str, str], Answer]) -> Tuple[object, ConfDir,
                                                                         HostileImds]:
    """``--onetime`` with two resources: out/id (the hostile key) and out/region."""
    confdir = ConfDir(tmp_path)
    confdir.out.mkdir(parents=True, exist_ok=True)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}')
    confdir.resource("region.j2", '{{ getv("/meta-data/placement/region") }}')
    for name in ("id", "region"):
        confdir.dest(name).write_bytes(OLD)
    served = {("GET", "/latest/meta-data/placement/region"): Answer(ok(REGION)), **answers}
    with HostileImds(served) as imds:
        done = run_cli("--onetime", "--confdir", confdir.path, "--endpoint", imds.url, *FLAGS,
                       timeout=HANG)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    return done, confdir, imds


def key_failed(tmp_path: Path, answer: Answer, *fragments: str) -> None:
    """*answer* on instance-id fails that resource alone: exit 1, region written."""
    done, confdir, _ = run(tmp_path, {("GET", ID_PATH): answer})
    assert done.returncode == 1, done.stderr  # type: ignore[attr-defined]
    assert confdir.dest("id").read_bytes() == OLD
    assert confdir.dest("region").read_bytes() == REGION
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr  # type: ignore[attr-defined]


def test_slow_headers_on_the_token_request_end_within_boot_wait(tmp_path: Path) -> None:
    done, confdir, imds = run(tmp_path, {("PUT", "/latest/api/token"): dripped(b"t")})
    assert done.returncode == 3, done.stderr  # type: ignore[attr-defined]
    assert imds.count("PUT", "/latest/api/token") == 1
    assert confdir.dest("region").read_bytes() == OLD


def test_slow_headers_on_one_key_fail_that_key_at_its_deadline(tmp_path: Path) -> None:
    key_failed(tmp_path, dripped(b"i-1"), "/meta-data/instance-id", "gave up after 1 ",
               "deadline reached")


def test_slow_headers_end_get_within_its_deadline() -> None:
    with HostileImds({("GET", ID_PATH): dripped(b"i-1")}) as imds:
        done = run_cli("get", "--endpoint", imds.url, *FLAGS, "/meta-data/instance-id",
                       timeout=HANG)
    assert done.returncode == 1, done.stderr
    assert "deadline reached" in done.stderr and "Traceback" not in done.stderr


def test_truncated_chunked_body_fails_that_key(tmp_path: Path) -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ni-01"
    key_failed(tmp_path, Answer(cut), "/meta-data/instance-id", "gave up after 4 attempts")


def test_huge_content_length_fails_that_key(tmp_path: Path) -> None:
    raw = f"HTTP/1.1 200 OK\r\nContent-Length: {HUGE}\r\n\r\ni-1".encode()
    key_failed(tmp_path, Answer(raw), "/meta-data/instance-id", "exceeds the")


def test_huge_retry_after_fails_that_key_and_says_why(tmp_path: Path) -> None:
    raw = f"HTTP/1.1 503 Busy\r\nRetry-After: {HUGE}\r\nContent-Length: 0\r\n\r\n".encode()
    key_failed(tmp_path, Answer(raw), "gave up after 2 attempts",
               "Retry-After (too large to read) exceeds the deadline")


def test_huge_token_ttl_header_means_the_ttl_asked_for(tmp_path: Path) -> None:
    token = ok(b"AQAEAtoken==", f"X-aws-ec2-metadata-token-ttl-seconds: {HUGE}")
    done, confdir, _ = run(tmp_path, {("PUT", "/latest/api/token"): Answer(token),
                                      ("GET", ID_PATH): Answer(ok(b"i-1"))})
    assert done.returncode == 0, done.stderr  # type: ignore[attr-defined]
    assert confdir.dest("id").read_bytes() == b"i-1"
    assert confdir.dest("region").read_bytes() == REGION
