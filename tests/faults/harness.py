"""The fault-matrix runner: one Scenario = faults + expected exit, files, requests, time.

Every scenario runs the real CLI (``python -m imdsrender --onetime``) in a
subprocess against an emulator on 127.0.0.1, then checks the same things:
the exit code, every destination's exact bytes (the pre-existing ``old``
content kept, or the new content), no stage file left behind, at most
``max_requests`` requests and at most ``max_seconds`` of wall time (a
generous safety bound against hangs and retry loops, not a performance
assert), no ``X-Forwarded-For`` ever, a token on every GET in v2 mode, and
no traceback.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from imdsrender.emulator import Emulator
from tests.helpers import ConfDir, run_cli

OLD = b"old\n"  # what every destination holds before a scenario runs
ID = b"i-0123456789abcdef0\n"
TAGS = b"Environment=production\nName=web-1\ncost=center=cc-1234\n"

ID_TEMPLATE = '{{ getv("/meta-data/instance-id") }}\n'
TAGS_TEMPLATE = ('{% for k in ls("/meta-data/tags/instance/") %}'
                 '{{ k }}={{ getv("/meta-data/tags/instance/" ~ k, "<missing>") }}\n'
                 '{% endfor %}')
TAGS_KEYS = ["/meta-data/tags/instance/"]


@dataclass(frozen=True)
class Template:
    """One resource: template text rendered to out/<name>."""

    name: str
    text: str
    keys: Optional[Tuple[str, ...]] = None


DEFAULT_TEMPLATES = (Template("id", ID_TEMPLATE), Template("tags", TAGS_TEMPLATE,
                                                           tuple(TAGS_KEYS)))


class Context:
    """What a scenario's ``arrange`` and ``check`` hooks get: the emulator and helpers."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.others: List[Emulator] = []
        self.notes: Dict[str, Any] = {}

    def other(self) -> Emulator:
        """A second emulator: "another host" that must never be contacted."""
        emu = Emulator().start()
        self.others.append(emu)
        return emu

    def close(self) -> None:
        for emu in self.others:
            emu.stop()

    def gaps(self, method: str, path: str) -> List[float]:
        """Seconds between consecutive requests to one path (emulator clock)."""
        starts = [r.started for r in self.emu.requests
                  if r.method == method and r.path == _latest(path)]
        return [b - a for a, b in zip(starts, starts[1:])]

    def statuses(self) -> List[int]:
        """Every status the emulator answered (0: reset), in order."""
        return [r.status for r in self.emu.requests]


def _latest(path: str) -> str:
    return path if path.startswith("/latest") else "/latest" + path


@dataclass(frozen=True)
class Scenario:
    """One row of the matrix.

    ``files`` maps destination names to expected bytes (``OLD``: untouched);
    ``requests`` maps (method, path) to an exact count; ``stderr`` lists
    fragments the error output must hold.  ``start_after`` delays the
    emulator's start (connection refused until then).  ``clock_jump``
    (after N requests, by S seconds) moves the emulator's clock so tokens
    expire in the middle of a run.  ``bug`` names a known bug the row
    exposes: it runs as ``xfail(strict=True)`` until the fix lands.
    """

    name: str
    exit: int
    files: Mapping[str, bytes]
    max_requests: int
    max_seconds: float = 15.0
    arrange: Optional[Callable[[Context], None]] = None
    check: Optional[Callable[[Context, Any], None]] = None
    templates: Tuple[Template, ...] = DEFAULT_TEMPLATES
    settings: Optional[str] = None
    flags: Tuple[str, ...] = ()
    emulator: Mapping[str, Any] = field(default_factory=dict)
    requests: Mapping[Tuple[str, str], int] = field(default_factory=dict)
    stderr: Tuple[str, ...] = ()
    start_after: float = 0.0
    clock_jump: Optional[Tuple[int, float]] = None
    v1: bool = False
    slow: bool = False
    bug: Optional[str] = None  # a known bug: the row is xfail(strict) until it is fixed


class JumpingClock:
    """The emulator's clock, moved forward once the emulator has seen N requests."""

    def __init__(self, after: int, seconds: float) -> None:
        self.after, self.seconds = after, seconds
        self.emulator: Optional[Emulator] = None

    def __call__(self) -> float:
        seen = len(self.emulator.requests) if self.emulator is not None else 0
        return time.monotonic() + (self.seconds if seen >= self.after else 0.0)


