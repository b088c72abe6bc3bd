"""Value objects that flow between the steps: settings, resources, outcomes.

Standard library only (and the error kinds), so the IMDS transport, the
writer and the metrics can take these without importing the YAML loader or
Jinja2.  All frozen: a step returns new objects, never edits old ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from .errors import Error

MiB = 1024 * 1024
DEFAULT_STATE_DIR = "/var/lib/imdsrender"  # StateDirectory=imdsrender in the units
MAX_CONCURRENCY = 256  # IMDS throttles long before; urllib3 sizes its pool up front
MAX_RETRIES = 100  # more is a typo: with backoff it would retry for days

# Every duration flag and setting, in seconds: (least, most).  Below the least
# is meaningless (a timeout of 0, an interval that busy-loops IMDS); above the
# most is a typo that would overflow timers after the first poll.
DURATION_BOUNDS = {
    "timeout": (0.001, 3600.0),
    "boot_wait": (0.0, 3600.0),
    "cache_ttl": (0.0, 7 * 86400.0),
    "interval": (0.1, 7 * 86400.0),  # 100ms: at most 10 polls a second
    "check_timeout": (0.001, 86400.0),
    "reload_timeout": (0.001, 86400.0),
    "run_timeout": (0.001, 86400.0),
}


def bounded_duration(name: str, seconds: float, where: str) -> float:
    """*seconds* when within DURATION_BOUNDS[name], else a UsageError naming *where*."""
    from .errors import UsageError

    least, most = DURATION_BOUNDS[name]
    if not least <= seconds <= most:
        raise UsageError(where, f"{name.replace('_', ' ')} must be {_secs(least)}..{_secs(most)}"
                         f", not {_secs(seconds)}", "write e.g. 500ms, 30s, 2m, 1h")
    return seconds


def _secs(seconds: float) -> str:
    return f"{seconds:g}s"

# What happened to one resource (outcome.status); metrics and logs use these.
UNCHANGED = "unchanged"
WRITTEN = "written"
WOULD_WRITE = "would-write"
FAILED = "failed"
STATUSES = (UNCHANGED, WRITTEN, WOULD_WRITE, FAILED)

# How a whole run (or poll) ended: metrics label runs with these, logs too.
RUN_OK = "ok"  # no resource failed
RUN_FAILED = "failed"  # some resource failed
RUN_ERROR = "error"  # nothing rendered (IMDS unavailable, a usage error)

# The commands a sync may run (StepResult.step).
CHECK = "check"
RELOAD = "reload"
NOT_STARTED = 127  # StepResult.returncode of a command that could not start, as sh says


@dataclass(frozen=True)
class ImdsSettings:
    """What the IMDS client needs; see DESIGN.md "IMDS client rules"."""

    endpoint: Optional[str] = None  # None: resolved from the environment / mode
    endpoint_mode: str = "ipv4"
    token_ttl: int = 21600
    timeout: float = 1.0
    retries: int = 3
    boot_wait: float = 60.0
    run_timeout: Optional[float] = None  # a whole run's IMDS time; None: derived (imds.client)
    allow_imdsv1: bool = False
    max_leaf_bytes: int = 1 * MiB
    max_run_bytes: int = 16 * MiB
    max_depth: int = 16
    max_listing_entries: int = 10_000  # a real listing has tens; a hostile one, millions
    max_requests: int = 20_000  # GETs a run (or poll) may make, empty answers included


@dataclass(frozen=True)
class FetchLimits:
    """The caps of one fetch: requests in flight, directory depth, bytes, entries, requests.

    The one place their defaults live; build it from the settings with
    :meth:`Settings.fetch_limits`, so every command fetches under the same caps.
    """

    concurrency: int = 8
    max_depth: int = ImdsSettings.max_depth
    max_run_bytes: int = ImdsSettings.max_run_bytes
    max_listing_entries: int = ImdsSettings.max_listing_entries
    max_requests: int = ImdsSettings.max_requests


@dataclass(frozen=True)
class Settings:
    imds: ImdsSettings = field(default_factory=ImdsSettings)
    cache_ttl: float = 60.0
    concurrency: int = FetchLimits.concurrency
    state_dir: str = DEFAULT_STATE_DIR  # see imdsrender.state

    def fetch_limits(self) -> FetchLimits:
        """The caps every fetch of a run uses (run, get and snapshot alike)."""
        imds = self.imds
        return FetchLimits(concurrency=self.concurrency, max_depth=imds.max_depth,
                           max_run_bytes=imds.max_run_bytes,
                           max_listing_entries=imds.max_listing_entries,
                           max_requests=imds.max_requests)


@dataclass(frozen=True)
class Resource:
    """One template resource, validated and with every default resolved."""

    origin: str  # "conf.d/app.yaml:3" - where it was declared, for messages
    src: str  # absolute path of the template file
    template: str  # name of the template relative to templates/
    dest: str
    keys: Tuple[str, ...]  # normalised keys (given or derived)
    mode: int = 0o644
    owner: Optional[int] = None  # uid
    group: Optional[int] = None  # gid
    check_cmd: Optional[str] = None
    reload_cmd: Optional[str] = None
    check_timeout: float = 30.0
    reload_timeout: float = 60.0
    # The template and every template it includes/imports/extends by literal
    # name, found once at load: what ``check`` compiles.  Empty: just template.
    closure: Tuple[str, ...] = ()


@dataclass(frozen=True)
class StepResult:
    """One check_cmd or reload_cmd that ran: what metrics and logs read about it."""

    step: str  # CHECK | RELOAD
    seconds: float
    returncode: int  # negative: killed by that signal; NOT_STARTED: could not start
    timed_out: bool = False


@dataclass(frozen=True)
class Outcome:
    """What the write step did for one resource; ``diff`` is redacted when sensitive.

    ``steps`` are the commands that ran, in order; ``seconds`` is the time to
    render and write the resource (commands included), set by the caller
    that timed both.  Metrics are built from outcomes alone.
    """

    dest: str
    status: str  # UNCHANGED | WRITTEN | WOULD_WRITE | FAILED
    reloaded: bool = False
    diff: Optional[str] = None
    error: Optional[Error] = None  # the render or write error that failed it
    steps: Tuple[StepResult, ...] = ()
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status == FAILED
