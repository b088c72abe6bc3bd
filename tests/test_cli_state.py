"""Run state end to end: the unchanged run skips YAML and Jinja2; any change renders; owed reloads.

Each run is the real CLI in a fresh interpreter that prints ``sys.modules``
at exit, so "did it render" is read from whether jinja2 was imported, not
from timings.  Request counts come from the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Set, Tuple

import pytest

from imdsrender.emulator import Emulator
from tests.helpers import ROOT, SAFE_ENDPOINT, ConfDir
from tests.test_cli_imports import PROBE

HEAVY = {"jinja2", "yaml"}


class Run(NamedTuple):
    code: int
    modules: Set[str]
    requests: int
    stderr: str

    @property
    def rendered(self) -> bool:
        return "jinja2" in self.modules


def run(confdir: ConfDir, emulator: Emulator, state_dir: Optional[Path], *extra: str) -> Run:
    """``imdsrender --onetime`` in a fresh interpreter; the modules it imported, its requests."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    env["IMDS_ENDPOINT"] = SAFE_ENDPOINT
    emulator.reset_counters()
    flag = [] if state_dir is None else ["--state-dir", str(state_dir)]
    done = subprocess.run([sys.executable, "-c", PROBE, "--onetime", *confdir.flags(emulator),
                           *flag, *extra],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    modules = set(json.loads(done.stdout.strip().splitlines()[-1]))
    return Run(done.returncode, modules, emulator.count(), done.stderr)


@pytest.fixture
def seeded(confdir: ConfDir) -> ConfDir:
    """Two resources, one of them including a second template."""
    (confdir.path_obj / "templates" / "part.j2").write_text("region={{ getv('/meta-data/"
                                                            "placement/region') }}\n")
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n')
    confdir.resource("main.j2", '{% include "part.j2" %}', mode="0640")
    return confdir


def test_an_unchanged_run_imports_neither_jinja2_nor_yaml_and_writes_nothing(
        seeded: ConfDir, emulator: Emulator, tmp_path: Path) -> None:
    first = run(seeded, emulator, tmp_path / "state")
    assert first.code == 0 and first.rendered, first.stderr
    before = os.stat(seeded.dest("id"))
    second = run(seeded, emulator, tmp_path / "state")
    assert second.code == 0, second.stderr
    assert second.modules & HEAVY == set()
    assert "imdsrender.metrics" not in first.modules | second.modules  # no metrics flag
    assert "imdsrender.cli.remember" in second.modules  # the probe did take the state path
    assert second.requests == first.requests  # the same plan, fetched once
    after = os.stat(seeded.dest("id"))
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert oct(os.stat(tmp_path / "state").st_mode & 0o777) == "0o700"
    assert [oct(p.stat().st_mode & 0o777) for p in (tmp_path / "state").iterdir()] == ["0o600"]


def _edit_value(c: ConfDir, e: Emulator) -> None:
    e.set_value("/meta-data/instance-id", "i-0fffffffffffffff0")


def _edit_include(c: ConfDir, e: Emulator) -> None:
    (c.path_obj / "templates" / "part.j2").write_text("REGION={{ getv('/meta-data/"
                                                      "placement/region') }}\n")


def _edit_template_same_size(c: ConfDir, e: Emulator) -> None:
    path = c.path_obj / "templates" / "id.j2"
    stamp = path.stat()
    path.write_text(path.read_text().replace("{{ getv", "{{getv ").replace(") }}", ")}} "))
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same size and mtime


def _edit_dest(c: ConfDir, e: Emulator) -> None:
    c.dest("id").write_text("edited by hand\n")


def _chmod_dest(c: ConfDir, e: Emulator) -> None:
    os.chmod(c.dest("main"), 0o600)


def _chown_dest(c: ConfDir, e: Emulator) -> None:
    os.chown(c.dest("main"), 65534, 65534)


def _remove_dest(c: ConfDir, e: Emulator) -> None:
    c.dest("id").unlink()


def _add_resource(c: ConfDir, e: Emulator) -> None:
    c.resource("type.j2", '{{ getv("/meta-data/instance-type") }}\n')


def _edit_settings(c: ConfDir, e: Emulator) -> None:
    (c.path_obj / "imdsrender.yaml").write_text("concurrency: 2\n")


CHANGES: List[Callable[[ConfDir, Emulator], None]] = [
    _edit_value, _edit_include, _edit_template_same_size, _edit_dest, _chmod_dest,
    _chown_dest, _remove_dest, _add_resource, _edit_settings]


@pytest.mark.parametrize("change", CHANGES, ids=lambda f: f.__name__.strip("_"))
def test_every_kind_of_change_renders_again(seeded: ConfDir, emulator: Emulator,
                                            tmp_path: Path,
                                            change: Callable[[ConfDir, Emulator], None]) -> None:
    if change is _chown_dest and os.geteuid() != 0:
        pytest.skip("chown needs root")
    assert run(seeded, emulator, tmp_path / "state").code == 0
    change(seeded, emulator)
    again = run(seeded, emulator, tmp_path / "state")
    assert again.code == 0 and again.rendered, again.stderr
    region = emulator.values["/meta-data/placement/region"].decode()
    expected_main = ("REGION=" if change is _edit_include else "region=") + region + "\n"
    assert seeded.dest("main").read_text() == expected_main
    assert os.stat(seeded.dest("main")).st_mode & 0o777 == 0o640
    assert seeded.dest("id").read_text().strip() == \
        emulator.values["/meta-data/instance-id"].decode()
    third = run(seeded, emulator, tmp_path / "state")  # and it is remembered again
    assert third.code == 0 and not third.rendered, third.stderr


def test_state_baked_into_an_image_still_renders_on_first_boot(
        seeded: ConfDir, make_emulator: Callable[..., Emulator], tmp_path: Path) -> None:
    build = make_emulator()
    assert run(seeded, build, tmp_path / "state").code == 0
    values = {k: v for k, v in build.values.items()}
    values["/meta-data/instance-id"] = b"i-0aaaaaaaaaaaaaaa1"
    boot = make_emulator(data=values)
    first_boot = run(seeded, boot, tmp_path / "state")
    assert first_boot.code == 0 and first_boot.rendered, first_boot.stderr
    assert seeded.dest("id").read_text() == "i-0aaaaaaaaaaaaaaa1\n"
    assert first_boot.requests == run(seeded, boot, tmp_path / "state").requests


@pytest.mark.parametrize("damage", ["corrupt", "foreign-version", "group-readable", "symlink"])
def test_a_state_file_that_cannot_be_trusted_is_ignored(seeded: ConfDir, emulator: Emulator,
                                                        tmp_path: Path, damage: str) -> None:
    state_dir = tmp_path / "state"
    path, record = _hand_edit_recorded(seeded, emulator, state_dir)
    if damage == "corrupt":
        path.write_text("{not json")
    elif damage == "foreign-version":
        path.write_text(json.dumps({**record, "version": "0.0.0-other"}))
    elif damage == "group-readable":
        path.write_text(json.dumps(record))
        path.chmod(0o640)
    else:
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps(record))
        forged.chmod(0o600)
        path.unlink()
        path.symlink_to(forged)
    again = run(seeded, emulator, state_dir, "--log-level", "debug")
    assert again.code == 0 and again.rendered, again.stderr
    assert seeded.dest("id").read_text() == "i-0123456789abcdef0\n"


