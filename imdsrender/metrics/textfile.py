"""The textfile for node_exporter's textfile collector (``--metrics-textfile``).

A oneshot or timer run has no server to scrape, so the registry is written
in the text exposition format after each run, atomically (through the one
small-file write of :mod:`imdsrender.write.files`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from ..errors import Error, UsageError
from ..write.files import write_small_file

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Metrics

log = logging.getLogger(__name__)


class MetricsError(Error):
    """The textfile could not be written (the run itself is not affected)."""


def check_textfile_path(path: str) -> None:
    """A textfile path whose directory exists and that is not a directory (exit 2)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not path or os.path.isdir(path):
        raise UsageError("--metrics-textfile", f"{path!r} is not a file path",
                         "give a file such as /var/lib/node_exporter/textfile/imdsrender.prom")
    if not os.path.isdir(directory):
        raise UsageError("--metrics-textfile", f"directory {directory} does not exist",
                         "create it or point at node_exporter's textfile directory")


def write_textfile(path: str, metrics: Metrics) -> None:
    """Write the exposition to *path* atomically, mode 0644; raises MetricsError.

    The temp file is hidden and does not end in ``.prom``, so the collector
    never reads it half-written.
    """
    try:
        write_small_file(path, metrics.exposition(), 0o644)
    except OSError as exc:
        raise MetricsError("--metrics-textfile", f"writing {path} failed: {exc.strerror}",
                           "check free space and that the directory exists and is "
                           "writable") from exc
    log.debug("metrics written to %s", path, extra={"path": path})
