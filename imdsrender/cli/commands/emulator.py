"""``imdsrender emulator``: serve the IMDSv2 emulator until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import List

from .. import EXIT_OK


def run(args: argparse.Namespace) -> int:
    from ...emulator import serve

    # Handlers before the "listening" line, so a SIGTERM right after it stops cleanly; they
    # only append to a list: Event.set() in a handler deadlocks if it lands inside wait().
    stopping: List[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, _: stopping.append(signum))
    access_log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.log else None
    emulator = serve(args.port, args.data, args.latency_ms, args.host, scenario=args.scenario,
                     faults=args.fault, access_log=access_log)
    print(f"imdsrender: emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
    while not stopping:
        time.sleep(0.1)
    emulator.stop()
    return EXIT_OK