def test_an_honest_forged_record_would_be_trusted(seeded: ConfDir, emulator: Emulator,
                                                  tmp_path: Path) -> None:
    """The control for the test above: the same edit, recorded properly, is believed."""
    state_dir = tmp_path / "state"
    path, record = _hand_edit_recorded(seeded, emulator, state_dir)
    path.write_text(json.dumps(record))
    assert not run(seeded, emulator, state_dir).rendered


def _hand_edit_recorded(seeded: ConfDir, emulator: Emulator,
                        state_dir: Path) -> Tuple[Path, Dict[str, Any]]:
    """After a first run, edit a dest and return a state record forged to match the edit."""
    from imdsrender.state import dest_stamp

    assert run(seeded, emulator, state_dir).code == 0
    (path,) = state_dir.iterdir()
    seeded.dest("id").write_text("edited by hand\n")
    record = json.loads(path.read_text())
    record["record"]["dests"][str(seeded.dest("id"))] = dest_stamp(str(seeded.dest("id")))
    return path, record


@pytest.mark.parametrize("flag", ["--noop", "--data"])
def test_noop_and_data_never_read_or_write_state(seeded: ConfDir, emulator: Emulator,
                                                 tmp_path: Path, flag: str) -> None:
    state_dir = tmp_path / "state"
    extra = [flag] if flag == "--noop" else [flag, str(ROOT / "imdsrender" / "data" /
                                                        "default-fixture.json")]
    assert run(seeded, emulator, state_dir, *extra).code == 0
    assert not state_dir.exists()
    assert run(seeded, emulator, state_dir).code == 0
    assert len(list(state_dir.iterdir())) == 1
    repeated = run(seeded, emulator, state_dir, *extra)
    assert repeated.code == 0 and repeated.rendered  # it did not take the remembered path


def test_a_failed_reload_is_retried_until_it_succeeds(confdir: ConfDir, emulator: Emulator,
                                                      tmp_path: Path) -> None:
    ready, log = tmp_path / "service-ready", tmp_path / "reloads"
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n',
                     reload_cmd=f"echo reload >> {log}; test -e {ready}")
    state_dir = tmp_path / "state"
    first = run(confdir, emulator, state_dir)
    assert first.code == 1 and "reload_cmd" in first.stderr
    assert confdir.dest("id").read_text() == "i-0123456789abcdef0\n"
    still = run(confdir, emulator, state_dir)
    assert still.code == 1 and log.read_text().count("reload") == 2
    ready.touch()
    retried = run(confdir, emulator, state_dir)
    assert retried.code == 0, retried.stderr
    assert log.read_text().count("reload") == 3
    done = run(confdir, emulator, state_dir)
    assert done.code == 0 and not done.rendered
    assert log.read_text().count("reload") == 3  # owed no longer


def test_the_state_dir_setting_keeps_owed_reloads(confdir: ConfDir, emulator: Emulator,
                                                  tmp_path: Path) -> None:
    log = tmp_path / "reloads"
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n',
                     reload_cmd=f"echo reload >> {log}; test -e {tmp_path / 'never'}")
    (confdir.path_obj / "imdsrender.yaml").write_text(f"state_dir: {tmp_path / 'kept'}\n")
    assert run(confdir, emulator, None).code == 1
    assert len(list((tmp_path / "kept").iterdir())) == 1
    assert run(confdir, emulator, None).code == 1
    assert log.read_text().count("reload") == 2  # retried from the record kept there
