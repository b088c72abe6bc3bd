"""Injected misbehaviour: what one fault does, and the table that arms them.

Tests arm faults through ``Emulator.add_fault``; scenarios hand the
emulator one-off faults per request; ``imdsrender emulator --fault
PATH=STATUS[:COUNT]`` arms them from the command line.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Tuple

from ..errors import UsageError
from ..keys import ROOTS
from ..quantities import ascii_int
from .protocol import Answer, error_page


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; see ``Emulator.add_fault`` for each field."""

    pattern: str = "*"
    method: str = "*"
    status: Optional[int] = None
    headers: Tuple[Tuple[str, str], ...] = ()
    body: Optional[bytes] = None
    delay: float = 0.0
    reset: bool = False
    drip: Optional[float] = None
    short_body: bool = False
    close: bool = False
    http10: bool = False
    hold: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (fnmatch.fnmatchcase(method, self.method)
                and (path == self.pattern or fnmatch.fnmatchcase(path, self.pattern)))

    @property
    def silent(self) -> bool:
        """No answer at all: a reset or a hold before anything is sent."""
        return (self.reset or self.hold) and self.status is None and self.body is None

    def apply(self, normal: Callable[[], Answer]) -> Optional[Answer]:
        """The answer this fault gives instead of (or on top of) the *normal* one.

        None: nothing is answered (reset or hold).  A ``status`` replaces the
        answer without computing it (no token issued or checked).
        """
        if self.silent:
            return None
        if self.status is not None:
            body = self.body if self.body is not None else (
                error_page(self.status) if self.status >= 400 else b"")
            kind = "text/html" if self.body is None and self.status >= 400 else "text/plain"
            answer = Answer(self.status, body, (), kind)
        else:
            answer = normal()
            if self.body is not None:
                answer = replace(answer, body=self.body)
        return answer.with_headers(dict(self.headers)) if self.headers else answer


class _Armed:
    """A fault with its remaining use count (None: forever)."""

    def __init__(self, fault: Fault, times: Optional[int]) -> None:
        self.fault = fault
        self.remaining = times


class FaultTable:
    """Armed faults in the order added; the first match wins.  Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: List[_Armed] = []

    def add(self, fault: Fault, times: Optional[int] = None) -> None:
        with self._lock:
            self._armed.append(_Armed(fault, times))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(self, method: str, path: str) -> Optional[Fault]:
        """The first fault matching, counting one use of it."""
        with self._lock:
            for armed in self._armed:
                if armed.fault.matches(method, path):
                    if armed.remaining is not None:
                        armed.remaining -= 1
                        if armed.remaining <= 0:
                            self._armed.remove(armed)
                    return armed.fault
        return None


def normalize_pattern(pattern: str) -> str:
    """Let ``/meta-data/x`` and ``/api/token`` stand for their ``/latest`` paths."""
    if pattern.startswith(tuple(ROOTS) + ("/api/",)):
        return "/latest" + pattern
    return pattern


def parse_fault_spec(spec: str) -> Tuple[str, int, Optional[int]]:
    """``PATH=STATUS[:COUNT]`` from the command line -> (path, status, count).

    PATH is a glob as in ``add_fault``; STATUS 100..599; COUNT >= 1 limits
    the fault to the first COUNT matching requests.
    """
    where = f"--fault {spec}"
    path, sep, rest = spec.rpartition("=")
    if not sep or not path.startswith(("/", "*")):
        raise UsageError(where, "expected PATH=STATUS[:COUNT] with PATH starting with /",
                         "e.g. --fault /meta-data/instance-id=503:2")
    status_text, _, count_text = rest.partition(":")
    status = ascii_int(status_text)
    if status is None or not 100 <= status <= 599:
        raise UsageError(where, f"status {status_text!r} is not an HTTP status",
                         "use a number from 100 to 599")
    count = None
    if count_text or rest.endswith(":"):
        count = ascii_int(count_text)
        if count is None or count < 1:
            raise UsageError(where, f"count {count_text!r} is not a positive number",
                             "give how many requests fail, e.g. :3, or leave it out")
    return path, status, count
