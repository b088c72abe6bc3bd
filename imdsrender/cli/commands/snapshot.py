"""``imdsrender snapshot``: save what IMDS (or a fixture) answers as a fixture."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional

from ...errors import UsageError
from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import bare_job, fetch_snapshot, load_job, open_source

log = logging.getLogger(__name__)

def run(args: argparse.Namespace) -> int:
    from ...fixture import dump_fixture, fixture_from_snapshot, public_key_names
    from ...keys import PUBLIC_KEYS, expand_key
    from ...write import write_small_file

    _check_output(args.output)
    if args.keys:
        keys = [k for key in args.keys for k in expand_key(key)]
        job = bare_job(args)
    else:
        job = load_job(args)
        keys = [k for r in job.resources for k in r.keys]
    source = open_source(job)
    snapshot = fetch_snapshot(job, source, keys=keys)
    for path, reason in sorted(snapshot.errors.items()):
        log.error("%s: %s", path, reason)
    values = fixture_from_snapshot(snapshot, include_credentials=args.include_credentials)
    if PUBLIC_KEYS in snapshot.listings:  # one more request: the listing with key names
        values.update(public_key_names(source.get(PUBLIC_KEYS)))
    text = dump_fixture(values)
    if args.output:
        # Mode from the first byte: credentials never sit in a 0644 file, not even briefly.
        try:
            write_small_file(args.output, text.encode("utf-8"),
                             0o600 if args.include_credentials else 0o644)
        except OSError as exc:
            raise UsageError("--output", f"writing {args.output} failed: {exc.strerror}",
                        "check that its directory exists and is writable") from exc
        log.info("wrote %s (%d paths)", args.output, len(values))
    else:
        sys.stdout.write(text)
    return EXIT_FAILED if snapshot.errors else EXIT_OK


def _check_output(path: Optional[str]) -> None:
    """Refuse an --output that cannot be written before anything is fetched."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UsageError("--output", f"{path} is a directory", "name a file, e.g. -o fixture.json")
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError("--output", f"directory of {path} does not exist", "create it first")
