"""``imdsrender demo``: render examples/ against an in-process emulator into a temp dir.

check_cmd and reload_cmd are not run (they name services this machine may
not have); the demo says what would have run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

from ...errors import Error
from ...model import Resource
from ..pipeline import load_job, run_once, without_commands


def examples_dir() -> Path:
    """The bundled examples: inside the package when installed, else the repo's."""
    package = Path(__file__).resolve().parents[2]  # imdsrender/
    for candidate in (package / "examples", package.parent / "examples"):
        if (candidate / "conf.d").is_dir():
            return candidate
    raise Error("examples", "the bundled examples are missing", "reinstall imdsrender")


def run(args: argparse.Namespace) -> int:
    from ...emulator import Emulator

    confdir = examples_dir()
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="imdsrender-demo-") as out:
        args = argparse.Namespace(**{**vars(args), "confdir": str(confdir), "config": None,
                                     "endpoint": emulator.url, "data": None})
        job = load_job(args, dest_root=out)
        job = dataclasses.replace(job, resources=tuple(without_commands(r)
                                                       for r in job.resources))
        code = run_once(job)
        print(f"# emulator: {emulator.url}, {emulator.count()} requests")
        for resource in job.resources:
            shown = os.path.relpath(resource.dest, out)
            print(f"\n==> /{shown} (mode {resource.mode:04o}, from {resource.origin}) <==")
            if os.path.exists(resource.dest):
                print(_shown(resource), end="")
    return code


def _shown(resource: Resource) -> str:
    """The rendered file, or only its size when it holds credentials (as diffs do)."""
    from ...keys import REDACTED, is_credentials

    text = Path(resource.dest).read_text("utf-8", "surrogateescape")
    if any(is_credentials(k) for k in resource.keys):
        return f"({len(text.splitlines())} lines, {REDACTED}: resource uses credentials)\n"
    return text
