"""Syslog priorities for journald when stderr is the journal.

Why: under systemd (``StandardError=journal``) journald stores every line it
reads from a service's stream at the unit's default priority (info) unless
the line starts with ``<N>``, a syslog level (``SyslogLevelPrefix=``, on by
default).  Without the prefix an ``ERROR:`` line and the exit-3 message are
invisible to ``journalctl -p err``.  systemd tells a process that its stream
is the journal with ``JOURNAL_STREAM=<device>:<inode>`` (see
systemd.exec(5)); the variable is inherited by children whose stderr may be a
pipe or a file, so it counts only when it names the stream actually open.
Outside the journal nothing changes: the text people read stays as it is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import IO, Mapping, Optional

# logging level -> syslog priority (RFC 5424): crit, err, warning, info, debug.
_PRIORITIES = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
               (logging.INFO, 6))
_DEBUG = 7
# What journald would take as a priority prefix already there.
_HAS_PREFIX = re.compile(r"<[0-7]>")


def priority(levelno: int) -> int:
    """The syslog priority for a logging level (custom levels round down)."""
    for threshold, value in _PRIORITIES:
        if levelno >= threshold:
            return value
    return _DEBUG


def prefixed(text: str, value: int) -> str:
    """``text`` with ``<value>`` in front of every line (journald splits lines)."""
    return "".join(f"<{value}>{line}" for line in text.splitlines(keepends=True))


def attached(stream: IO[str], environ: Optional[Mapping[str, str]] = None) -> bool:
    """True when ``stream`` is the journal stream systemd named in JOURNAL_STREAM."""
    env = os.environ if environ is None else environ
    device, sep, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep or not device.isdigit() or not inode.isdigit():
        return False
    try:
        info = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # no real descriptor (a StringIO)
        return False
    return (info.st_dev, info.st_ino) == (int(device), int(inode))


class PriorityFormatter(logging.Formatter):
    """Another formatter's text with the record's ``<N>`` on every line."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return prefixed(self.inner.format(record), priority(record.levelno))


class ErrorStream:
    """stderr for the lines the CLI writes itself: each one is an error.

    Why: usage errors, the exit-2/3 message and internal errors are written
    straight to stderr, not through logging; they get ``<3>``.  Lines that
    already carry a prefix (from :class:`PriorityFormatter`) pass unchanged.
    """

    def __init__(self, stream: IO[str], value: int = 3) -> None:
        self.stream = stream
        self.value = value
        self._line_start = True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            if self._line_start and not _HAS_PREFIX.match(piece):
                out.append(f"<{self.value}>")
            out.append(piece)
            self._line_start = piece.endswith(("\n", "\r"))
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> object:  # fileno, isatty, encoding...
        return getattr(self.stream, name)


def install(handler: logging.Handler, environ: Optional[Mapping[str, str]] = None) -> bool:
    """Under the journal: prefix ``handler``'s lines and the CLI's own stderr lines.

    Returns whether it did; outside the journal it changes nothing.
    """
    if not attached(sys.stderr, environ):
        return False
    handler.setFormatter(PriorityFormatter(handler.formatter or logging.Formatter()))
    if not isinstance(sys.stderr, ErrorStream):  # main() may run twice in one process
        sys.stderr = ErrorStream(sys.stderr)  # type: ignore[assignment]
    return True
