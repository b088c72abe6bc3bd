"""The emulator's named scenarios, each checked on the wire against what the real IMDS does."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from typing import Callable, List, Optional

import pytest

from imdsrender.emulator import SCENARIOS, Emulator, make_scenario
from imdsrender.emulator.scenarios import Flaky, Slow, Throttled, TokenExpiry
from imdsrender.errors import UsageError

from .test_core import TTL_HEADER, FakeClock, SleepLog, call, get, put_token, token

ALL = ["hop-limit", "imds-disabled", "imdsv1-only", "tags-disabled", "no-role", "throttled",
       "slow", "flaky", "token-expiry"]
INSTANCE_ID = "/latest/meta-data/instance-id"


def test_every_scenario_is_listed_with_a_one_line_description() -> None:
    assert list(SCENARIOS) == ALL
    for name, description in SCENARIOS.items():
        assert description and "\n" not in description, name
        assert make_scenario(name).name == name


def test_an_unknown_scenario_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown scenario; choose one of hop-limit"):
        Emulator(scenario="hop_limit")


@pytest.mark.parametrize("name", ALL)
def test_every_scenario_is_selectable_by_name(name: str) -> None:
    with Emulator(scenario=name, hold_seconds=0.1) as emu:
        assert emu.scenario is not None and emu.scenario.name == name


# ---------------------------------------------------------------- hop-limit


def test_hop_limit_accepts_the_put_but_never_answers(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="hop-limit")
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=0.5)
    try:
        conn.connect()                           # the connect succeeds ...
        conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: "60"})
        with pytest.raises(socket.timeout):      # ... the answer never comes
            conn.getresponse()
    finally:
        conn.close()
    assert [(r.method, r.status) for r in emu.requests] == [("PUT", 0)]
    assert get(emu, INSTANCE_ID, tok="")[0] == 401     # HttpTokens=required: no v1 either


def test_hop_limit_holds_a_thread_only_for_hold_seconds(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="hop-limit", hold_seconds=0.2)
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    try:
        conn.request("PUT", "/latest/api/token", headers={TTL_HEADER: "60"})
        with pytest.raises(http.client.RemoteDisconnected):
            conn.getresponse()               # closed after the hold, long before 10 s
    finally:
        conn.close()


def test_stop_releases_held_requests() -> None:
    baseline = threading.active_count()
    emu = Emulator(scenario="hop-limit", hold_seconds=600).start()
    socks = []
    for _ in range(5):
        sock = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
        sock.sendall(b"PUT /latest/api/token HTTP/1.1\r\nHost: x\r\n"
                     b"X-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n")
        socks.append(sock)
    while emu.count("PUT") < 5:
        time.sleep(0.01)
    emu.stop()
    for sock in socks:
        sock.settimeout(5)
        assert sock.recv(100) == b""             # closed unanswered, not after 600 s
        sock.close()
    deadline = time.monotonic() + 5
    while threading.active_count() > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= baseline


# ---------------------------------------------------------------- endpoint and token modes


def test_imds_disabled_answers_403_to_everything(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="imds-disabled")
    assert put_token(emu)[0] == 403
    assert get(emu, INSTANCE_ID, tok="")[0] == 403
    assert get(emu, "/latest/meta-data/", tok="whatever")[0] == 403


def test_imdsv1_only_refuses_the_token_and_answers_without_one(
        make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="imdsv1-only")
    assert put_token(emu)[0] == 404
    status, _, body = get(emu, INSTANCE_ID, tok="")
    assert (status, body) == (200, emu.values["/meta-data/instance-id"])


# ---------------------------------------------------------------- missing data


def test_tags_disabled_hides_tags(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="tags-disabled")
    assert get(emu, "/latest/meta-data/tags/instance/")[0] == 404
    assert get(emu, "/latest/meta-data/tags/instance/Name")[0] == 404
    listing = get(emu, "/latest/meta-data/")[2].split(b"\n")
    assert b"tags/" not in listing and b"instance-id" in listing


def test_no_role_hides_iam(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="no-role")
    assert get(emu, "/latest/meta-data/iam/security-credentials/")[0] == 404
    listing = get(emu, "/latest/meta-data/")[2].split(b"\n")
    assert b"iam/" not in listing and b"instance-id" in listing


# ---------------------------------------------------------------- load


def test_throttled_answers_429_beyond_the_limit_per_second(
        make_emulator: Callable[..., Emulator]) -> None:
    clock = FakeClock()
    emu = make_emulator(scenario=Throttled(limit=3), clock=clock, allow_v1=True)
    statuses = [get(emu, INSTANCE_ID, tok="")[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, _ = get(emu, INSTANCE_ID, tok="")
    assert (status, headers["retry-after"]) == (429, "1")
    clock.now += 1.0                               # the next second: allowed again
    assert get(emu, INSTANCE_ID, tok="")[0] == 200


def test_slow_adds_seeded_jitter(make_emulator: Callable[..., Emulator]) -> None:
    def waits(seed: int) -> List[float]:
        sleeps = SleepLog()
        emu = make_emulator(scenario=Slow(latency=0.05, jitter=0.1, seed=seed), sleep=sleeps,
                            allow_v1=True)
        for _ in range(6):
            assert get(emu, INSTANCE_ID, tok="")[0] == 200
        return sleeps.calls

    first = waits(1)
    assert all(0.05 <= w <= 0.15 for w in first) and len(set(first)) == 6
    assert waits(1) == first and waits(2) != first


def _outcome(emu: Emulator) -> Optional[int]:
    """The status of one GET on a fresh connection; None when the connection was reset."""
    try:
        return get(emu, INSTANCE_ID, tok="")[0]
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return None


def test_flaky_mixes_5xx_and_resets_repeatably(make_emulator: Callable[..., Emulator]) -> None:
    runs = []
    for _ in range(2):
        emu = make_emulator(scenario="flaky", allow_v1=True)
        runs.append([_outcome(emu) for _ in range(40)])
    assert runs[0] == runs[1]                      # seeded: the same bad day twice
    assert {200, None} <= set(runs[0]) and set(runs[0]) & {500, 503}
    assert set(runs[0]) <= {200, 500, 503, None}


def test_token_expiry_grants_short_ttls(make_emulator: Callable[..., Emulator]) -> None:
    clock = FakeClock()
    emu = make_emulator(scenario=TokenExpiry(ttl=2, revoke_every=1000), clock=clock)
    status, headers, body = put_token(emu, "21600")
    assert (status, headers[TTL_HEADER.lower()]) == (200, "2")
    assert get(emu, INSTANCE_ID, tok=body.decode())[0] == 200
    clock.now += 2
    assert get(emu, INSTANCE_ID, tok=body.decode())[0] == 401


def test_token_expiry_revokes_every_n_requests(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario=TokenExpiry(ttl=60, revoke_every=3))
    tok = token(emu)                                               # request 1
    assert [get(emu, INSTANCE_ID, tok=tok)[0] for _ in range(2)] == [200, 401]  # 2, 3 revokes
    fresh = token(emu)                                             # request 4
    assert get(emu, INSTANCE_ID, tok=fresh)[0] == 200              # 5


def test_flaky_rates_are_parameters() -> None:
    emu = Emulator(scenario=Flaky(error_rate=1.0, reset_rate=0.0), allow_v1=True).start()
    try:
        assert {_outcome(emu) for _ in range(5)} <= {500, 503}
    finally:
        emu.stop()


def test_scenario_faults_come_before_added_faults(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(scenario="imds-disabled")
    emu.add_fault(INSTANCE_ID, method="*", status=500)
    assert call(emu, "GET", INSTANCE_ID)[0] == 403
