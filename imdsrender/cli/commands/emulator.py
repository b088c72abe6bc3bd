"""``imdsrender emulator``: serve the IMDSv2 emulator on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import threading

from .. import EXIT_OK


def run(args: argparse.Namespace) -> int:
    from ...emulator import serve

    emulator = serve(args.port, args.data, args.latency_ms)
    print(f"imdsrender: emulator listening on {emulator.url} (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    return EXIT_OK
