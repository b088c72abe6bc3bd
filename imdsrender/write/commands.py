"""Running check_cmd and reload_cmd: one shell, its own process group, a deadline.

Commands run through ``/bin/sh -c`` in their own session, inherit the
environment, and have their output captured (last 4 KiB of each stream).  On
timeout the whole process group is killed, so a check that spawned children
cannot outlive its deadline.  Nothing here knows about files or resources.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Callable, Dict, Sequence

OUTPUT_TAIL = 4096  # bytes kept of each command stream
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a timed-out group
DRAIN_WINDOW = 0.5  # seconds to keep reading pipes after the shell exited
WITHHELD = "output withheld (resource uses credentials)"

# A placeholder with the quotes the user may have put around it: they are
# replaced together, so "{{ src }}", '{{ src }}' and {{ src }} all work.
_PLACEHOLDER = re.compile(r"""(["']?)\{\{\s*\.?(src|dest)\s*\}\}\1""")
SHELL_NAME = "imdsrender"  # $0 of the shell running a command


@dataclass(frozen=True)
class CommandResult:
    """A finished (or killed) command; stdout/stderr are the last bytes only."""

    cmd: str
    returncode: int  # negative: killed by that signal
    timed_out: bool
    stdout: bytes
    stderr: bytes

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.returncode == 0


Runner = Callable[[str, float, Sequence[str]], CommandResult]
"""Runs (cmd, timeout, args): *args* are the shell's ``$1``, ``$2``..."""


class _Tail:
    """Keeps only the last *limit* bytes so a chatty command cannot eat memory."""

    def __init__(self, limit: int = OUTPUT_TAIL) -> None:
        self.limit = limit
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]


def run_command(cmd: str, timeout: float, args: Sequence[str] = (), *,
                kill_grace: float = KILL_GRACE, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> CommandResult:
    """Run *cmd* with ``/bin/sh -c`` in a new session, bounded by *timeout* seconds.

    *args* become the positional parameters ``$1``... of the shell, so paths
    reach the command as data and are never parsed by it.

    On timeout the whole process group gets SIGTERM, then SIGKILL after
    *kill_grace*: killing only the shell would leave its children running
    (and holding our pipes).  Once the shell has exited, pipes are read for a
    short while longer and then abandoned, so a reload that starts a daemon
    keeping stdout open does not hang us.  Raises OSError when the shell
    cannot be started.
    """
    proc = subprocess.Popen(["/bin/sh", "-c", cmd, SHELL_NAME, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    tails: Dict[IO[bytes], _Tail] = {proc.stdout: _Tail(), proc.stderr: _Tail()}
    try:
        with selectors.DefaultSelector() as sel:
            for pipe in tails:
                sel.register(pipe, selectors.EVENT_READ)
            finished = _pump(sel, proc, tails, clock() + timeout, clock, sleep)
            if not finished:
                _kill_group(proc, kill_grace, clock, sleep)
            _drain(sel, tails, clock() + DRAIN_WINDOW, clock)
        returncode = proc.wait()
    finally:
        for pipe in tails:
            pipe.close()
        if proc.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing running
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    return CommandResult(cmd, returncode, not finished, bytes(tails[proc.stdout].data),
                         bytes(tails[proc.stderr].data))


def _pump(sel: selectors.BaseSelector, proc: subprocess.Popen, tails: Dict[IO[bytes], _Tail],
          deadline: float, clock: Callable[[], float],
          sleep: Callable[[float], None]) -> bool:
    """Read output until the shell exits; False when the deadline came first."""
    while proc.poll() is None:
        remaining = deadline - clock()
        if remaining <= 0:
            return False
        if sel.get_map():
            _read_ready(sel, tails, min(remaining, 0.1))
        else:
            sleep(min(remaining, 0.05))
    return True


def _read_ready(sel: selectors.BaseSelector, tails: Dict[IO[bytes], _Tail],
                timeout: float) -> None:
    for key, _ in sel.select(max(timeout, 0.0)):
        pipe = key.fileobj
        chunk = os.read(key.fd, 65536)
        if chunk:
            tails[pipe].add(chunk)  # type: ignore[index]
        else:
            sel.unregister(pipe)


def _drain(sel: selectors.BaseSelector, tails: Dict[IO[bytes], _Tail], deadline: float,
           clock: Callable[[], float]) -> None:
    """Collect what the command wrote just before it exited."""
    while sel.get_map() and clock() < deadline:
        _read_ready(sel, tails, deadline - clock())


def _kill_group(proc: subprocess.Popen, grace: float, clock: Callable[[], float],
                sleep: Callable[[float], None]) -> None:
    """SIGTERM the process group, wait up to *grace* for it to go, then SIGKILL it."""
    _signal_group(proc.pid, signal.SIGTERM)
    end = clock() + grace
    while clock() < end and _group_alive(proc):
        sleep(0.05)
    _signal_group(proc.pid, signal.SIGKILL)


def _group_alive(proc: subprocess.Popen) -> bool:
    proc.poll()  # reap the shell so it does not count as alive
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def fill_placeholders(cmd: str, *, src: str, dest: str) -> tuple[str, tuple[str, str]]:
    """(shell command, its arguments) for *cmd* with ``{{ src }}`` / ``{{ dest }}``.

    Each placeholder (also confd's ``{{.src}}``), with the quotes the user
    may have written around it, becomes ``"$1"`` (src) or ``"$2"`` (dest) and
    the paths travel as the shell's arguments: whatever a path contains
    (spaces, quotes, ``$(...)``, newlines), the shell never evaluates it.
    """
    values = {"src": '"$1"', "dest": '"$2"'}
    return _PLACEHOLDER.sub(lambda m: values[m.group(2)], cmd), (src, dest)


def _last_line(output: bytes) -> str:
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= 200 else line[:197] + "..."


def describe_failure(step: str, result: CommandResult, timeout: float, *,
                     sensitive: bool) -> str:
    """One line for a failed command; never the output of a sensitive resource."""
    if result.timed_out:
        return f"{step} timed out after {timeout:g}s (process group killed)"
    code = result.returncode
    if code < 0:
        try:
            how = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"killed by signal {-code}"
    else:
        how = f"exited {code}"
    if sensitive:
        return f"{step} {how}: {WITHHELD}"
    line = _last_line(result.stderr) or _last_line(result.stdout)
    return f"{step} {how}: {line}" if line else f"{step} {how} (no output)"
