"""Static checks of the systemd units in systemd/.

Units cannot be booted here, so these tests pin the directives that decide
boot behaviour: ordering against the network and the applications, a finite
start timeout, the off switch, the command line and the timer schedule.
``systemd-analyze verify`` (packaging/ci.sh) checks the syntax on top.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
OFF_SWITCH = "!/etc/imdsrender/disabled"
BOOT_WAIT_DEFAULT_S = 60  # DESIGN.md: imds.boot_wait default

Unit = Dict[str, Dict[str, List[str]]]


def parse_unit(path: Path) -> Unit:
    """Parse a unit file into section -> key -> values, keeping repeats.

    configparser rejects repeated keys, which systemd allows (and merges),
    so this small reader is enough for the files we ship.
    """
    unit: Unit = {}
    section = None
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"{path.name}:{lineno}: key outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{lineno}: not key=value: {raw!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def words(unit: Unit, section: str, key: str) -> List[str]:
    """All space-separated values of a list directive such as After=."""
    return [w for value in unit.get(section, {}).get(key, []) for w in value.split()]


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of a directive; fails when absent or repeated."""
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= expected once, got {values}"
    return values[0]


def seconds(value: str) -> float:
    """systemd time span (``90``, ``3min``, ``1min 30s``) in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+)\s*([a-z]*)", value):
        total += int(number) * units[unit]
    assert total > 0, f"not a finite positive time span: {value!r}"
    return total


@pytest.fixture(scope="module")
def units() -> Dict[str, Unit]:
    paths = [*SYSTEMD.glob("imdsrender*.service"), *SYSTEMD.glob("imdsrender*.timer")]
    return {p.name: parse_unit(p) for p in paths}


SERVICES = ["imdsrender.service", "imdsrender-refresh.service", "imdsrender-interval.service"]


def test_expected_unit_files_exist(units: Dict[str, Unit]) -> None:
    assert sorted(units) == sorted(SERVICES + ["imdsrender-refresh.timer"])


@pytest.mark.parametrize("name", SERVICES)
def test_services_order_after_network_online(units: Dict[str, Unit], name: str) -> None:
    unit = units[name]
    assert "network-online.target" in words(unit, "Unit", "Wants")
    assert "network-online.target" in words(unit, "Unit", "After")


@pytest.mark.parametrize("name", SERVICES)
def test_services_have_off_switch_and_need_config(units: Dict[str, Unit], name: str) -> None:
    unit = units[name]
    assert one(unit, "Unit", "ConditionPathExists") == OFF_SWITCH
    assert one(unit, "Unit", "ConditionDirectoryNotEmpty") == "/etc/imdsrender/conf.d"


@pytest.mark.parametrize("name", SERVICES)
def test_services_log_to_journal_and_document(units: Dict[str, Unit], name: str) -> None:
    unit = units[name]
    assert one(unit, "Service", "StandardOutput") == "journal"
    assert one(unit, "Service", "StandardError") == "journal"
    assert one(unit, "Service", "SyslogIdentifier") == "imdsrender"
    assert words(unit, "Unit", "Documentation")


def test_boot_unit_is_a_remaining_oneshot_with_timeout(units: Dict[str, Unit]) -> None:
    unit = units["imdsrender.service"]
    assert one(unit, "Service", "Type") == "oneshot"
    # RemainAfterExit keeps it active so After=imdsrender.service means "rendered".
    assert one(unit, "Service", "RemainAfterExit") == "yes"
    assert one(unit, "Service", "ExecStart") == "/usr/bin/imdsrender --onetime"
    timeout = seconds(one(unit, "Service", "TimeoutStartSec"))
    assert BOOT_WAIT_DEFAULT_S < timeout <= 300
    assert words(unit, "Install", "WantedBy") == ["multi-user.target"]


def test_boot_unit_orders_nothing_after_apps(units: Dict[str, Unit]) -> None:
    """Apps order themselves after us; we must not wait for them (cycles)."""
    unit = units["imdsrender.service"]
    assert words(unit, "Unit", "After") == ["network-online.target"]
    assert "Before" not in unit["Unit"]


def test_refresh_service_is_a_plain_oneshot(units: Dict[str, Unit]) -> None:
    unit = units["imdsrender-refresh.service"]
    assert one(unit, "Service", "Type") == "oneshot"
    assert "RemainAfterExit" not in unit["Service"]
    assert one(unit, "Service", "ExecStart") == "/usr/bin/imdsrender --onetime"
    assert seconds(one(unit, "Service", "TimeoutStartSec")) <= 300
    assert "imdsrender.service" in words(unit, "Unit", "After")
    # Activated by the timer only: nothing to enable.
    assert "Install" not in unit


def test_refresh_timer_schedule(units: Dict[str, Unit]) -> None:
    unit = units["imdsrender-refresh.timer"]
    assert seconds(one(unit, "Timer", "OnBootSec")) > 0
    assert seconds(one(unit, "Timer", "OnUnitActiveSec")) >= 60
    assert seconds(one(unit, "Timer", "RandomizedDelaySec")) > 0
    assert one(unit, "Timer", "Unit") == "imdsrender-refresh.service"
    assert words(unit, "Install", "WantedBy") == ["timers.target"]


def test_interval_service_runs_interval_mode_with_metrics(units: Dict[str, Unit]) -> None:
    unit = units["imdsrender-interval.service"]
    argv = one(unit, "Service", "ExecStart").split()
    assert argv[0] == "/usr/bin/imdsrender"
    assert argv[argv.index("--interval") + 1]
    addr = argv[argv.index("--metrics-addr") + 1]
    assert addr.startswith("127.0.0.1:"), "metrics must not listen beyond loopback by default"
    assert one(unit, "Service", "Type") in {"exec", "simple"}
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "RestartPreventExitStatus") == "2"  # config errors
    assert "imdsrender-refresh.timer" in words(unit, "Unit", "Conflicts")
    assert words(unit, "Install", "WantedBy") == ["multi-user.target"]


HARDENING = {
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "ProtectKernelModules",
    "ProtectKernelLogs",
    "ProtectClock",
    "LockPersonality",
    "RestrictRealtime",
    "RestrictSUIDSGID",
    "SystemCallArchitectures",
    "RestrictAddressFamilies",
}


@pytest.mark.parametrize("name", SERVICES)
def test_hardening_allows_writing_etc_and_reload_commands(
    units: Dict[str, Unit], name: str
) -> None:
    service = units[name]["Service"]
    assert set(service) >= HARDENING
    # full/strict make /etc read-only: resources write there.
    assert service["ProtectSystem"] == ["true"]
    for key in ("ProtectKernelTunables", "ProtectHostname", "RestrictNamespaces", "User"):
        assert key not in service, f"{key} would break reload commands (sysctl, hostname, ...)"
    assert "ReadOnlyPaths" not in service


def test_hardening_is_identical_in_every_service(units: Dict[str, Unit]) -> None:
    def hardening(name: str) -> Dict[str, List[str]]:
        return {k: v for k, v in units[name]["Service"].items() if k in HARDENING}

    first = hardening(SERVICES[0])
    for name in SERVICES[1:]:
        assert hardening(name) == first, f"{name} drifted from {SERVICES[0]}"


def test_preset_enables_boot_unit_and_timer_only() -> None:
    lines = [
        line.split()
        for line in (SYSTEMD / "90-imdsrender.preset").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["enable", "imdsrender.service"] in lines
    assert ["enable", "imdsrender-refresh.timer"] in lines
    assert ["disable", "imdsrender-interval.service"] in lines
    for _verb, name in lines:
        assert (SYSTEMD / name).is_file(), f"preset names a unit we do not ship: {name}"


def test_app_dropin_example_orders_after_boot_unit() -> None:
    unit = parse_unit(SYSTEMD / "imdsrender-app-dropin.conf.example")
    assert set(unit) == {"Unit"}
    assert words(unit, "Unit", "After") == ["imdsrender.service"]
    assert words(unit, "Unit", "Wants") == ["imdsrender.service"]
