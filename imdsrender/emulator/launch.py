"""``imdsrender emulator``: check the flags, then start an emulator with them.

Every bad value is a :class:`UsageError` (one line, exit 2) before anything
binds: an unknown scenario, a malformed ``--fault``, a host that is not an
IP address, a port or latency out of range.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from typing import Optional, Sequence

from ..errors import UsageError
from ..fixture import default_fixture, load_fixture
from .core import AccessLog, Emulator
from .faults import parse_fault_spec
from .scenarios import make_scenario

log = logging.getLogger("imdsrender.emulator")


def serve(port: int, data: Optional[str], latency_ms: float, host: str = "127.0.0.1", *,
          scenario: Optional[str] = None, faults: Sequence[str] = (),
          access_log: Optional[AccessLog] = None) -> Emulator:
    """A started emulator for ``imdsrender emulator``: fixture file or the default one."""
    _check_host(host)
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port}", "not a TCP port", "use 0..65535 (0 picks a free one)")
    if not math.isfinite(latency_ms) or latency_ms < 0:
        raise UsageError(f"--latency-ms {latency_ms}", "not a latency",
                         "use a number of milliseconds >= 0")
    armed = [parse_fault_spec(spec) for spec in faults]
    chosen = make_scenario(scenario) if scenario is not None else None
    values = load_fixture(data) if data else default_fixture()
    emulator = Emulator(values, host=host, port=port, latency_ms=latency_ms, scenario=chosen,
                        access_log=access_log)
    for path, status, count in armed:
        emulator.add_fault(path, method="*", status=status, times=count)
    try:
        emulator.start()
    except OSError as exc:
        raise UsageError(f"--port {port}", f"cannot listen on {host}:{port}: "
                                           f"{exc.strerror or exc}",
                         "choose a free port (0 picks one) and an address of this machine"
                         ) from exc
    log.info("IMDS emulator listening on %s", emulator.url)
    return emulator


def _check_host(host: str) -> None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--host {host}", "not an IP address",
                         "give an address such as 127.0.0.1 or ::1") from None
