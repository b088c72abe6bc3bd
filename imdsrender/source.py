"""Where values come from: the Source protocol, its errors, and the TTL cache.

The fetcher talks to a Source and nothing else, so it never imports the
IMDS transport; the client, the fixture reader (``--data``) and the cache
all answer one path at a time and raise the errors defined here.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, Optional, Protocol, Set, Tuple

from .errors import Error

log = logging.getLogger(__name__)


class SourceError(Error):
    """A path could not be fetched (not a 404): the resources needing it fail."""


class NotFound(SourceError):
    """The path does not exist (IMDS answered 404): that key is missing."""


class SourceUnavailable(SourceError):
    """No usable source at all: nothing is rendered (exit 3)."""

    exit_code = 3


class Source(Protocol):
    """Anything that answers one path: the IMDS client, a fixture, the TTL cache."""

    def get(self, path: str) -> bytes: ...


class CachedSource:
    """A TTL cache in front of a Source, for interval mode.

    404s are cached too (a missing tag stays missing until the TTL runs
    out); failures are not, so the next poll tries again.  Counters feed
    the metrics and /ready/detailed.  Wrap each poll in :meth:`poll`: what
    it did not ask for is dropped, so the cache holds at most what the last
    poll walked, however often hostile listings change their names.
    """

    def __init__(self, source: Source, ttl: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: Dict[str, Tuple[float, Optional[bytes]]] = {}
        self._touched: Set[str] = set()
        self.hits = 0
        self.misses = 0

    @property
    def entries(self) -> int:
        with self._lock:
            return len(self._entries)

    @contextmanager
    def poll(self) -> Iterator[None]:
        """One poll: a new run for the source below, and afterwards the entries
        for paths the poll did not ask for are evicted.

        A source with a whole-run deadline (the IMDS client's ``begin_run``)
        restarts it here: the client outlives polls, each poll is one run.
        """
        begin_run = getattr(self._source, "begin_run", None)
        if begin_run is not None:
            begin_run()
        with self._lock:
            self._touched = set()
        yield
        with self._lock:
            self._entries = {p: e for p, e in self._entries.items() if p in self._touched}

    def get(self, path: str) -> bytes:
        now = self._clock()
        with self._lock:
            self._touched.add(path)
            cached = self._entries.get(path)
            fresh = cached is not None and now - cached[0] < self.ttl
            if fresh:
                self.hits += 1
            else:
                self.misses += 1
        log.debug("cache %s: %s", "hit" if fresh else "miss", path)  # the path, never the value
        if cached is not None and fresh:
            if cached[1] is None:
                raise NotFound(path, "not found (404, cached)")
            return cached[1]
        try:
            body: Optional[bytes] = self._source.get(path)
        except NotFound:
            body = None
        with self._lock:
            self._entries[path] = (now, body)
        if body is None:
            raise NotFound(path, "not found (404)")
        return body
