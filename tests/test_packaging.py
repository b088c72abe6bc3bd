"""Consistency of the packaging files, plus tool-driven checks.

The plain tests always run: they keep the version, the unit list, the
settings file and the cloud-init examples in step across setup.cfg, the rpm
spec, debian/ and the docs. Tests marked ``tools`` need Debian's tools
(installed by packaging/ci.sh) and skip where they are absent; ci.sh runs
the full builds.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

import imdsrender
from imdsrender.config import _IMDS_FIELDS, _SETTINGS_FIELDS, ImdsSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
SPEC = (PACKAGING / "rpm" / "imdsrender.spec").read_text()
DEBIAN = PACKAGING / "debian"
UNITS = sorted(p.name for p in (ROOT / "systemd").glob("imdsrender*.*") if p.suffix in {
    ".service", ".timer"})
CLOUD_EXAMPLES = sorted((ROOT / "cloud-init").glob("*.yaml"))


def spec_tag(name: str) -> List[str]:
    return re.findall(rf"^{name}:\s*(.+?)\s*$", SPEC, re.MULTILINE)


# ------------------------------------------------------------------ versions

def test_version_is_the_same_everywhere() -> None:
    version = imdsrender.__version__
    assert spec_tag("Version") == [version]
    changelog = (DEBIAN / "changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"imdsrender ({version}-"), changelog
    assert re.search(rf"^\* .* - {re.escape(version)}-\d+$", SPEC, re.MULTILINE)
    manpage = (PACKAGING / "imdsrender.1").read_text().splitlines()[0]
    assert f'"imdsrender {version}"' in manpage


# ---------------------------------------------------------------------- rpm

def test_spec_installs_every_unit_and_the_preset() -> None:
    assert len(UNITS) == 4
    for unit in UNITS:
        assert f"systemd/{unit}" in SPEC
        assert f"%{{_unitdir}}/{unit}" in SPEC
    assert "%{_presetdir}/90-imdsrender.preset" in SPEC


def test_spec_metadata_and_dependencies() -> None:
    assert spec_tag("BuildArch") == ["noarch"]
    assert {"python3-devel", "systemd-rpm-macros"} <= set(spec_tag("BuildRequires"))
    requires = {r.split()[0] for r in spec_tag("Requires")}
    assert requires == {"python3-urllib3", "python3-jinja2", "python3-pyyaml"}
    assert spec_tag("Source0") == ["%{name}-%{version}.tar.gz"]  # the sdist


def test_spec_config_and_scriptlets() -> None:
    assert "%config(noreplace) %{_sysconfdir}/%{name}/imdsrender.yaml" in SPEC
    for directory in ("conf.d", "templates"):
        assert f"%dir %{{_sysconfdir}}/%{{name}}/{directory}" in SPEC
    for section, macro in (("%post", "%systemd_post"), ("%preun", "%systemd_preun"),
                           ("%postun", "%systemd_postun")):
        assert re.search(rf"^{section}\n(?:#.*\n)*{macro} ", SPEC, re.MULTILINE), section
    restarted = re.findall(r"^%systemd_postun_with_restart (.+)$", SPEC, re.MULTILINE)
    assert restarted == ["imdsrender-interval.service"], "the boot unit must not restart"


def test_spec_fallback_macros_are_guarded() -> None:
    """Each stand-in for a distro macro is defined only when it is missing."""
    for macro in ("_unitdir", "_presetdir", "python3", "python3_sitelib"):
        assert f"%{{!?{macro}: %global {macro} " in SPEC
    assert "%if 0%{!?systemd_post:1}" in SPEC
    assert "%if 0%{!?pyproject_wheel:1}" in SPEC


# ---------------------------------------------------------------------- deb

def debian_fields(name: str) -> Dict[str, str]:
    """debian/control as field -> value for the paragraph whose first field is *name*."""
    text = (DEBIAN / "control").read_text()
    for paragraph in text.split("\n\n"):
        if paragraph.startswith(name):
            fields: Dict[str, str] = {}
            for match in re.finditer(r"^([\w-]+):(.*(?:\n .*)*)", paragraph, re.MULTILINE):
                fields[match.group(1)] = " ".join(match.group(2).split())
            return fields
    raise AssertionError(f"no {name} paragraph")


def test_debian_control() -> None:
    source = debian_fields("Source:")
    assert "debhelper-compat (= 13)" in source["Build-Depends"]
    assert "dh-sequence-python3" in source["Build-Depends"]
    assert source["Rules-Requires-Root"] == "no"
    binary = debian_fields("Package:")
    assert binary["Architecture"] == "all"
    for dep in ("python3-urllib3", "python3-jinja2", "python3-yaml"):
        assert dep in binary["Depends"]


def test_debian_rules_and_install() -> None:
    rules_path = DEBIAN / "rules"
    assert os.access(rules_path, os.X_OK)
    rules = rules_path.read_text()
    assert "dh $@ --buildsystem=pybuild" in rules
    boot = re.search(r"dh_installsystemd (.*) imdsrender\.service", rules)
    assert boot and "--no-start" in boot.group(1) and "--no-stop-on-upgrade" in boot.group(1)
    assert re.search(r"dh_installsystemd --no-enable imdsrender-interval\.service", rules)
    installed = (DEBIAN / "install").read_text().splitlines()
    for unit in UNITS:
        assert f"systemd/{unit} lib/systemd/system/" in installed
    assert "etc/imdsrender.yaml etc/imdsrender/" in installed
    assert set((DEBIAN / "dirs").read_text().split()) == {
        "etc/imdsrender/conf.d", "etc/imdsrender/templates"}


def test_no_debian_dir_at_repo_root() -> None:
    assert not (ROOT / "debian").exists(), "build-deb.sh works in a temp copy only"


# -------------------------------------------------------------------- sdist

def test_manifest_ships_what_the_packages_build_from() -> None:
    manifest = (ROOT / "MANIFEST.in").read_text().splitlines()
    for directory in ("systemd", "examples", "packaging", "cloud-init"):
        assert f"graft {directory}" in manifest
    assert "include README.md" in manifest
    assert "include etc/imdsrender.yaml" in manifest


# ----------------------------------------------------------------- settings

def uncommented_settings(tmp_path: Path) -> Path:
    """etc/imdsrender.yaml with every ``# name: value`` line switched on."""
    text = (ROOT / "etc" / "imdsrender.yaml").read_text()
    on = re.sub(r"^(\s*)# ([a-z_0-9]+: .*)$", r"\1\2", text, flags=re.MULTILINE)
    path = tmp_path / "imdsrender.yaml"
    path.write_text(on)
    return path


