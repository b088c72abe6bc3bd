"""Issue 13 item 5: a dest path reaches check_cmd / reload_cmd as data, never as shell code.

Each command prints the path it received (``printf %s``) into a log; the
test asserts the exact bytes arrived and that the ``$(touch X)`` / backtick
payloads in the path never ran, whether the user quoted the placeholder
(``"{{ src }}"``, ``'{{ src }}'``, as migrate-confd writes it) or not.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from imdsrender.write import WRITTEN, sync
from tests.write.helpers import make

HOSTILE_NAMES = [
    "my app.conf",
    "it's.conf",
    'say "hi".conf',
    "$(touch PWNED).conf",
    "`touch PWNED`.conf",
    "a\nb; touch PWNED.conf",
    "'; touch PWNED; '.conf",
    '"; touch PWNED; ".conf',
    "-n.conf",
]

QUOTINGS = ["{{ WHICH }}", '"{{ WHICH }}"', "'{{ WHICH }}'", "{{.WHICH}}"]


@pytest.mark.parametrize("quoting", QUOTINGS)
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_commands_receive_the_exact_path_and_never_evaluate_it(
        tmp_path: Path, name: str, quoting: str) -> None:
    canary = tmp_path / "PWNED"
    workdir = tmp_path / "etc"
    workdir.mkdir()
    dest = workdir / name
    log = tmp_path / "seen.log"
    printer = f"printf '%s\\0' {quoting} >> {shlex.quote(str(log))}"
    both = printer.replace("WHICH", "src") + "; " + printer.replace("WHICH", "dest")
    resource = make(dest, check_cmd=both, reload_cmd=both)

    old = os.getcwd()
    os.chdir(tmp_path)  # so that a relative `touch PWNED` lands where we look
    try:
        out = sync(resource, b"content\n")
    finally:
        os.chdir(old)

    assert out.status == WRITTEN, out.error
    seen = log.read_bytes().split(b"\0")[:-1]
    staged, checked_dest, reloaded_src, reloaded_dest = (s.decode() for s in seen)
    assert Path(staged).parent == workdir and ".imdsr-" in Path(staged).name
    assert checked_dest == reloaded_src == reloaded_dest == str(dest)
    assert dest.read_bytes() == b"content\n"
    assert not canary.exists()
    assert not (workdir / "PWNED").exists()
