"""What each command imports: the start-up budgets of bench/ and the production/emulator line.

Each case runs the real CLI in a fresh interpreter and reads ``sys.modules``
at exit, so a module imported by any path (at top level or lazily) counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Set

from tests.helpers import ROOT, SAFE_ENDPOINT, ConfDir

FIXTURE = str(ROOT / "imdsrender" / "data" / "default-fixture.json")
HEAVY = {"urllib3", "jinja2", "yaml"}
# Runs main() like the console script, then prints the top-level names of sys.modules.
PROBE = ("import atexit, json, sys\n"
         "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stdout__))\n"
         "from imdsrender.cli import main\n"
         "sys.exit(main(sys.argv[1:]))\n")


def modules_after(*args: str) -> Set[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    env["IMDS_ENDPOINT"] = SAFE_ENDPOINT
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)
    last: List[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return set(last)


def demo_confdir(tmp_path: Path) -> ConfDir:
    confdir = ConfDir(tmp_path)
    confdir.resource("id.j2", '{{ getv("/meta-data/instance-id") }}\n')
    return confdir


def test_version_imports_none_of_urllib3_jinja2_yaml() -> None:
    assert modules_after("--version") & HEAVY == set()


def test_check_imports_no_urllib3(tmp_path: Path) -> None:
    confdir = demo_confdir(tmp_path)
    loaded = modules_after("check", "--confdir", confdir.path)
    assert "jinja2" in loaded  # the probe sees lazy imports too
    assert "urllib3" not in loaded


def test_a_data_run_never_imports_http_server_or_the_emulator(tmp_path: Path) -> None:
    confdir = demo_confdir(tmp_path)
    loaded = modules_after("--onetime", "--confdir", confdir.path, "--data", FIXTURE)
    assert confdir.dest("id").read_text() == "i-0123456789abcdef0\n"
    assert "http.server" not in loaded
    assert "imdsrender.emulator" not in loaded
    assert "imdsrender.cli.commands.main" in loaded  # the probe did run the command


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    confdir = demo_confdir(tmp_path)
    loaded = modules_after("check", "--confdir", confdir.path)
    commands = {m for m in loaded if m.startswith("imdsrender.cli.commands.")}
    assert commands == {"imdsrender.cli.commands.check"}