def test_settings_file_lists_every_setting(tmp_path: Path) -> None:
    data = yaml.safe_load(uncommented_settings(tmp_path).read_text())
    assert set(data) == set(_SETTINGS_FIELDS)
    assert set(data["imds"]) == set(_IMDS_FIELDS)


def test_settings_file_comments_are_the_defaults(tmp_path: Path) -> None:
    assert load_settings(str(ROOT / "etc" / "imdsrender.yaml")) == Settings()
    loaded = load_settings(str(uncommented_settings(tmp_path)))
    # endpoint's default is "unset" (the environment and endpoint_mode decide);
    # the file shows the address that then results.
    assert loaded.imds.endpoint == "http://169.254.169.254"
    expected = Settings(imds=ImdsSettings(endpoint="http://169.254.169.254"))
    assert loaded == expected


# --------------------------------------------------------------- cloud-init

def test_cloud_init_examples_are_cloud_config() -> None:
    assert len(CLOUD_EXAMPLES) >= 2
    for example in CLOUD_EXAMPLES:
        assert example.read_text().splitlines()[0] == "#cloud-config"
        assert "write_files" in yaml.safe_load(example.read_text())


def test_runcmd_example_renders_once() -> None:
    data = yaml.safe_load((ROOT / "cloud-init" / "onetime-runcmd.yaml").read_text())
    assert ["imdsrender", "--onetime"] in data["runcmd"]


def test_units_example_enables_boot_unit_and_timer() -> None:
    data = yaml.safe_load((ROOT / "cloud-init" / "boot-units.yaml").read_text())
    enable = [cmd for cmd in data["runcmd"] if cmd[:2] == ["systemctl", "enable"]]
    assert enable and {"imdsrender.service", "imdsrender-refresh.timer"} <= set(enable[0])


def test_units_example_orders_an_app_enabled_in_the_image() -> None:
    """The app's start job is queued before cloud-init runs: its drop-in must
    be written and loaded (daemon-reload) in bootcmd, before any ordinary
    service starts; write_files alone leaves it unloaded on the first boot.
    An app not enabled in the image is enabled and started by runcmd."""
    data = yaml.safe_load((ROOT / "cloud-init" / "boot-units.yaml").read_text())
    bootcmd = [cmd if isinstance(cmd, str) else " ".join(cmd) for cmd in data["bootcmd"]]
    dropin = [i for i, cmd in enumerate(bootcmd) if "myapp.service.d/10-imdsrender.conf" in cmd]
    reload = [i for i, cmd in enumerate(bootcmd) if cmd.strip() == "systemctl daemon-reload"]
    assert dropin and reload and dropin[0] < reload[-1]
    assert "After=imdsrender.service" in bootcmd[dropin[0]]
    assert not [f for f in data["write_files"] if f["path"].startswith("/etc/systemd/")]
    runcmd = [" ".join(cmd) for cmd in data["runcmd"]]
    assert any(cmd.startswith("systemctl enable") and "myapp.service" in cmd for cmd in runcmd)
    assert any(cmd.startswith("systemctl start --no-block") and "myapp.service" in cmd
               for cmd in runcmd)


