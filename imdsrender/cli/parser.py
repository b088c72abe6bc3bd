"""Flags and the table of subcommands, imported lazily (in the style of pip's commands).

Every subcommand's flags are declared here (argparse needs them for
``--help``), but the module that runs it is imported only once it is
chosen: building the parser costs argparse and nothing of urllib3, Jinja2
or PyYAML, which is what keeps ``--version`` and ``check`` fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import reprlib
import sys
from types import ModuleType
from typing import Any, Callable, Dict, NamedTuple, Sequence

from ..errors import UsageError
from ..model import MAX_CONCURRENCY
from ..quantities import ascii_int, parse_duration
from . import DEFAULT_CONFDIR, EXIT_USAGE, shorten


class CommandInfo(NamedTuple):
    """A subcommand: the module under imdsrender.cli.commands that runs it, and its help."""

    module: str
    summary: str


# The top-level command (no COMMAND given: --onetime / --interval) is "main".
COMMANDS: Dict[str, CommandInfo] = {
    "main": CommandInfo("main", "render once or every interval"),
    "get": CommandInfo("get", "print metadata values, one per line"),
    "check": CommandInfo("check", "validate config and templates (no IMDS)"),
    "emulator": CommandInfo("emulator", "serve an IMDSv2 emulator on 127.0.0.1"),
    "demo": CommandInfo("demo", "render the bundled examples against the emulator"),
    "doctor": CommandInfo("doctor", "probe IMDS step by step: what fails, why, the fix"),
    "snapshot": CommandInfo("snapshot", "save metadata as a JSON fixture"),
    "test": CommandInfo("test", "render against fixtures and compare with golden files"),
    "migrate-confd": CommandInfo("migrate", "convert a confd confdir (TOML + Go templates) "
                                 "to YAML + Jinja2"),
}


def load_command(name: str) -> ModuleType:
    """The module that runs *name* (it has ``run(args) -> int``), imported now."""
    return importlib.import_module(f"{__package__}.commands.{COMMANDS[name].module}")


class _Parser(argparse.ArgumentParser):
    """argparse with DESIGN's one-line error format and exit code 2.

    *json_errors*: ``--log-format json`` was on the command line, so even a
    flag refused before logging is set up is reported as one JSON line.
    """

    def __init__(self, *args: Any, json_errors: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_errors = json_errors

    def error(self, message: str) -> Any:  # type: ignore[override]
        text = f"{shorten(message)}; see '{self.prog} --help'"
        if self.json_errors:
            from .logs import setup_logging

            setup_logging("error", "json")
            logging.getLogger(__name__).error("%s", text, extra={"status": "failed"})
        else:
            sys.stderr.write(f"imdsrender: {text}\n")
        sys.exit(EXIT_USAGE)


def wants_json(argv: Sequence[str]) -> bool:
    """Whether *argv* asks for ``--log-format json`` (looked at before parsing it)."""
    pairs = zip(argv, list(argv[1:]) + [""])
    return any(a == "--log-format=json" or (a, b) == ("--log-format", "json") for a, b in pairs)


def _duration(flag: str, setting: str = "") -> Callable[[str], float]:
    """An argparse type for a duration flag whose errors name the flag.

    The bounds are model.DURATION_BOUNDS, the ones the settings file obeys.
    """

    def parse(text: str) -> float:
        from ..model import bounded_duration

        try:
            seconds = parse_duration(text, flag)
            return bounded_duration(setting or flag[2:].replace("-", "_"), seconds, flag)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(exc.what) from None

    parse.__name__ = "duration"
    return parse


def _whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type for ASCII digits in low..high (int() alone takes '\u0663' as 3)."""

    def parse(text: str) -> int:
        number = ascii_int(text) if len(text) <= len(str(high)) else None
        if number is None or not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number {low}..{high}, "
                                             f"got {reprlib.repr(text)}")
        return number

    parse.__name__ = "number"
    return parse


MAX_PORT = 65535


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Options every command shares.

    On sub-commands they default to SUPPRESS so that an option given before
    the sub-command is not overwritten by the sub-parser's default.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    parser.add_argument("--confdir", default=default(DEFAULT_CONFDIR),
                        help=f"configuration directory (default {DEFAULT_CONFDIR})")
    parser.add_argument("--config", default=default(None),
                        help="settings file (default CONFDIR/imdsrender.yaml)")
    parser.add_argument("--endpoint", default=default(None), help="IMDS endpoint URL")
    parser.add_argument("--timeout", type=_duration("--timeout"), default=default(None),
                        help="per-request timeout, e.g. 1s")
    parser.add_argument("--boot-wait", type=_duration("--boot-wait"), default=default(None),
                        help="how long to wait for IMDS to answer at all, e.g. 60s")
    parser.add_argument("--concurrency", type=_whole_number(1, MAX_CONCURRENCY),
                        default=default(None),
                        help="parallel IMDS requests (default 8)")
    parser.add_argument("--data", default=default(None), metavar="FILE",
                        help="render from a JSON fixture instead of IMDS (no network)")
    parser.add_argument("--log-level", default=default("info"),
                        choices=("debug", "info", "warning", "error"))
    parser.add_argument("--log-format", default=default("text"), choices=("text", "json"))


