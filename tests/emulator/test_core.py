"""The emulator core on the wire (loopback only): answers, tokens, faults, counters, framing."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Callable, Dict, List, Optional, Tuple

import pytest

from imdsrender.emulator import TTL_HEADER, Emulator, serve
from imdsrender.errors import UsageError
from imdsrender.fixture import (
    FixtureError,
    default_fixture,
    dump_fixture,
    load_fixture,
    parse_fixture,
)

Response = Tuple[int, Dict[str, str], bytes]
NOT_FOUND_TITLE = b"<title>404 - Not Found</title>"


def call(emu: Emulator, method: str, path: str, headers: Optional[Dict[str, str]] = None,
         timeout: float = 5.0) -> Response:
    """One request on a fresh connection: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def put_token(emu: Emulator, ttl: str = "21600",
              extra: Optional[Dict[str, str]] = None) -> Response:
    headers = {TTL_HEADER: ttl}
    headers.update(extra or {})
    return call(emu, "PUT", "/latest/api/token", headers)


def token(emu: Emulator, ttl: str = "21600") -> str:
    status, _, body = put_token(emu, ttl)
    assert status == 200
    return body.decode()


def get(emu: Emulator, path: str, tok: Optional[str] = None) -> Response:
    """GET with a fresh token unless *tok* is given ("" sends none)."""
    if tok is None:
        tok = token(emu)
    headers = {"X-aws-ec2-metadata-token": tok} if tok else {}
    return call(emu, "GET", path, headers)


def body_of(emu: Emulator, path: str) -> bytes:
    status, _, body = get(emu, path)
    assert status == 200, (path, status)
    return body


