"""imds.health: the /ready probe asks the (emulated) IMDS for a fresh token."""

from __future__ import annotations

from imdsrender.emulator import Emulator
from imdsrender.imds.health import make_health_check
from imdsrender.model import ImdsSettings

# --- the real IMDS health check ---------------------------------------------------------

def test_health_check_asks_imds_for_a_fresh_token_each_time(emulator: Emulator) -> None:
    check = make_health_check(ImdsSettings(), endpoint=emulator.url)
    assert check() == (True, "IMDS issued a token")
    assert check() == (True, "IMDS issued a token")
    assert emulator.count("PUT", "/latest/api/token") == 2


def test_health_check_sees_faults_and_no_answer(emulator: Emulator) -> None:
    check = make_health_check(ImdsSettings(), endpoint=emulator.url)
    emulator.add_fault("/latest/api/token", method="PUT", status=500, times=1)
    healthy, message = check()
    assert not healthy and "HTTP 500" in message
    assert emulator.count("PUT", "/latest/api/token") == 1  # no retries in a probe
    emulator.stop()
    healthy, message = check()
    assert not healthy and "no answer from IMDS" in message


def test_health_check_with_fixture_data() -> None:
    healthy, message = make_health_check(ImdsSettings(), data="/tmp/f.json")()
    assert healthy and "--data" in message
