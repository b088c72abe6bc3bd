"""Logging setup: one line a record to stderr, as text or as JSON (journald, shippers).

Every module logs to ``logging.getLogger(__name__)``; JSON records carry
the logger name and the structured fields the pipeline adds with ``extra``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Dict


class JsonFormatter(logging.Formatter):
    """One JSON object a line: what journald and log shippers want."""

    FIELDS = ("resource", "path", "status", "duration_ms", "attempt")

    def format(self, record: logging.LogRecord) -> str:
        entry: Dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("imdsrender: %(levelname)s: %(message)s"))
    from .journal import install

    install(handler)  # under systemd: a <N> priority on each line for journald
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper()))