def raw_exchange(port: int, request: bytes) -> Tuple[bytes, Optional[BaseException]]:
    """Send raw bytes, read until EOF or error: (bytes received, error or None)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return data, None
                data += chunk
        except OSError as exc:
            return data, exc


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SleepLog:
    """An injected sleep that records durations and returns at once."""

    def __init__(self) -> None:
        self.calls: List[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


# ---------------------------------------------------------------- token PUT


def test_token_put_grants_the_requested_ttl(emulator: Emulator) -> None:
    status, headers, body = put_token(emulator, "300")
    assert status == 200
    assert headers[TTL_HEADER.lower()] == "300"
    assert len(body) >= 40 and body.isascii()
    assert put_token(emulator, "300")[2] != body      # a new token each time


@pytest.mark.parametrize("ttl", ["1", "21600", " 60 "])
def test_token_ttl_in_bounds_is_accepted(emulator: Emulator, ttl: str) -> None:
    status, headers, _ = put_token(emulator, ttl)
    assert (status, headers[TTL_HEADER.lower()]) == (200, ttl.strip())


@pytest.mark.parametrize("ttl", ["0", "21601", "-1", "abc", "", "1.5", "+5", "\u00b2"])
def test_token_ttl_out_of_bounds_or_malformed_is_400(emulator: Emulator, ttl: str) -> None:
    status, headers, body = put_token(emulator, ttl)
    assert status == 400
    assert b"400 - Bad Request" in body and headers["content-type"] == "text/html"


def test_token_put_without_ttl_header_is_400(emulator: Emulator) -> None:
    assert call(emulator, "PUT", "/latest/api/token")[0] == 400


def test_token_put_with_x_forwarded_for_is_403(emulator: Emulator) -> None:
    status, _, body = put_token(emulator, "60", {"X-Forwarded-For": "10.0.0.1"})
    assert status == 403 and b"403 - Forbidden" in body


def test_max_ttl_caps_the_granted_ttl(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(max_ttl=60)
    assert put_token(emu, "21600")[1][TTL_HEADER.lower()] == "60"
    assert put_token(emu, "30")[1][TTL_HEADER.lower()] == "30"


def test_omit_ttl_header(emulator: Emulator) -> None:
    emulator.omit_ttl_header = True
    status, headers, body = put_token(emulator, "60")
    assert status == 200 and body
    assert TTL_HEADER.lower() not in headers


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_token_path_is_put_only(emulator: Emulator, method: str) -> None:
    status, headers, _ = call(emulator, method, "/latest/api/token", {TTL_HEADER: "60"})
    assert status == 405 and headers["allow"] == "PUT"


# ---------------------------------------------------------------- token checks


def test_get_without_token_is_401(emulator: Emulator) -> None:
    status, headers, body = get(emulator, "/latest/meta-data/instance-id", tok="")
    assert status == 401 and b"401 - Unauthorized" in body


def test_get_with_unknown_token_is_401(emulator: Emulator) -> None:
    assert get(emulator, "/latest/meta-data/instance-id", tok="not-a-token")[0] == 401


def test_token_expires_on_the_injected_clock(make_emulator: Callable[..., Emulator]) -> None:
    clock = FakeClock()
    emu = make_emulator(clock=clock)
    tok = token(emu, "10")
    status, headers, body = get(emu, "/latest/meta-data/instance-id", tok)
    assert (status, body) == (200, b"i-0123456789abcdef0")
    assert headers[TTL_HEADER.lower()] == "10"       # remaining lifetime, like the real service
    clock.now += 9.5
    assert get(emu, "/latest/meta-data/instance-id", tok)[0] == 200
    clock.now += 0.5
    assert get(emu, "/latest/meta-data/instance-id", tok)[0] == 401


def test_revoked_tokens_are_401_and_new_ones_work(emulator: Emulator) -> None:
    tok = token(emulator)
    emulator.revoke_tokens()
    assert get(emulator, "/latest/meta-data/instance-id", tok)[0] == 401
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 200


def test_v1_mode_allows_tokenless_gets_but_not_bad_tokens(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(allow_v1=True)
    status, headers, body = get(emu, "/latest/meta-data/instance-id", tok="")
    assert (status, body) == (200, b"i-0123456789abcdef0")
    assert TTL_HEADER.lower() not in headers
    assert get(emu, "/latest/meta-data/instance-id", tok="bogus")[0] == 401
    assert get(emu, "/latest/meta-data/instance-id")[0] == 200


def test_other_methods_on_data_paths_are_405(emulator: Emulator) -> None:
    headers = {"X-aws-ec2-metadata-token": token(emulator)}
    assert call(emulator, "POST", "/latest/meta-data/instance-id", headers)[0] == 405


# ---------------------------------------------------------------- values and listings


def test_default_fixture_values(emulator: Emulator) -> None:
    expected = {
        "instance-id": b"i-0123456789abcdef0",
        "instance-type": b"t3.micro",
        "ami-id": b"ami-0abcdef1234567890",
        "local-ipv4": b"10.0.1.23",
        "hostname": b"ip-10-0-1-23.ec2.internal",
        "placement/region": b"us-east-1",
        "placement/availability-zone": b"us-east-1a",
        "tags/instance/Name": b"web-1",
        "tags/instance/Environment": b"production",
        "security-groups": b"web\ndefault",
    }
    for key, value in expected.items():
        assert body_of(emulator, "/latest/meta-data/" + key) == value


def test_default_fixture_is_self_consistent() -> None:
    values = default_fixture()
    doc = json.loads(values["/dynamic/instance-identity/document"])
    assert b"\n" in values["/dynamic/instance-identity/document"]    # pretty, multi-line
    assert doc["instanceId"] == values["/meta-data/instance-id"].decode()
    assert doc["region"] == values["/meta-data/placement/region"].decode()
    assert doc["availabilityZone"] == values["/meta-data/placement/availability-zone"].decode()
    assert doc["privateIp"] == values["/meta-data/local-ipv4"].decode()
    assert doc["imageId"] == values["/meta-data/ami-id"].decode()
    creds = json.loads(values["/meta-data/iam/security-credentials/web-role"])
    assert set(creds) == {"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey",
                          "Token", "Expiration"}
    assert "FAKE" in creds["SecretAccessKey"] and "FAKE" in creds["Token"]
    macs = {k.split("/")[5] for k in values if k.startswith("/meta-data/network/interfaces/macs/")}
    assert len(macs) == 2 and values["/meta-data/mac"].decode() in macs


def test_directory_listing_with_and_without_trailing_slash(emulator: Emulator) -> None:
    expected = b"availability-zone\navailability-zone-id\nregion"
    assert body_of(emulator, "/latest/meta-data/placement/") == expected
    assert body_of(emulator, "/latest/meta-data/placement") == expected


def test_listing_is_sorted_with_slash_marked_subdirectories(emulator: Emulator) -> None:
    listing = body_of(emulator, "/latest/meta-data/").decode()
    entries = listing.split("\n")
    assert not listing.endswith("\n")
    assert entries == sorted(entries)
    assert {"placement/", "network/", "tags/", "instance-id", "security-groups"} <= set(entries)
    assert body_of(emulator, "/latest/meta-data/tags/instance/") == (
        b"Environment\nName\ncost=center")
    assert body_of(emulator, "/latest/meta-data/tags/instance/cost=center") == b"cc-1234"


def test_latest_lists_the_roots(emulator: Emulator) -> None:
    assert body_of(emulator, "/latest/") == b"dynamic/\nmeta-data/\nuser-data"
    assert body_of(emulator, "/latest") == b"dynamic/\nmeta-data/\nuser-data"
    assert body_of(emulator, "/") == b"latest"


def test_latest_without_user_data(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(data={"/meta-data/instance-id": "i-1"})
    assert body_of(emu, "/latest/") == b"meta-data/"
    status, _, body = get(emu, "/latest/user-data")
    assert status == 404 and NOT_FOUND_TITLE in body


def test_public_keys_listing_uses_index_equals_name(emulator: Emulator) -> None:
    assert body_of(emulator, "/latest/meta-data/public-keys/") == b"0=web-1-key"
    assert body_of(emulator, "/latest/meta-data/public-keys/0/") == b"openssh-key"
    assert body_of(emulator, "/latest/meta-data/public-keys/0") == b"openssh-key"
    assert body_of(emulator, "/latest/meta-data/public-keys/0/openssh-key").startswith(
        b"ssh-ed25519 ")
    assert get(emulator, "/latest/meta-data/public-keys/0/_name")[0] == 404


def test_public_key_without_name_is_listed_as_directory(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(data={"/meta-data/public-keys/0/openssh-key": "ssh-rsa AAAA a",
                              "/meta-data/public-keys/1/_name": "b",
                              "/meta-data/public-keys/1/openssh-key": "ssh-rsa AAAA b"})
    assert body_of(emu, "/latest/meta-data/public-keys/") == b"0/\n1=b"


def test_empty_directory(emulator: Emulator, make_emulator: Callable[..., Emulator]) -> None:
    assert body_of(emulator, "/latest/meta-data/events/recommendations/") == b""
    assert b"recommendations/" in body_of(emulator, "/latest/meta-data/events/")
    emu = make_emulator(data={"/meta-data/empty/": None, "/latest/meta-data/x": "1"})
    assert body_of(emu, "/latest/meta-data/") == b"empty/\nx"
    assert body_of(emu, "/latest/meta-data/empty") == b""


def test_multi_valued_and_empty_leaves(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(data={"/meta-data/a": "", "/meta-data/b": "x\ny\n"})
    assert body_of(emu, "/latest/meta-data/a") == b""
    assert body_of(emu, "/latest/meta-data/b") == b"x\ny\n"


def test_binary_values_are_served_byte_exact(make_emulator: Callable[..., Emulator]) -> None:
    blob = bytes(range(256))
    emu = make_emulator(data={"/user-data": blob})
    assert body_of(emu, "/latest/user-data") == blob


def test_missing_paths_are_404_with_an_html_page(emulator: Emulator) -> None:
    for path in ("/latest/meta-data/nope", "/latest/meta-data/nope/",
                 "/2009-04-04/meta-data/", "/latest/dynamic/nope/"):
        status, headers, body = get(emulator, path)
        assert status == 404, path
        assert NOT_FOUND_TITLE in body and headers["content-type"] == "text/html"


def test_leaf_answers_with_a_trailing_slash(emulator: Emulator) -> None:
    # The real service does, and botocore relies on it (placement/availability-zone/).
    assert body_of(emulator, "/latest/meta-data/instance-id/") == b"i-0123456789abcdef0"


def test_query_string_is_ignored(emulator: Emulator) -> None:
    assert body_of(emulator, "/latest/meta-data/instance-id?x=1") == b"i-0123456789abcdef0"


def test_head_answers_headers_only(emulator: Emulator) -> None:
    headers = {"X-aws-ec2-metadata-token": token(emulator)}
    status, got, body = call(emulator, "HEAD", "/latest/meta-data/instance-id", headers)
    assert (status, got["content-length"], body) == (200, "19", b"")


def test_set_value_changes_adds_and_deletes(emulator: Emulator) -> None:
    emulator.set_value("/meta-data/instance-id", "i-new")
    assert body_of(emulator, "/latest/meta-data/instance-id") == b"i-new"
    emulator.set_value("/latest/meta-data/tags/instance/Team", b"core")
    assert body_of(emulator, "/latest/meta-data/tags/instance/Team") == b"core"
    assert b"Team" in body_of(emulator, "/latest/meta-data/tags/instance")
    emulator.set_value("/meta-data/tags/instance/Team", None)
    assert get(emulator, "/latest/meta-data/tags/instance/Team")[0] == 404
    assert b"Team" not in body_of(emulator, "/latest/meta-data/tags/instance")
    emulator.set_value("/meta-data/placement/region", None)
    emulator.set_value("/meta-data/placement/availability-zone", None)
    emulator.set_value("/meta-data/placement/availability-zone-id", None)
    assert get(emulator, "/latest/meta-data/placement/")[0] == 404


def test_set_value_refuses_an_inconsistent_tree(emulator: Emulator) -> None:
    with pytest.raises(FixtureError, match="both a value and a directory"):
        emulator.set_value("/meta-data/instance-id/sub", "x")
    assert body_of(emulator, "/latest/meta-data/instance-id") == b"i-0123456789abcdef0"


# ---------------------------------------------------------------- latency


def test_latency_is_slept_before_each_answer(make_emulator: Callable[..., Emulator]) -> None:
    sleeps = SleepLog()
    emu = make_emulator(latency_ms=250, sleep=sleeps)
    tok = token(emu)
    get(emu, "/latest/meta-data/instance-id", tok)
    assert sleeps.calls == [0.25, 0.25]


# ---------------------------------------------------------------- faults


def test_status_fault_for_the_first_n_requests(emulator: Emulator) -> None:
    emulator.add_fault("/latest/meta-data/instance-id", status=500, times=2)
    tok = token(emulator)
    results = [get(emulator, "/latest/meta-data/instance-id", tok) for _ in range(3)]
    assert [r[0] for r in results] == [500, 500, 200]
    assert b"500 - Internal Server Error" in results[0][2]


def test_status_fault_with_headers_and_body(emulator: Emulator) -> None:
    emulator.add_fault("/meta-data/instance-id", status=429, headers={"Retry-After": "3"})
    emulator.add_fault("/meta-data/ami-id", status=301,
                       headers={"Location": "http://127.0.0.1:1/elsewhere"})
    emulator.add_fault("/meta-data/hostname", status=503, body=b"busy")
    status, headers, _ = get(emulator, "/latest/meta-data/instance-id")
    assert (status, headers["retry-after"]) == (429, "3")
    status, headers, body = get(emulator, "/latest/meta-data/ami-id")
    assert (status, headers["location"], body) == (301, "http://127.0.0.1:1/elsewhere", b"")
    assert get(emulator, "/latest/meta-data/hostname")[::2] == (503, b"busy")


def test_body_and_header_faults_keep_the_normal_status(emulator: Emulator) -> None:
    emulator.add_fault("/latest/api/token", method="PUT", headers={TTL_HEADER: "5"})
    emulator.add_fault("/meta-data/instance-id", body=b"i-other")
    status, headers, tok = put_token(emulator, "21600")
    assert (status, headers[TTL_HEADER.lower()]) == (200, "5")
    assert get(emulator, "/latest/meta-data/instance-id", tok.decode())[::2] == (200, b"i-other")


def test_status_fault_skips_the_token_check(emulator: Emulator) -> None:
    emulator.add_fault("/meta-data/instance-id", status=200, body=b"x")
    assert get(emulator, "/latest/meta-data/instance-id", tok="")[::2] == (200, b"x")


def test_glob_and_method_matching(emulator: Emulator) -> None:
    emulator.add_fault("/latest/meta-data/placement/*", status=503)
    emulator.add_fault("/latest/api/token", method="PUT", status=404, times=1)
    assert put_token(emulator)[0] == 404
    tok = token(emulator)
    assert get(emulator, "/latest/meta-data/placement/region", tok)[0] == 503
    assert get(emulator, "/latest/meta-data/placement/", tok)[0] == 503   # * matches ""
    assert get(emulator, "/latest/meta-data/placement", tok)[0] == 200
    assert get(emulator, "/latest/meta-data/instance-id", tok)[0] == 200


def test_first_matching_fault_wins_and_clear_faults(emulator: Emulator) -> None:
    emulator.add_fault("/meta-data/instance-id", status=500, times=1)
    emulator.add_fault("*", method="*", status=502)
    assert get(emulator, "/latest/meta-data/instance-id", tok="")[0] == 500
    assert get(emulator, "/latest/meta-data/instance-id", tok="")[0] == 502
    assert put_token(emulator)[0] == 502
    emulator.clear_faults()
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 200


def test_delay_fault_outlasts_the_read_timeout(make_emulator: Callable[..., Emulator]) -> None:
    release = threading.Event()
    emu = make_emulator(allow_v1=True, sleep=lambda s: release.wait(10))
    emu.add_fault("/meta-data/instance-id", delay=30, times=1)
    try:
        with pytest.raises(socket.timeout):
            call(emu, "GET", "/latest/meta-data/instance-id", timeout=0.2)
    finally:
        release.set()
    assert emu.count("GET", "/latest/meta-data/instance-id") == 1   # counted before the wait


def test_delay_adds_to_latency(make_emulator: Callable[..., Emulator]) -> None:
    sleeps = SleepLog()
    emu = make_emulator(allow_v1=True, latency_ms=100, sleep=sleeps)
    emu.add_fault("/meta-data/instance-id", delay=2.0)
    assert call(emu, "GET", "/latest/meta-data/instance-id")[0] == 200
    assert sleeps.calls == [pytest.approx(2.1)]


def test_reset_fault_resets_instead_of_answering(emulator: Emulator) -> None:
    emulator.allow_v1 = True
    emulator.add_fault("/meta-data/instance-id", reset=True, times=1)
    data, error = raw_exchange(emulator.port, b"GET /latest/meta-data/instance-id HTTP/1.1\r\n"
                                              b"Host: x\r\n\r\n")
    assert data == b"" and isinstance(error, ConnectionResetError)
    assert emulator.requests[-1].status == 0
    assert get(emulator, "/latest/meta-data/instance-id", tok="")[0] == 200


def test_reset_fault_with_body_resets_mid_body(emulator: Emulator) -> None:
    emulator.add_fault("/meta-data/ami-id", status=200, body=b"0123456789", reset=True)
    data, error = raw_exchange(emulator.port, b"GET /latest/meta-data/ami-id HTTP/1.1\r\n"
                                              b"Host: x\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 10" in head
    assert body == b"01234" and isinstance(error, ConnectionResetError)


def test_drip_fault_sends_the_body_byte_by_byte(make_emulator: Callable[..., Emulator]) -> None:
    sleeps = SleepLog()
    emu = make_emulator(allow_v1=True, sleep=sleeps)
    emu.add_fault("/meta-data/instance-id", drip=0.01)
    status, _, body = call(emu, "GET", "/latest/meta-data/instance-id")
    assert (status, body) == (200, b"i-0123456789abcdef0")
    assert sleeps.calls == [0.01] * len(body)


def test_short_body_fault(emulator: Emulator) -> None:
    emulator.allow_v1 = True
    emulator.add_fault("/meta-data/instance-id", short_body=True)
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        conn.request("GET", "/latest/meta-data/instance-id")
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(len(b"i-0123456789abcdef0") + 16)
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial == b"i-0123456789abcdef0"
    finally:
        conn.close()


def test_close_fault_announces_and_closes(emulator: Emulator) -> None:
    emulator.allow_v1 = True
    emulator.add_fault("/meta-data/instance-id", close=True)
    request = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n"
    data, error = raw_exchange(emulator.port, request * 2)    # the 2nd is never answered
    assert error is None and data.count(b"HTTP/1.1 200 OK") == 1
    assert b"\r\nConnection: close\r\n" in data and data.endswith(b"i-0123456789abcdef0")


def test_http10_fault(emulator: Emulator) -> None:
    emulator.allow_v1 = True
    emulator.add_fault("/meta-data/instance-id", http10=True)
    request = b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n"
    data, error = raw_exchange(emulator.port, request * 2)
    assert error is None and data.startswith(b"HTTP/1.0 200 OK\r\n")
    assert data.count(b"HTTP/1.") == 1 and b"\r\nConnection: close\r\n" in data


# ---------------------------------------------------------------- counters


def test_request_log_and_counts(emulator: Emulator) -> None:
    tok = token(emulator, "60")
    get(emulator, "/latest/meta-data/instance-id", tok)
    get(emulator, "/latest/meta-data/nope", tok)
    assert emulator.count() == 3
    assert emulator.count("PUT") == 1
    assert emulator.count("get", "/meta-data/instance-id") == 1
    assert emulator.count(path="/latest/meta-data/*") == 2
    put, first, missing = emulator.requests
    assert (put.method, put.path, put.status) == ("PUT", "/latest/api/token", 200)
    assert put.header(TTL_HEADER) == "60"
    assert first.header("x-aws-ec2-metadata-token") == tok
    assert missing.status == 404
    emulator.reset_counters()
    assert emulator.count() == 0 and emulator.requests == [] and emulator.max_in_flight == 0


def test_keep_alive_serves_many_requests_on_one_connection(emulator: Emulator) -> None:
    tok = token(emulator)
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        for key in ("instance-id", "ami-id", "instance-type"):
            conn.request("GET", "/latest/meta-data/" + key,
                         headers={"X-aws-ec2-metadata-token": tok})
            resp = conn.getresponse()
            assert resp.status == 200 and resp.getheader("Connection") == "keep-alive"
            resp.read()
        assert emulator.active_connections == 1
    finally:
        conn.close()
    assert emulator.count("GET") == 3


def test_max_in_flight_counts_parallel_requests(make_emulator: Callable[..., Emulator]) -> None:
    parties = 4
    barrier = threading.Barrier(parties)
    emu = make_emulator(allow_v1=True, latency_ms=1, sleep=lambda s: barrier.wait(10))
    results: List[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        call(emu, "GET", "/latest/meta-data/instance-id")[0])) for _ in range(parties)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * parties
    assert emu.max_in_flight == parties
    emu.reset_counters()
    assert emu.max_in_flight == 0


def test_max_connections_refuses_extra_connections(emulator: Emulator) -> None:
    tok = token(emulator)
    wait_until(lambda: emulator.active_connections == 0)    # the token's connection is gone
    emulator.max_connections = 1
    first = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        first.request("GET", "/latest/meta-data/instance-id",
                      headers={"X-aws-ec2-metadata-token": tok})
        assert first.getresponse().read() == b"i-0123456789abcdef0"
        with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as extra:
            assert extra.recv(100) == b""                   # closed at once, no answer
    finally:
        first.close()
    wait_until(lambda: emulator.active_connections == 0)
    assert get(emulator, "/latest/meta-data/instance-id", tok)[0] == 200


def test_a_flood_of_half_sent_requests_cannot_starve_the_emulator(
        make_emulator: Callable[..., Emulator]) -> None:
    """The serving bounds hold for the emulator too (issue 13 item 6 applies to both)."""
    emu = make_emulator(max_threads=8, connection_timeout=1.0)
    socks = []
    try:
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
            sock.sendall(b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
            assert emu.active_connections <= 8
        assert body_of(emu, "/latest/meta-data/instance-id") == b"i-0123456789abcdef0"
        wait_until(lambda: emu.active_connections == 0)     # the deadline closed the rest
    finally:
        for sock in socks:
            sock.close()
    assert emu.count() == 2                                 # half-sent requests never count


def wait_until(condition: Callable[[], bool]) -> None:
    """Poll a condition another thread makes true (bounded, no timing assert)."""
    done = threading.Event()
    for _ in range(500):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition never became true")


# ---------------------------------------------------------------- wire format


def test_each_response_arrives_in_one_segment(emulator: Emulator) -> None:
    """Head and body leave in one sendall: a single recv sees the whole response.

    With http.server's split writes the first recv would return the head only.
    """
    tok = token(emulator)
    request = (b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n"
               b"X-aws-ec2-metadata-token: " + tok.encode() + b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as sock:
        for _ in range(5):                                   # keep-alive, same socket
            sock.sendall(request)
            data = sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert b"\r\nContent-Length: 19\r\n" in head
            assert body == b"i-0123456789abcdef0"


def test_response_headers_look_like_the_real_service(emulator: Emulator) -> None:
    status, headers, _ = get(emulator, "/latest/meta-data/instance-id")
    assert status == 200
    assert headers["server"] == "EC2ws" and headers["content-type"] == "text/plain"
    assert headers["content-length"] == "19" and "date" in headers


def test_malformed_request_is_400_and_closed(emulator: Emulator) -> None:
    data, error = raw_exchange(emulator.port, b"NONSENSE\r\n\r\n")
    assert error is None and data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_non_ascii_content_length_is_400(emulator: Emulator) -> None:
    request = (b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n" + TTL_HEADER.encode()
               + b": 60\r\nContent-Length: \xc2\xb2\r\n\r\n")
    data, _ = raw_exchange(emulator.port, request)
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n")


def test_request_body_is_drained_for_keep_alive(emulator: Emulator) -> None:
    request = (b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n" + TTL_HEADER.encode()
               + b": 60\r\nContent-Length: 5\r\n\r\nhello"
               + b"GET /latest/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data, _ = raw_exchange(emulator.port, request)
    assert data.count(b"HTTP/1.1 200 OK") == 1 and data.count(b"HTTP/1.1 401") == 1


def test_stop_does_not_wait_for_idle_keep_alive_clients(emulator: Emulator) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: "60"})
        conn.getresponse().read()
        emulator.stop()                                      # would hang on block_on_close
        with pytest.raises((http.client.HTTPException, OSError)):
            conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: "60"})
            conn.getresponse().read()
    finally:
        conn.close()


def test_context_manager_and_url() -> None:
    with Emulator(data={"/meta-data/instance-id": "i-1"}) as emu:
        assert emu.url == f"http://127.0.0.1:{emu.port}" and emu.port > 0
        assert body_of(emu, "/latest/meta-data/instance-id") == b"i-1"


# ---------------------------------------------------------------- fixtures


def write(tmp_path, text: str) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "fixture.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_load_fixture_reads_strings_base64_and_directories(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, json.dumps({
        "/latest/meta-data/instance-id": "i-1",
        "meta-data/tags/instance/": "",
        "/user-data": {"base64": "AP8="},
        "/dynamic/x/": None,
    }))
    assert load_fixture(path) == {"/meta-data/instance-id": b"i-1",
                                  "/meta-data/tags/instance/": b"",
                                  "/user-data": b"\x00\xff",
                                  "/dynamic/x/": b""}


@pytest.mark.parametrize("text, message", [
    ('{"/meta-data/a": "x",\n  oops}', "fixture.json:2: invalid JSON"),
    ('["/meta-data/a"]', "must be a JSON object"),
    ('{"/meta-data/a": 5}', "'/meta-data/a': value must be a string"),
    ('{"/meta-data/a": {"base64": "not base64!"}}', "bad base64"),
    ('{"/meta-data/a": {"b64": "AA=="}}', "value must be a string"),
    ('{"/instance-id": "x"}', "not under /meta-data/, /dynamic/ or /user-data"),
    ('{"/meta-data/a/../b": "x"}', "'.' or '..'"),
    ('{"/meta-data/a": "x", "/latest/meta-data/a": "y"}', "a second time"),
    ('{"/meta-data/a": "x", "/meta-data/a/b": "y"}', "/meta-data/a is both a value and a dir"),
    ('{"/meta-data/d/": "x"}', "declares a directory"),
    ('{"/user-data/x": "x"}', "/user-data is a single value"),
    ('{"/meta-data": "x"}', "is a directory and cannot hold a value"),
    ('{"/meta-data/a": "\\ud800"}', "not valid Unicode"),
])
def test_fixture_errors_name_the_file_and_the_problem(tmp_path, text: str,  # type: ignore[no-untyped-def]
                                                       message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FixtureError) as info:
        load_fixture(path)
    assert str(info.value).startswith(path)
    assert message in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_missing_fixture_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "absent.json")
    with pytest.raises(FixtureError, match="absent.json: cannot read fixture"):
        load_fixture(path)


def test_emulator_data_errors_are_fixture_errors() -> None:
    with pytest.raises(FixtureError, match="<data>: key '/nope'"):
        Emulator(data={"/nope": "x"})


def test_dump_fixture_round_trips() -> None:
    values = {"/meta-data/a": b"text\n\xc3\xa9", "/user-data": b"\x1f\x8b\x00\xff",
              "/meta-data/empty/": b""}
    text = dump_fixture(values)
    doc = json.loads(text)
    assert doc["/meta-data/a"] == "text\né"
    assert doc["/user-data"] == {"base64": "H4sA/w=="}
    assert doc["/meta-data/empty/"] == ""
    assert parse_fixture(doc, "dump") == values
    assert parse_fixture(json.loads(dump_fixture(default_fixture())), "d") == default_fixture()


def test_serve_starts_an_emulator_on_a_fixture_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, '{"/meta-data/instance-id": "i-file"}')
    emu = serve(0, path, 0.0)
    try:
        assert body_of(emu, "/latest/meta-data/instance-id") == b"i-file"
    finally:
        emu.stop()
    emu = serve(0, None, 0.0)
    try:
        assert body_of(emu, "/latest/meta-data/instance-id") == b"i-0123456789abcdef0"
    finally:
        emu.stop()


def test_serve_reports_a_busy_port(emulator: Emulator) -> None:
    with pytest.raises(UsageError, match=f"--port {emulator.port}: cannot listen"):
        serve(emulator.port, None, 0.0)
