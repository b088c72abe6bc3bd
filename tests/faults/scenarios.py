"""The fault matrix: each row is one bad day of IMDS and what must come of it.

Read a row as: "when IMDS does <arrange>, the run exits <exit>, leaves
<files>, makes at most <max_requests> requests and ends within
<max_seconds>".  Rows are grouped as in issue #7: tokens, retries and
Retry-After, timeouts and broken bodies, boot, the shape of the tree, caps
and hostile answers, HTTP oddities.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, Dict, List

from imdsrender.fixture import default_fixture
from imdsrender.imds.token import TOKEN_REFUSED_HINT as TOKEN_HINT

from .harness import ID, OLD, TAGS, TAGS_KEYS, TAGS_TEMPLATE, Context, Scenario, Template

TOKEN = ("PUT", "/api/token")
GET_ID = ("GET", "/meta-data/instance-id")
GET_TAGS = ("GET", "/meta-data/tags/instance/")
DEFAULT_REQUESTS = 6  # PUT, instance-id, the tags listing, three tags
MAC = "0a:1b:2c:3d:4e:5f"
MAC_DIR = f"/meta-data/network/interfaces/macs/{MAC}"
BOTH_NEW = {"id": ID, "tags": TAGS}
NOTHING_WRITTEN = {"id": OLD, "tags": OLD}


def fault(path: str, **kwargs: Any) -> Any:
    """An arrange hook adding one fault."""
    return lambda ctx: ctx.emu.add_fault(path, **kwargs)


def faults(*hooks: Any) -> Any:
    def arrange(ctx: Context) -> None:
        for hook in hooks:
            hook(ctx)
    return arrange


def set_values(**values: Any) -> Any:
    """An arrange hook changing fixture values (keyword: tag name under tags/instance/)."""
    def arrange(ctx: Context) -> None:
        for name, value in values.items():
            ctx.emu.set_value(f"/meta-data/tags/instance/{name}", value)
    return arrange


def gap_at_least(seconds: float, method: str, path: str) -> Any:
    """The retry waited (Retry-After honoured): a behaviour, measured on the server."""
    def check(ctx: Context, result: Any) -> None:
        gaps = ctx.gaps(method, path)
        assert gaps and gaps[0] >= seconds, f"gaps {gaps}"
    return check


def gap_at_most(seconds: float, method: str, path: str) -> Any:
    """No advice (garbage Retry-After) means the short back-off, not a long park."""
    def check(ctx: Context, result: Any) -> None:
        gaps = ctx.gaps(method, path)
        assert gaps and gaps[0] <= seconds, f"gaps {gaps}"
    return check


def no_401(ctx: Context, result: Any) -> None:
    assert all(r.status != 401 for r in ctx.emu.requests), "a token was used after expiry"


def renewed_without_401(ctx: Context, result: Any) -> None:
    """A short granted TTL is renewed ahead of time: more PUTs, never a 401."""
    no_401(ctx, result)
    _at_least(ctx.emu.count("PUT"), 2)


def http_date_in(seconds: float) -> Any:
    """Retry-After as an HTTP-date, computed when the row runs.

    HTTP-dates hold whole seconds and the CLI takes a while to start under
    load, so the date must lie well beyond the gap the row checks.
    """
    def arrange(ctx: Context) -> None:
        when = email.utils.formatdate(time.time() + seconds, usegmt=True)
        ctx.emu.add_fault("/meta-data/instance-id", status=503, times=1,
                          headers={"Retry-After": when})
    return arrange


def redirect_elsewhere(method: str, path: str) -> Any:
    def arrange(ctx: Context) -> None:
        other = ctx.other()
        ctx.notes["other"] = other
        ctx.emu.add_fault(path, method=method, status=302,
                          headers={"Location": other.url + "/latest" + path})
    return arrange


def other_never_contacted(ctx: Context, result: Any) -> None:
    assert ctx.notes["other"].count() == 0, "the redirect was followed"


BIG = 10_000
BIG_TAGS = b"".join(f"t{i:05d}=v{i}\n".encode() for i in range(BIG))


def big_fixture(count: int) -> Dict[str, bytes]:
    """The default instance with its tags replaced by *count* of them."""
    data = {k: v for k, v in default_fixture().items()
            if not k.startswith("/meta-data/tags/instance/")}
    data.update({f"/meta-data/tags/instance/t{i:05d}": f"v{i}".encode() for i in range(count)})
    return data

HOSTILE_LISTING = (b"Name\n../../../etc/passwd\n..\n.\na?b=1\nc#d\ne%2F..\nf/g\n"
                   b"\x01ctl\nEnvironment")

DEEP = "/meta-data/deep/" + "/".join(f"d{i}" for i in range(20)) + "/leaf"

PUBLIC_KEYS_TEMPLATE = (
    '{% for k in ls("/meta-data/public-keys/") %}'
    'key {{ k }}: {{ getv("/meta-data/public-keys/" ~ k ~ "/openssh-key") }}\n{% endfor %}'
    'cost={{ getv("/meta-data/tags/instance/cost=center") }}\n')
PUBLIC_KEYS_EXPECTED = (b"key 0: " + default_fixture()["/meta-data/public-keys/0/openssh-key"]
                        + b"\ncost=cc-1234\n")

BINARY = b"\xff\xfe\x00bin\x80\xc3(\n"

S: List[Scenario] = [
    # --- tokens --------------------------------------------------------------
    Scenario("token expires mid-run", 0, BOTH_NEW, DEFAULT_REQUESTS + 6,
             clock_jump=(3, 30000.0), requests={TOKEN: 2},
             check=lambda ctx, r: _at_least(ctx.statuses().count(401), 1)),
    Scenario("401 once: one refresh, one retry", 0, BOTH_NEW, DEFAULT_REQUESTS + 2,
             arrange=fault("/meta-data/instance-id", status=401, times=1),
             requests={TOKEN: 2, GET_ID: 2}),
    Scenario("401 even with a fresh token: no loop", 1, {"id": OLD, "tags": TAGS},
             DEFAULT_REQUESTS + 2,
             arrange=fault("/meta-data/instance-id", status=401),
             requests={TOKEN: 2, GET_ID: 2},
             stderr=("rejected a freshly issued token (401)",)),
    Scenario("granted TTL shorter than asked: renewed before expiry", 0, BOTH_NEW, 20,
             emulator={"max_ttl": 1, "latency_ms": 250}, flags=("--concurrency", "1"),
             check=renewed_without_401),
    Scenario("PUT without the TTL header: requested TTL assumed", 0, BOTH_NEW,
             DEFAULT_REQUESTS, arrange=lambda ctx: setattr(ctx.emu, "omit_ttl_header", True),
             requests={TOKEN: 1}),
    Scenario("PUT without the TTL header, token really shorter: 401 renews", 0, BOTH_NEW, 20,
             emulator={"max_ttl": 1, "latency_ms": 300}, flags=("--concurrency", "1"),
             arrange=lambda ctx: setattr(ctx.emu, "omit_ttl_header", True),
             check=lambda ctx, r: _at_least(ctx.emu.count("PUT"), 2)),
    Scenario("granted TTL header with a non-ASCII digit: treated as absent", 0, BOTH_NEW,
             DEFAULT_REQUESTS,
             arrange=fault("/api/token", method="PUT",
                           headers={"X-aws-ec2-metadata-token-ttl-seconds": "\u00b2"}),
             requests={TOKEN: 1}),
    Scenario("PUT 200 with an empty token: unavailable, no PUT per key", 3, NOTHING_WRITTEN, 1,
             arrange=fault("/api/token", method="PUT", status=200, body=b""),
             stderr=("unusable token",)),
    Scenario("PUT 200 with a non-ASCII token: unavailable, not a crash", 3, NOTHING_WRITTEN,
             1, arrange=fault("/api/token", method="PUT", status=200, body=b"\xff\xfetoken"),
             stderr=("unusable token",)),
    Scenario("PUT 200 with a token holding CRLF: never sent as a header", 3, NOTHING_WRITTEN,
             1, arrange=fault("/api/token", method="PUT", status=200,
                              body=b"abc\r\nX-Forwarded-For: 10.0.0.1"),
             stderr=("unusable token",)),
    Scenario("PUT 400: configuration error", 2, NOTHING_WRITTEN, 1,
             arrange=fault("/api/token", method="PUT", status=400),
             requests={TOKEN: 1}, stderr=("rejected the token request (400)",)),
    Scenario("PUT 403: IMDSv2 refused", 3, NOTHING_WRITTEN, 1,
             arrange=fault("/api/token", method="PUT", status=403),
             stderr=("IMDSv2 token request refused (HTTP 403)", "allow_imdsv1")),
    Scenario("PUT 404: IMDSv2 unavailable", 3, NOTHING_WRITTEN, 1,
             arrange=fault("/api/token", method="PUT", status=404),
             stderr=("IMDSv2 token request refused (HTTP 404)",)),
    Scenario("PUT 405: IMDSv2 unavailable", 3, NOTHING_WRITTEN, 1,
             arrange=fault("/api/token", method="PUT", status=405),
             stderr=("IMDSv2 token request refused (HTTP 405)",)),
    Scenario("PUT 403 with allow_imdsv1: v1 fallback, said out loud", 0, BOTH_NEW,
             DEFAULT_REQUESTS, emulator={"allow_v1": True},
             settings="imds:\n  allow_imdsv1: true\n", v1=True,
             arrange=fault("/api/token", method="PUT", status=403),
             stderr=("falling back to IMDSv1",),
             check=lambda ctx, r: _all_tokenless(ctx)),
    Scenario("PUT never answered (hop limit): fail fast with a hint", 3, NOTHING_WRITTEN, 4,
             max_seconds=10, flags=("--timeout", "300ms"),
             arrange=fault("/api/token", method="PUT", delay=8),
             requests={TOKEN: 4}, stderr=("no answer to the token request", "hop limit")),
    # --- 5xx, 429, Retry-After --------------------------------------------------
    Scenario("PUT 503 burst", 0, BOTH_NEW, DEFAULT_REQUESTS + 2,
             arrange=fault("/api/token", method="PUT", status=503, times=2),
             requests={TOKEN: 3}),
    Scenario("PUT 503 burst with Retry-After", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/api/token", method="PUT", status=503, times=1,
                           headers={"Retry-After": "1"}),
             requests={TOKEN: 2}, check=gap_at_least(0.9, "PUT", "/api/token")),
    Scenario("PUT 503 for good: unavailable, nothing written", 3, NOTHING_WRITTEN, 4,
             arrange=fault("/api/token", method="PUT", status=503),
             requests={TOKEN: 4},
             stderr=("IMDS answered HTTP 503 to the token request 4 times", TOKEN_HINT)),
    Scenario("GET 503 burst", 0, BOTH_NEW, DEFAULT_REQUESTS + 2,
             arrange=fault("/meta-data/instance-id", status=503, times=2),
             requests={GET_ID: 3}),
    Scenario("GET 503 with Retry-After seconds", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", status=503, times=1,
                           headers={"Retry-After": "1"}),
             requests={GET_ID: 2}, check=gap_at_least(0.9, "GET", "/meta-data/instance-id")),
    Scenario("GET 503 with Retry-After as an HTTP-date", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=http_date_in(5), requests={GET_ID: 2},
             check=gap_at_least(1.0, "GET", "/meta-data/instance-id")),
    Scenario("GET 503 with a garbage Retry-After", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", status=503, times=1,
                           headers={"Retry-After": "soon, promise"}),
             requests={GET_ID: 2}, check=gap_at_most(2.5, "GET", "/meta-data/instance-id")),
    Scenario("GET 503 with a negative Retry-After", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", status=503, times=1,
                           headers={"Retry-After": "-10"}),
             requests={GET_ID: 2}, check=gap_at_most(2.5, "GET", "/meta-data/instance-id")),
    Scenario("Retry-After with a non-ASCII digit ('\u00b2') is garbage, not a crash", 0,
             BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", status=503, times=1,
                           headers={"Retry-After": "\u00b2"}),
             requests={GET_ID: 2}),
    Scenario("persistent 503: give up after the retries, others still written", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS + 3,
             arrange=fault("/meta-data/instance-id", status=503),
             requests={GET_ID: 4}, stderr=("gave up after 4 attempts (HTTP 503)",)),
    Scenario("persistent 429: give up after the retries", 1, {"id": OLD, "tags": TAGS},
             DEFAULT_REQUESTS + 3,
             arrange=fault("/meta-data/instance-id", status=429, headers={"Retry-After": "0"}),
             requests={GET_ID: 4}, stderr=("HTTP 429",)),
    Scenario("persistent 429 with Retry-After: give up at the deadline", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS + 4, max_seconds=15, slow=True,
             settings="imds:\n  retries: 50\n", flags=("--timeout", "100ms"),
             arrange=fault("/meta-data/instance-id", status=429, headers={"Retry-After": "3"}),
             stderr=("HTTP 429; Retry-After 3s exceeds the deadline",),
             check=lambda ctx, r: _between(ctx.emu.count(*GET_ID), 2, 5)),
    Scenario("persistent 503 with a Retry-After past the deadline: says so", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS + 1, max_seconds=15, slow=True,
             arrange=fault("/meta-data/instance-id", status=503, headers={"Retry-After": "120"}),
             requests={GET_ID: 2},
             stderr=("gave up after 2 attempts (HTTP 503; "
                     "Retry-After 120s exceeds the deadline)",)),
    Scenario("429 burst on every GET: throttled, then all fetched", 0, BOTH_NEW,
             DEFAULT_REQUESTS + 3,  # 3 < the 4 attempts a path has, however they fall
             arrange=fault("/meta-data/*", status=429, times=3, headers={"Retry-After": "0"})),
    Scenario("500 on a listing for good: only that resource fails", 1,
             {"id": ID, "tags": OLD}, DEFAULT_REQUESTS + 3,
             arrange=fault("/meta-data/tags/instance/", status=500),
             requests={GET_TAGS: 4}, stderr=("/meta-data/tags/instance/",)),
    # --- timeouts and broken bodies -------------------------------------------------
    Scenario("headers after the read timeout, once", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             flags=("--timeout", "500ms"),
             arrange=fault("/meta-data/instance-id", delay=2, times=1),
             requests={GET_ID: 2}),
    Scenario("headers always after the read timeout", 1, {"id": OLD, "tags": TAGS},
             DEFAULT_REQUESTS + 3, flags=("--timeout", "300ms"),
             arrange=fault("/meta-data/instance-id", delay=3),
             requests={GET_ID: 4}, stderr=("read timed out",)),
    Scenario("slow-drip body: bounded by the per-request deadline", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS, max_seconds=15, slow=True,
             arrange=fault("/meta-data/instance-id", body=b"x" * 200, drip=0.25),
             requests={GET_ID: 1}, stderr=("gave up after 1 attempt (", "deadline reached")),
    Scenario("reset mid-body, once", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", status=200,
                           body=b"i-0123456789abcdef0", reset=True, times=1),
             requests={GET_ID: 2}),
    Scenario("reset before any answer, twice", 0, BOTH_NEW, DEFAULT_REQUESTS + 2,
             arrange=fault("/meta-data/instance-id", reset=True, times=2),
             requests={GET_ID: 3}),
    Scenario("reset every time: give up", 1, {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS + 3,
             arrange=fault("/meta-data/instance-id", reset=True),
             requests={GET_ID: 4}, stderr=("gave up after 4 attempts",)),
    Scenario("Content-Length with a non-ASCII digit: read to the close", 0, BOTH_NEW,
             DEFAULT_REQUESTS,
             arrange=fault("/meta-data/instance-id", headers={"Content-Length": "\u00b2"},
                           close=True),
             requests={GET_ID: 1}),
    Scenario("short body (Content-Length), once", 0, BOTH_NEW, DEFAULT_REQUESTS + 1,
             arrange=fault("/meta-data/instance-id", short_body=True, times=1),
             requests={GET_ID: 2}),
    Scenario("short body every time: never rendered truncated", 1, {"id": OLD, "tags": TAGS},
             DEFAULT_REQUESTS + 3,
             arrange=fault("/meta-data/instance-id", short_body=True),
             requests={GET_ID: 4}),
    # --- boot -------------------------------------------------------------------------
    Scenario("connection refused for the first seconds of boot", 0, BOTH_NEW,
             DEFAULT_REQUESTS, start_after=2.0, flags=("--boot-wait", "20s"),
             requests={TOKEN: 1}),
    Scenario("--boot-wait 0 against a healthy IMDS: one try, no wait", 0, BOTH_NEW,
             DEFAULT_REQUESTS, flags=("--boot-wait", "0"), requests={TOKEN: 1}),
    Scenario("IMDS never comes up within --boot-wait", 3, NOTHING_WRITTEN, 0,
             start_after=4.0, flags=("--boot-wait", "1s"), stderr=("no answer from IMDS",)),
    # --- the shape of the tree ---------------------------------------------------------
    Scenario("single-entry directory (no newline in the listing)", 0,
             {"id": ID, "tags": b"Name=web-1\n"}, 4,
             arrange=set_values(Environment=None, **{"cost=center": None})),
    Scenario("multi-line leaves stay values", 0,
             {"sg": b"sg-0123456789abcdef0\nsg-0fedcba9876543210|10.0.1.23\n10.0.1.24\n"},
             3, templates=(Template("sg",
                 '{{ getv("' + MAC_DIR + '/security-group-ids") }}|'
                 '{{ getv("' + MAC_DIR + '/local-ipv4s") }}\n'),)),
    Scenario("messy listing: CRLF, blanks, duplicates", 0,
             {"id": ID, "tags": b"Environment=production\nName=web-1\n"}, 5,
             arrange=fault("/meta-data/tags/instance/", status=200,
                           body=b"Name\r\n\r\nEnvironment\r\nName\r\n\r\n \r\n"),
             requests={GET_TAGS: 1}),
    Scenario("empty listing: an empty directory", 0, {"id": ID, "tags": b""}, 3,
             arrange=fault("/meta-data/tags/instance/", status=200, body=b"")),
    Scenario("non-ASCII tag names round-trip; undecodable entries are only missing", 0,
             {"id": ID, "tags": b"Environment=production\nName=web-1\n"
                           + "caf\u00e9=cr\u00e8me\n".encode()
                           + b"cost=center=cc-1234\n\xff\xfe=<missing>\n"},
             DEFAULT_REQUESTS + 2,
             arrange=faults(set_values(**{"caf\u00e9": "cr\u00e8me"}),
                            fault("/meta-data/tags/instance/", status=200,
                                  body=b"Environment\nName\ncost=center\ncaf\xc3\xa9\n\xff\xfe"))),
    Scenario("public-keys 0=name vs a tag key holding '='", 0,
             {"keys": PUBLIC_KEYS_EXPECTED}, 5,
             templates=(Template("keys", PUBLIC_KEYS_TEMPLATE, (
                 "/meta-data/public-keys/", "/meta-data/tags/instance/cost=center")),),
             requests={("GET", "/meta-data/public-keys/0/openssh-key"): 1,
                       ("GET", "/meta-data/tags/instance/cost=center"): 1,
                       ("GET", "/meta-data/public-keys/0=web-1-key*"): 0}),
    Scenario("empty leaf is the empty string, not missing", 0,
             {"id": ID, "tags": b"Empty=\n" + TAGS}, DEFAULT_REQUESTS + 1,
             arrange=set_values(Empty="")),
    Scenario("a listed child that 404s: that key only, the walk goes on", 0,
             {"id": ID, "tags": b"Environment=production\nName=<missing>\ncost=center=cc-1234\n"},
             DEFAULT_REQUESTS,
             arrange=fault("/meta-data/tags/instance/Name", status=404)),
    Scenario("binary and non-UTF-8 values survive byte for byte", 0,
             {"id": ID, "tags": b"Blob=" + BINARY + b"\n" + TAGS,
              "user-data": BINARY + b"|absent-ok\n"}, DEFAULT_REQUESTS + 3,
             templates=(Template("id", '{{ getv("/meta-data/instance-id") }}\n'),
                        Template("tags", TAGS_TEMPLATE, tuple(TAGS_KEYS)),
                        Template("user-data", '{{ getv("/user-data") }}|'
                                 '{{ getv("/meta-data/tags/instance/Nope", "absent-ok") }}\n')),
             arrange=faults(set_values(Blob={"base64": "//4AYmlugMMoCg=="}),
                            lambda ctx: ctx.emu.set_value("/user-data",
                                                          {"base64": "//4AYmlugMMoCg=="}))),
    Scenario("user-data 404 is absent, not an error", 0, {"ud": b"none\n"}, 2,
             templates=(Template("ud", '{{ getv("/user-data", "none") }}\n'),),
             arrange=lambda ctx: ctx.emu.set_value("/user-data", None)),
    # --- caps and hostile answers ----------------------------------------------------------
    Scenario("a 10,000-entry listing: each leaf fetched once", 0,
             {"id": ID, "tags": BIG_TAGS}, BIG + 3, max_seconds=60, slow=True,
             emulator={"data": big_fixture(BIG)}, requests={GET_TAGS: 1}),
    Scenario("oversized body: an error naming the path, others written", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS,
             arrange=lambda ctx: ctx.emu.set_value("/meta-data/instance-id",
                                                   "x" * (1024 * 1024 + 1)),
             requests={GET_ID: 1},
             stderr=("/meta-data/instance-id", "exceeds the 1048576-byte cap")),
    Scenario("directory deeper than the cap", 1, {"id": ID, "deep": OLD}, 40,
             templates=(Template("id", '{{ getv("/meta-data/instance-id") }}\n'),
                        Template("deep", '{{ getvs("/meta-data/deep/*") | length }}\n',
                                 ("/meta-data/deep/",))),
             arrange=lambda ctx: ctx.emu.set_value(DEEP, "bottom"),
             stderr=("16-level directory cap",)),
    Scenario("hostile listing entries are skipped, never normalised", 0,
             {"id": ID, "tags": b"Environment=production\nName=web-1\n"}, 5,
             arrange=fault("/meta-data/tags/instance/", status=200, body=HOSTILE_LISTING),
             stderr=("skipped listing entry",),
             check=lambda ctx, r: _only_safe_paths(ctx)),
    Scenario("redirect to another host on a GET: refused, not followed", 1,
             {"id": OLD, "tags": TAGS}, DEFAULT_REQUESTS,
             arrange=redirect_elsewhere("GET", "/meta-data/instance-id"),
             requests={GET_ID: 1}, stderr=("redirect (HTTP 302)",),
             check=other_never_contacted),
    Scenario("redirect on the token PUT: refused like any token refusal (exit 3)", 3,
             NOTHING_WRITTEN, 1, arrange=redirect_elsewhere("PUT", "/api/token"),
             stderr=("redirected (HTTP 302)", TOKEN_HINT), check=other_never_contacted),
    # --- HTTP oddities ------------------------------------------------------------------------
    Scenario("HTTP/1.0 answers with Connection: close", 0, BOTH_NEW, DEFAULT_REQUESTS,
             arrange=faults(fault("*", method="*", http10=True))),
    Scenario("Connection: close on every answer", 0, BOTH_NEW, DEFAULT_REQUESTS,
             arrange=fault("*", method="*", close=True)),
    # Connections past the limit are closed on accept: a connection error each, retried.
    # 10 retries make "one request loses every race" too unlikely to flake under load.
    Scenario("at most 2 simultaneous connections, 8 workers", 0, BOTH_NEW, 60,
             arrange=lambda ctx: setattr(ctx.emu, "max_connections", 2),
             emulator={"latency_ms": 50}, settings="imds:\n  retries: 10\n"),
]


def _at_least(value: int, low: int) -> None:
    assert value >= low, f"{value} < {low}"


def _between(value: int, low: int, high: int) -> None:
    assert low <= value <= high, f"{value} not in [{low}, {high}]"


def _all_tokenless(ctx: Context) -> None:
    gets = [r for r in ctx.emu.requests if r.method == "GET"]
    assert gets and all(r.header("X-aws-ec2-metadata-token") is None for r in gets)


def _only_safe_paths(ctx: Context) -> None:
    asked = [r.path for r in ctx.emu.requests if r.method == "GET"]
    for path in asked:
        tail = path[len("/latest"):]
        assert ".." not in tail and "?" not in tail and "#" not in tail and "%" not in tail, path
    assert sorted(asked) == sorted([
        "/latest/meta-data/instance-id", "/latest/meta-data/tags/instance/",
        "/latest/meta-data/tags/instance/Environment", "/latest/meta-data/tags/instance/Name"])


SCENARIOS: Dict[str, Scenario] = {s.name: s for s in S}
assert len(SCENARIOS) == len(S), "scenario names must be unique"
