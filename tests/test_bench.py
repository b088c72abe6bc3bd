"""The benchmark's request-count check, run on every CI run.

The full benchmark (timings) is `python -m bench`; only the request counts
are asserted, and only through the runner's own exit status, so this test
fails exactly when `python -m bench --requests-only` would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.minimum import Expectation, directory_children, expect  # noqa: E402
from bench.run import main  # noqa: E402

TREE = {
    "/meta-data/instance-id": b"i-1",
    "/meta-data/tags/instance/Name": b"web",
    "/meta-data/tags/instance/Env": b"prod",
    "/meta-data/network/interfaces/macs/aa/vpc-id": b"vpc-1",
    "/meta-data/network/interfaces/macs/aa/subnet-id": b"subnet-1",
    "/meta-data/public-keys/0/_name": b"key",
    "/meta-data/public-keys/0/openssh-key": b"ssh-ed25519 AAAA",
    "/meta-data/events/recommendations/": b"",
}


def test_minimum_counts_each_leaf_and_listing_once() -> None:
    got = expect(["/meta-data/instance-id", "/meta-data/instance-id",
                  "/meta-data/tags/instance/", "/meta-data/tags/instance/Name"], TREE)
    assert got == Expectation(frozenset({
        "/meta-data/instance-id", "/meta-data/tags/instance/",
        "/meta-data/tags/instance/Name", "/meta-data/tags/instance/Env"}), depth=3)
    assert got.requests == 5  # token + 1 leaf + 1 listing + 2 tags


def test_minimum_walks_nested_directories_and_the_critical_path() -> None:
    got = expect(["/meta-data/network/"], TREE)
    assert got.requests == 1 + 4 + 2  # token; network/, interfaces/, macs/, aa/; 2 leaves
    assert got.depth == 1 + 4 + 1  # token, four listings one after the other, the leaves


def test_minimum_of_public_keys_skips_the_name_leaf_and_keeps_empty_dirs() -> None:
    tree = directory_children(TREE)
    assert tree["/meta-data/public-keys/0/"] == {"/meta-data/public-keys/0/openssh-key"}
    assert tree["/meta-data/events/recommendations/"] == set()
    assert expect(["/meta-data/events/"], TREE).requests == 3


def test_missing_keys_still_cost_one_request() -> None:
    assert expect(["/meta-data/nope", "/meta-data/gone/"], TREE).requests == 3


def test_requests_only_passes_when_every_count_is_the_minimum(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--requests-only"]) == 0
    out = capsys.readouterr().out
    assert out.count("= minimum") == 6
    assert "confd integration (8 keys)  1          12        12" in out


def test_requests_only_exits_1_when_a_count_exceeds_the_minimum(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A fetcher that asks for one more path than needed fails the run."""
    import bench.workloads as workloads
    from bench.minimum import expect as real_expect

    def one_short(keys: object, values: object) -> Expectation:
        full = real_expect(keys, values)  # type: ignore[arg-type]
        return Expectation(frozenset(sorted(full.paths)[1:]), full.depth)

    monkeypatch.setattr(workloads, "expect", one_short)
    assert main(["--requests-only"]) == 1
    assert "EXCEEDS by 1" in capsys.readouterr().out


def test_the_module_entry_point_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--requests-only"], cwd=REPO,
                          capture_output=True, text=True, env=dict(os.environ), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Requests per run vs the theoretical minimum" in done.stdout


def test_spawn_reports_the_childs_own_cpu_and_exit_code() -> None:
    """CPU per request rests on wait4 counting the child's CPU, not the caller's."""
    from bench.measure import spawn

    burn = "import sys, time\nend = time.process_time() + 0.2\n" \
           "while time.process_time() < end: pass\nsys.stderr.write('bye')\nsys.exit(3)"
    usage = spawn([sys.executable, "-c", burn], dict(os.environ))
    assert usage.code == 3
    assert usage.stderr == "bye"
    assert usage.cpu >= 0.2
    idle = spawn([sys.executable, "-c", "import time; time.sleep(0.3)"], dict(os.environ))
    assert idle.code == 0 and idle.cpu < 0.2 <= idle.seconds


def test_installed_runs_use_only_install_time_byte_code(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A byte-code prefix would make Python ignore the installed __pycache__."""
    from bench.installed import Installation

    monkeypatch.setenv("PYTHONPYCACHEPREFIX", "/tmp/elsewhere")
    monkeypatch.setenv("IMDS_ENDPOINT", "http://169.254.169.254")
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    env = Installation("/nowhere").env()
    assert "PYTHONPYCACHEPREFIX" not in env and "IMDS_ENDPOINT" not in env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
