"""Observability: Prometheus metrics, the status server and the textfile collector.

Operators run fleets; when a file did not change on some instance they need
to see why without logging in.  The client's Observer hooks and each run's
outcomes become Prometheus metrics (:mod:`.registry`, labels bounded by
:mod:`.labels`), exposed by the interval-mode status server (:mod:`.server`)
or written after each run for node_exporter (:mod:`.textfile`).  The CLI
holds a :class:`~.recorder.Recorder` and calls ``run_pass``.

prometheus-client is the optional extra ``metrics``: importing this package
works without it; building :class:`Metrics` without it is exit 2 with a hint.
"""

from .labels import error_reason, path_category, retry_reason
from .recorder import EXTRA_HINT, MetricsUnavailable, Recorder, from_flags
from .registry import Metrics
from .server import StatusServer, parse_addr, start_status_server
from .textfile import MetricsError, check_textfile_path, write_textfile

__all__ = [
    "EXTRA_HINT", "Metrics", "MetricsError", "MetricsUnavailable", "Recorder", "StatusServer",
    "check_textfile_path", "error_reason", "from_flags", "parse_addr", "path_category",
    "retry_reason", "start_status_server", "write_textfile",
]
