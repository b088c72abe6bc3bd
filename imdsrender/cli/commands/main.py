"""``imdsrender --onetime`` / ``--interval DURATION``: the run itself."""

from __future__ import annotations

import argparse

from ...errors import UsageError
from ..pipeline import load_job


def run(args: argparse.Namespace) -> int:
    if args.watch:
        raise UsageError("--watch", "watch mode not supported",
                         "IMDS cannot be watched; use --interval DURATION or a systemd timer")
    if not args.onetime and args.interval is None:
        raise UsageError("", "choose a mode: --onetime or --interval DURATION",
                         "see 'imdsrender --help'")
    if args.onetime and args.metrics_addr is None and args.metrics_textfile is None:
        from ..remember import run_onetime

        return run_onetime(args, None)  # no metrics flag: the metrics package is not loaded
    from ...metrics import from_flags

    recorder = from_flags(args.metrics_addr, args.metrics_textfile,
                          interval=args.interval is not None)
    if args.onetime:
        from ..remember import run_onetime

        return run_onetime(args, recorder)
    from ..interval import run_interval

    return run_interval(load_job(args), args, recorder)