@functools.cache
def keepalive_duplicates() -> int:
    """Requests sent twice by a client asking for 5 paths in a row after one 503.

    0 when each request is sent once (plus the one retry of the 503).
    """
    from imdsrender.config import ImdsSettings
    from imdsrender.imds.client import ImdsClient

    paths = ["/meta-data/instance-id", "/meta-data/ami-id", "/meta-data/instance-type",
             "/meta-data/hostname", "/meta-data/local-ipv4"]
    with Emulator() as emulator:
        emulator.add_fault("/meta-data/instance-id", status=503, times=1)
        client = ImdsClient(ImdsSettings(), endpoint=emulator.url, concurrency=1, environ={})
        for path in paths:
            client.get(path)
        return emulator.count() - (1 + len(paths) + 1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_confdir(tmp_path: Path, scenario: Scenario) -> ConfDir:
    confdir = ConfDir(tmp_path)
    confdir.out.mkdir(parents=True, exist_ok=True)
    for template in scenario.templates:
        fields: Dict[str, Any] = {}
        if template.keys is not None:
            fields["keys"] = list(template.keys)
        confdir.resource(template.name + ".j2", template.text, **fields)
        confdir.dest(template.name).write_bytes(OLD)
    if scenario.settings is not None:
        (confdir.path_obj / "imdsrender.yaml").write_text(scenario.settings)
    return confdir


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def run_scenario(scenario: Scenario, tmp_path: Path) -> Tuple[Context, Result, ConfDir]:
    """Arrange, run the CLI once, and return what happened (assertions are the caller's)."""
    confdir = build_confdir(tmp_path, scenario)
    kwargs = dict(scenario.emulator)
    clock = None
    if scenario.clock_jump is not None:
        clock = kwargs["clock"] = JumpingClock(*scenario.clock_jump)
    port = free_port() if scenario.start_after else 0
    emulator = Emulator(port=port, **kwargs)
    if clock is not None:
        clock.emulator = emulator
    ctx = Context(emulator)
    starter: Optional[threading.Timer] = None
    try:
        if scenario.start_after:
            url = f"http://127.0.0.1:{port}"
            starter = threading.Timer(scenario.start_after, emulator.start)
            starter.start()
        else:
            url = emulator.start().url
        if scenario.arrange is not None:
            scenario.arrange(ctx)
        started = time.monotonic()
        proc = run_cli("--onetime", "--confdir", confdir.path, "--endpoint", url,
                       *scenario.flags, timeout=scenario.max_seconds + 30)
        result = Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
    finally:
        if starter is not None:
            starter.join()
        emulator.stop()
        ctx.close()
    return ctx, result, confdir


def stray_files(directory: Path) -> List[str]:
    """Anything in out/ besides the destinations: stage files of ours or otherwise."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def assert_scenario(scenario: Scenario, ctx: Context, result: Result, confdir: ConfDir) -> None:
    """The checks every row gets, then the row's own."""
    emu = ctx.emu
    detail = f"{scenario.name}: exit {result.returncode}\nstderr:\n{result.stderr}"
    assert result.returncode == scenario.exit, detail
    assert "Traceback" not in result.stderr, detail
    assert "internal error" not in result.stderr, detail
    for fragment in scenario.stderr:
        assert fragment in result.stderr, f"{fragment!r} missing; {detail}"
    for name, expected in scenario.files.items():
        actual = confdir.dest(name).read_bytes()
        assert actual == expected, f"{scenario.name}: out/{name} is {actual[:200]!r}"
    assert stray_files(confdir.out) == [], detail
    assert emu.count() <= scenario.max_requests, \
        f"{scenario.name}: {emu.count()} requests > {scenario.max_requests}"
    for (method, path), expected_count in scenario.requests.items():
        assert emu.count(method, path) == expected_count, \
            f"{scenario.name}: {method} {path} seen {emu.count(method, path)}x, " \
            f"expected {expected_count}"
    assert result.seconds <= scenario.max_seconds, \
        f"{scenario.name}: took {result.seconds:.1f}s > {scenario.max_seconds}s"
    assert all(r.header("X-Forwarded-For") is None for r in emu.requests)
    if not scenario.v1:
        gets = [r for r in emu.requests if r.method == "GET"]
        assert all(r.header("X-aws-ec2-metadata-token") for r in gets), \
            f"{scenario.name}: a GET went out without a token"
    if scenario.check is not None:
        scenario.check(ctx, result)
