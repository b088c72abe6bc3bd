"""What the emulator counts: every request it saw, and how many were in flight.

Tests and benchmarks assert on these (``Emulator.requests``, ``count()``,
``max_in_flight``) to prove how many requests a run made and how parallel
they were.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .faults import normalize_pattern


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it.

    ``path`` is the raw request target (query included); ``status`` is what
    was answered, 0 when a fault reset or held the connection instead of
    answering; ``started`` is the emulator clock when the request was read.
    """

    method: str
    path: str
    headers: Dict[str, str] = field(hash=False)
    status: int
    started: float

    def header(self, name: str) -> Optional[str]:
        """Header value by case-insensitive name."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class RequestLog:
    """The request log and the in-flight high-water mark; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: List[RequestRecord] = []
        self.max_in_flight = 0
        self._in_flight = 0

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)

    def begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def count(self, method: Optional[str] = None, path: Optional[str] = None) -> int:
        """Requests seen with that method and path (exact target or glob; None: any)."""
        pattern = None if path is None else normalize_pattern(path)
        wanted = None if method is None else method.upper()
        with self._lock:
            records = list(self.requests)
        return sum(1 for r in records
                   if (wanted is None or r.method == wanted)
                   and (pattern is None or r.path == pattern
                        or fnmatch.fnmatchcase(r.path, pattern)))

    def reset(self) -> None:
        """Forget the log; ``max_in_flight`` restarts from what is in flight now."""
        with self._lock:
            del self.requests[:]
            self.max_in_flight = self._in_flight
