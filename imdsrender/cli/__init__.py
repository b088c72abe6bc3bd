"""Command line: flags, modes (onetime / interval), subcommands, exit codes.

The CLI only wires the modules together: config -> plan -> fetch -> render
-> write.  :mod:`.parser` holds the flags and a table of subcommands whose
modules (:mod:`.commands`) are imported only when chosen, so
``imdsrender --version`` costs an interpreter start and little else, and
``imdsrender check`` never imports urllib3.  Nothing imports this package.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional, Sequence

from ..errors import Error

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
DEFAULT_CONFDIR = "/etc/imdsrender"

log = logging.getLogger(__name__)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console script: parse, set up logging, run the chosen command, map errors."""
    from .logs import setup_logging
    from .parser import build_parser, load_command, wants_json

    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(json_errors=wants_json(words)).parse_args(words)
    setup_logging(args.log_level, args.log_format)
    in_main = threading.current_thread() is threading.main_thread()  # else signal() refuses
    previous = signal.signal(signal.SIGTERM, _terminated) if in_main else None
    try:
        return int(load_command(args.command or "main").run(args))
    except Terminated:
        log.warning("terminated (SIGTERM)")
        return 128 + signal.SIGTERM
    except Error as exc:
        log.debug("traceback", exc_info=True)
        _report(args.log_format, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, the traceback only in debug
        log.debug("traceback", exc_info=True)
        _report(args.log_format, f"internal error: {type(exc).__name__}: {exc}; "
                "rerun with --log-level debug and report it")
        return EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM as an exception in the main thread, like Ctrl-C's KeyboardInterrupt.

    Not an Exception, so no handler swallows it: the finally blocks that kill
    a running check_cmd's process group and remove the stage file run
    before the process exits, instead of the default SIGTERM death that
    left both behind.
    """


def _terminated(signum: int, frame: object) -> None:
    raise Terminated()


def shorten(text: str, limit: int = 360) -> str:
    """*text*, its middle cut when longer than *limit*: messages echo the user's value,
    and a 5,000-digit one must not bury the where (at the start) and the hint (at the end)."""
    if len(text) <= limit:
        return text
    keep = (limit - 5) // 3
    return f"{text[:2 * keep]} ... {text[-keep:]}"


def _report(log_format: str, text: str) -> None:
    """The last line of a failed command: JSON in JSON mode, so stderr stays one object a line."""
    text = shorten(text)
    if log_format == "json":
        from ..model import RUN_FAILED  # not at the top: --version must stay light

        log.error("%s", text, extra={"status": RUN_FAILED})
    else:
        sys.stderr.write(f"imdsrender: {text}\n")