def build_parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    parser = _Parser(json_errors=json_errors, prog="imdsrender",
                     description="Render configuration files from EC2 "
                     "instance metadata (IMDSv2) with Jinja2 templates.",
                     allow_abbrev=False)  # else `emulator --log` is "ambiguous" with --log-*
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"imdsrender {__version__}")
    _add_common(parser, top=True)
    _main_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, add_flags in _SUBCOMMAND_FLAGS.items():
        add_flags(sub.add_parser(name, help=COMMANDS[name].summary, allow_abbrev=False,
                                 json_errors=json_errors))
    return parser


def _main_flags(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--onetime", action="store_true", help="render once and exit")
    mode.add_argument("--interval", type=_duration("--interval"), metavar="DURATION",
                      help="render every DURATION (plain seconds or 30s, 5m, 1h)")
    mode.add_argument("--watch", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--noop", action="store_true",
                        help="print what would change as a diff; write and run nothing")
    parser.add_argument("--imds-cache-ttl", type=_duration("--imds-cache-ttl", "cache_ttl"),
                        help="interval mode: how long fetched values are reused (default 60s)")
    parser.add_argument("--metrics-addr", metavar="HOST:PORT",
                        help="interval mode: serve /metrics, /health, /ready")
    parser.add_argument("--state-dir", metavar="DIR",
                        help="where runs remember what they rendered and reloads still "
                        "owed (default /var/lib/imdsrender, used when it exists)")
    parser.add_argument("--metrics-textfile", metavar="PATH",
                        help="write metrics in the text format at the end of the run")


def _get_flags(get: argparse.ArgumentParser) -> None:
    _add_common(get, top=False)
    get.add_argument("keys", nargs="+", metavar="KEY", help="a key, a directory key (ending "
                     "in /) or / for the whole tree")
    get.add_argument("--show-secrets", action="store_true",
                     help="print credentials values instead of <redacted>")
    get.add_argument("--json", action="store_true", help="print one JSON object {path: value}")


def _check_flags(check: argparse.ArgumentParser) -> None:
    _add_common(check, top=False)


def _emulator_flags(emulator: argparse.ArgumentParser) -> None:
    emulator.add_argument("--host", default="127.0.0.1", help="IP address to listen on")
    emulator.add_argument("--port", type=_whole_number(0, MAX_PORT), default=1338)
    emulator.add_argument("--data", metavar="FILE", help="JSON fixture (default: built-in)")
    emulator.add_argument("--latency-ms", type=float, default=0.0)
    emulator.add_argument("--scenario", metavar="NAME", help="a bad day of the real IMDS: "
                          "hop-limit, imds-disabled, imdsv1-only, tags-disabled, no-role, "
                          "throttled, slow, flaky, token-expiry")
    emulator.add_argument("--fault", metavar="PATH=STATUS[:COUNT]", action="append", default=[],
                          help="answer STATUS for PATH (a glob), COUNT times or always")
    emulator.add_argument("--log", action="store_true",
                          help="one line per request on stderr: method, path, status, ms")
    emulator.set_defaults(log_level="info", log_format="text")


def _doctor_flags(doctor: argparse.ArgumentParser) -> None:
    _add_common(doctor, top=False)
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.add_argument("--ipv6", nargs="?", const="http://[fd00:ec2::254]", metavar="URL",
                        help="also check the IPv6 endpoint (default fd00:ec2::254)")
    doctor.add_argument("--burst", type=int, default=20, metavar="N",
                        help="requests sent back to back to detect throttling (0: skip)")


def _demo_flags(demo: argparse.ArgumentParser) -> None:
    demo.set_defaults(log_level="warning", log_format="text")


def _snapshot_flags(snapshot: argparse.ArgumentParser) -> None:
    _add_common(snapshot, top=False)
    snapshot.add_argument("keys", nargs="*", metavar="KEY",
                          help="keys to save (default: what the resources need; / for all)")
    snapshot.add_argument("-o", "--output", metavar="FILE", help="write here, not to stdout")
    snapshot.add_argument("--include-credentials", action="store_true",
                          help="keep credentials paths (the file is then mode 0600)")


def _test_flags(test: argparse.ArgumentParser) -> None:
    _add_common(test, top=False)
    test.add_argument("cases", metavar="CASES_DIR",
                      help="one directory per case: fixture.json and expected/<dest path>")
    test.add_argument("--update", action="store_true", help="rewrite the golden files")
    test.set_defaults(log_level="warning")


def _migrate_flags(migrate: argparse.ArgumentParser) -> None:
    migrate.add_argument("src", metavar="SRC")
    migrate.add_argument("out", metavar="OUT")
    migrate.add_argument("--force", action="store_true", help="overwrite files in OUT")
    migrate.set_defaults(log_level="info", log_format="text")


# In --help order (the order they were always listed in).
_SUBCOMMAND_FLAGS: Dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "get": _get_flags,
    "check": _check_flags,
    "emulator": _emulator_flags,
    "doctor": _doctor_flags,
    "demo": _demo_flags,
    "snapshot": _snapshot_flags,
    "test": _test_flags,
    "migrate-confd": _migrate_flags,
}
