"""``imdsrender migrate-confd SRC OUT``: convert a confd confdir to YAML + Jinja2."""

from __future__ import annotations

import argparse
import logging
import sys

from .. import EXIT_FAILED, EXIT_OK

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    from ...migrate import migrate_confdir

    report = migrate_confdir(args.src, args.out, force=args.force)
    for path in report.written:
        log.info("wrote %s", path)
    for problem in report.problems:
        sys.stderr.write(f"imdsrender: {problem}\n")
    return EXIT_FAILED if report.problems else EXIT_OK
