"""``--noop`` through the CLI: a diff on stdout, nothing on disk, no secret shown.

Issue 19, survivors 4 and 5: a resource that reads a credentials key and
then a plain key must stay sensitive (the last key read must not decide),
and a dry run must not even clean up stale stage files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Tuple

import pytest

from imdsrender import fetch, render, write
from imdsrender.model import Resource
from tests.helpers import ConfDir, run_cli

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CREDENTIALS = "/meta-data/iam/security-credentials/web-role"
PLAIN = "/meta-data/instance-id"


def fixture(tmp_path: Path) -> Path:
    path = tmp_path / "fixture.json"
    path.write_text(json.dumps({PLAIN: "i-0123456789abcdef0", CREDENTIALS: SECRET}))
    return path


def tree(directory: Path) -> Dict[str, Tuple[bytes, float, int]]:
    """Every file below *directory*: content, mtime and inode."""
    found = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = Path(root, name)
            st = path.stat()
            found[str(path)] = (path.read_bytes(), st.st_mtime, st.st_ino)
    return found


@pytest.mark.parametrize("first,second", [(CREDENTIALS, PLAIN), (PLAIN, CREDENTIALS)],
                         ids=["credentials-then-plain", "plain-then-credentials"])
def test_noop_diff_never_shows_a_credentials_value(confdir: ConfDir, tmp_path: Path,
                                                   first: str, second: str) -> None:
    confdir.resource("creds.conf.j2", f'a={{{{ getv("{first}") }}}}\n'
                                      f'b={{{{ getv("{second}") }}}}\n')

    result = run_cli("--onetime", "--noop", "--confdir", confdir.path,
                     "--data", str(fixture(tmp_path)))

    assert result.returncode == 0, result.stderr
    assert f"+++ {confdir.dest('creds.conf')}" in result.stdout  # the diff was printed
    assert "<redacted>" in result.stdout
    assert SECRET not in result.stdout + result.stderr
    assert not confdir.dest("creds.conf").exists()


@pytest.mark.parametrize("first,second", [(CREDENTIALS, PLAIN), (PLAIN, CREDENTIALS)],
                         ids=["credentials-then-plain", "plain-then-credentials"])
def test_render_then_noop_sync_redacts_whatever_the_key_order(tmp_path: Path, first: str,
                                                              second: str) -> None:
    """The same as above without a subprocess: render's flag reaches sync's diff."""
    (tmp_path / "t.j2").write_text(f'a={{{{ getv("{first}") }}}}\nb={{{{ getv("{second}") }}}}\n')
    resource = Resource(origin="conf.d/t.yaml:1", src=str(tmp_path / "t.j2"), template="t.j2",
                        dest=str(tmp_path / "out.conf"), keys=(CREDENTIALS, PLAIN))
    snapshot = fetch.Snapshot(values={PLAIN: b"i-1", CREDENTIALS: SECRET.encode()})

    rendered = render.render(render.make_environment(str(tmp_path)), resource, snapshot)
    outcome = write.sync(resource, rendered.content, sensitive=rendered.sensitive, noop=True)

    assert SECRET.encode() in rendered.content
    assert rendered.sensitive
    assert outcome.diff is not None and "<redacted>" in outcome.diff
    assert SECRET not in outcome.diff


def test_noop_leaves_stale_stage_files_and_everything_else_alone(confdir: ConfDir,
                                                                 tmp_path: Path) -> None:
    """A stage file left by a killed run is cleaned by a real run, never by --noop."""
    confdir.resource("app.conf.j2", f'id={{{{ getv("{PLAIN}") }}}}\n')
    confdir.out.mkdir()
    confdir.dest("app.conf").write_text("id=old\n")
    stale = confdir.out / ".app.imdsr-0a1b2c3d.conf"
    stale.write_text("half-written by a killed run\n")
    os.utime(stale, (1_000_000, 1_000_000))  # old enough for any age rule
    before = tree(confdir.out)

    result = run_cli("--onetime", "--noop", "--confdir", confdir.path,
                     "--data", str(fixture(tmp_path)))

    assert result.returncode == 0, result.stderr
    assert "-id=old" in result.stdout and "+id=i-0123456789abcdef0" in result.stdout
    assert tree(confdir.out) == before

    real = run_cli("--onetime", "--confdir", confdir.path, "--data", str(fixture(tmp_path)))

    assert real.returncode == 0, real.stderr
    assert not stale.exists()  # so the planted file was one a real run removes
    assert confdir.dest("app.conf").read_text() == "id=i-0123456789abcdef0\n"
