"""``imdsrender get`` end to end: flags reach the fetch (one fetch path for every command)."""

from __future__ import annotations

from imdsrender.emulator import Emulator
from tests.helpers import run_cli

LEAVES = 64


def test_get_concurrency_32_runs_32_requests_in_flight() -> None:
    """--concurrency 32 means 32 requests at once, not the default 8 (get used to drop it).

    Every answer takes 0.5 s, so the 64 leaves overlap as far as the client
    lets them; the emulator counts how many were in flight at once.
    """
    data = {f"/meta-data/tags/instance/k{i:02d}": f"v{i}" for i in range(LEAVES)}
    with Emulator(data, latency_ms=500) as emulator:
        done = run_cli("get", "--endpoint", emulator.url, "--concurrency", "32",
                       "/meta-data/tags/instance/", timeout=120)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) == LEAVES
        assert emulator.count("GET") == LEAVES + 1  # the listing, then each leaf once
        assert emulator.max_in_flight == 32


def test_get_default_concurrency_is_8() -> None:
    data = {f"/meta-data/tags/instance/k{i:02d}": f"v{i}" for i in range(16)}
    with Emulator(data, latency_ms=300) as emulator:
        done = run_cli("get", "--endpoint", emulator.url, "/meta-data/tags/instance/",
                       timeout=120)
        assert done.returncode == 0, done.stderr
        assert emulator.max_in_flight == 8