def shipped_reload_commands() -> Dict[str, str]:
    """Every reload_cmd in examples/, the cloud-init examples and the README."""
    found: Dict[str, str] = {}
    for path in sorted((ROOT / "examples" / "conf.d").glob("*.yaml")):
        for resource in yaml.safe_load(path.read_text())["templates"]:
            if "reload_cmd" in resource:
                found[path.name] = resource["reload_cmd"]
    for example in CLOUD_EXAMPLES:
        for item in yaml.safe_load(example.read_text()).get("write_files", []):
            if item["path"].startswith("/etc/imdsrender/conf.d/"):
                for resource in yaml.safe_load(item["content"])["templates"]:
                    if "reload_cmd" in resource:
                        found[example.name] = resource["reload_cmd"]
    for lineno, line in enumerate((ROOT / "README.md").read_text().splitlines(), 1):
        if line.strip().startswith("reload_cmd:"):
            found[f"README.md:{lineno}"] = line.split(":", 1)[1].strip()
    return found


def test_shipped_reload_commands_do_not_block_on_the_app() -> None:
    """An app ordered After=imdsrender.service has its start job waiting for
    the boot render; a blocking systemctl reload/restart of it waits for that
    job in turn: every resource hangs until reload_timeout (issue #15)."""
    commands = shipped_reload_commands()
    assert len(commands) >= 3, commands
    for where, command in commands.items():
        argv = command.split()
        if argv[0] == "systemctl":
            assert "--no-block" in argv, f"{where}: {command}"
            assert argv[2].startswith("try-"), f"{where}: {command} would start a stopped app"


def test_boot_test_is_in_ci_and_stops_containers_by_pid() -> None:
    script = (PACKAGING / "boot-test.sh").read_text()
    assert "packaging/boot-test.sh" in (ROOT / ".ci" / "run").read_text()
    for banned in ("pkill", "killall", "machinectl"):
        assert banned not in script, banned
    assert "trap cleanup EXIT" in script
    result = subprocess.run(["bash", "-n", str(PACKAGING / "boot-test.sh")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def write_confdir(example: Path, confdir: Path) -> None:
    """The /etc/imdsrender part of an example's write_files, under *confdir*."""
    for item in yaml.safe_load(example.read_text())["write_files"]:
        if item["path"].startswith("/etc/imdsrender/"):
            path = confdir / item["path"][len("/etc/imdsrender/"):]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(item["content"])


@pytest.mark.parametrize("example", CLOUD_EXAMPLES, ids=lambda p: p.name)
def test_cloud_init_example_config_passes_imdsrender_check(example: Path, tmp_path: Path) -> None:
    write_confdir(example, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "imdsrender", "check", "--confdir", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -------------------------------------------------------------- with tools

@pytest.mark.tools
@pytest.mark.parametrize("example", CLOUD_EXAMPLES, ids=lambda p: p.name)
def test_cloud_init_schema_accepts_example(example: Path) -> None:
    if not shutil.which("cloud-init"):
        pytest.skip("cloud-init is not installed (packaging/ci.sh installs it)")
    result = subprocess.run(["cloud-init", "schema", "-c", str(example)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.tools
def test_systemd_analyze_verify_units(tmp_path: Path) -> None:
    """Verify the repo's units with a stand-in /usr/bin/imdsrender.

    verify insists that ExecStart's binary exists; a private mount namespace
    overlays a fake one on /usr/bin so nothing on the machine changes.
    """
    if not shutil.which("systemd-analyze") or not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs systemd-analyze, unshare and root")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "imdsrender").write_text("#!/bin/sh\nexit 0\n")
    (fake / "imdsrender").chmod(0o755)
    units = " ".join(str(ROOT / "systemd" / unit) for unit in UNITS)
    script = (f"mount -t overlay overlay -o lowerdir={fake}:/usr/bin /usr/bin || exit 77; "
              f"exec systemd-analyze verify {units}")
    result = subprocess.run(["unshare", "-m", "sh", "-c", script],
                            capture_output=True, text=True, timeout=120, check=False)
    if result.returncode == 77:
        pytest.skip("cannot mount an overlay here: " + result.stderr.strip())
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == "", "systemd-analyze verify warned"
