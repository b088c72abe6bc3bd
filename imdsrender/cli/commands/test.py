"""``imdsrender test CASES_DIR``: render against each case's fixture, compare with golden files.

Writes only below a temp dir (and, with --update, the golden files);
check_cmd and reload_cmd are reported, never run.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

from ...errors import UsageError
from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import fetch_snapshot, load_job, render_and_write, without_commands, write_stdout


def run(args: argparse.Namespace) -> int:
    cases = sorted(p for p in Path(args.cases).iterdir() if (p / "fixture.json").is_file()) \
        if os.path.isdir(args.cases) else []
    if not cases:
        raise UsageError(args.cases, "no test cases found",
                         "each case is a directory holding fixture.json and expected/")
    failed = [case.name for case in cases if not _run_case(args, case)]
    print(f"imdsrender test: {len(cases) - len(failed)} passed, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return EXIT_FAILED if failed else EXIT_OK


def _run_case(args: argparse.Namespace, case: Path) -> bool:
    from ...keys import is_credentials
    from ...write import diff

    expected = case / "expected"
    ok = True
    with tempfile.TemporaryDirectory(prefix="imdsrender-test-") as out:
        job = load_job(args, dest_root=out)
        job = dataclasses.replace(job, data=str(case / "fixture.json"),
                                  resources=tuple(without_commands(r)
                                                  for r in job.resources))
        outcomes = render_and_write(job, fetch_snapshot(job))
        for resource, outcome in zip(job.resources, outcomes):
            golden = expected / os.path.relpath(resource.dest, out)
            if outcome.error is not None:
                print(f"FAIL {case.name}: {resource.origin}: {outcome.error}")
                ok = False
                continue
            actual = Path(resource.dest).read_bytes()
            if args.update:
                golden.parent.mkdir(parents=True, exist_ok=True)
                golden.write_bytes(actual)
                continue
            old = golden.read_bytes() if golden.is_file() else None
            if old != actual:
                print(f"FAIL {case.name}: {resource.origin}: output differs from {golden}")
                sensitive = any(is_credentials(k) for k in resource.keys)
                write_stdout(diff(str(golden), old, actual, sensitive=sensitive))
                ok = False
    print(f"{'ok  ' if ok else 'FAIL'} {case.name}")
    return ok
