"""Plan and fetch: every distinct path once, concurrently, into a Snapshot.

The plan is the union of all resources' keys, all requested at once (up to
the concurrency cap); a directory's children are requested as soon as its
listing arrives, without waiting for the rest of its level.  The result is
an immutable Snapshot that the renderer reads and never writes back to.
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, FrozenSet, Iterable, List, Mapping, Optional, Tuple

from .errors import Error
from .keys import covers, depth, glob_match, glob_root, is_dir, parse_listing, union
from .model import FetchLimits
from .source import NotFound, Source, SourceError, SourceUnavailable

log = logging.getLogger(__name__)


class FetchFailed(Error):
    """A value a resource needs could not be fetched (not a 404): exit 1."""


@dataclass(frozen=True)
class Snapshot:
    """What one run knows about IMDS.

    ``values`` maps leaf paths to raw bytes, ``listings`` maps directory
    paths to their (cleaned) child paths, ``errors`` maps paths whose fetch
    failed for a reason other than 404 to a one-line reason.  ``requested``
    are the planned keys: a path outside them was never asked for, which is
    a different mistake from a path IMDS does not have.
    """

    values: Mapping[str, bytes] = field(default_factory=dict)
    listings: Mapping[str, Tuple[str, ...]] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    requested: Tuple[str, ...] = ()

    def is_requested(self, path: str) -> bool:
        return path in self._requested or any(covers(d, path) for d in self._requested_dirs)

    @cached_property
    def _requested(self) -> FrozenSet[str]:
        return frozenset(self.requested)

    @cached_property
    def _requested_dirs(self) -> Tuple[str, ...]:
        return tuple(k for k in self.requested if is_dir(k))

    def error_for(self, path: str) -> Optional[str]:
        """The fetch error that makes *path* unknowable, if any.

        An error on the path itself or on a directory above it (whose listing
        failed) counts; for a directory, so does an error anywhere below it.
        """
        for failed, reason in self.errors.items():
            if failed == path or covers(failed, path) or covers(path, failed):
                return f"{failed}: {reason}"
        return None

    def value(self, path: str) -> Optional[bytes]:
        """The leaf's bytes, None when IMDS does not have it (404).

        Raises FetchFailed when the path could not be fetched, so a resource
        never renders from a silently missing value.
        """
        self._check(path)
        return self.values.get(path)

    def exists(self, path: str) -> bool:
        self._check(path)
        return path in self.values or path in self.listings

    def children(self, directory: str) -> Optional[Tuple[str, ...]]:
        """Child paths of a directory key (sub-directories end in ``/``)."""
        self._check(directory)
        return self.listings.get(directory)

    def matching(self, pattern: str) -> Tuple[Tuple[str, bytes], ...]:
        """(path, bytes) of every leaf matching a glob, sorted by path."""
        self._check(glob_root(pattern))
        return tuple(sorted((p, v) for p, v in self.values.items() if glob_match(pattern, p)))

    def _check(self, path: str) -> None:
        reason = self.error_for(path)
        if reason is not None:
            raise FetchFailed(path, f"could not be fetched ({reason})",
                              "see the earlier log lines for the IMDS error")


@dataclass(frozen=True)
class Plan:
    """The distinct keys one run fetches: leaves, and directories to walk."""

    keys: Tuple[str, ...]

    @classmethod
    def of(cls, key_lists: Iterable[Iterable[str]]) -> Plan:
        """The union of every resource's keys, each path at most once."""
        return cls(union(k for keys in key_lists for k in keys))


def fetch(plan: Plan, source: Source, limits: Optional[FetchLimits] = None) -> Snapshot:
    """Fetch every planned path concurrently and walk directories as listings arrive.

    A child is requested the moment its listing is in, not when the whole
    level is done.  A 404 makes that one path missing; any other failure is
    recorded in ``Snapshot.errors`` and fails only the resources that need
    it.  SourceUnavailable (and configuration errors) abort the run: nothing
    should be rendered from a service that is not there.  *limits* come from
    ``Settings.fetch_limits()``: concurrency, directory depth, bytes a run,
    entries a listing, requests a run.  Each breach is one warning and an
    error on the paths it cut off, so only the resources needing them fail.
    """
    limits = limits or FetchLimits()
    walk = _Walk(limits)
    with ThreadPoolExecutor(max_workers=max(1, limits.concurrency),
                            thread_name_prefix="imds-fetch") as pool:
        pending: Dict[Future[bytes], str] = {}

        def submit(path: str) -> None:
            try:
                pending[pool.submit(source.get, path)] = path
            except RuntimeError as exc:  # "can't start new thread": a pids limit
                raise FetchFailed("fetch", f"cannot start a fetch thread ({exc})",
                                  "raise the service's TasksMax, or lower concurrency") from None

        for key in walk.first(plan.keys):
            submit(key)
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    for child in walk.record(pending.pop(future), future):
                        submit(child)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return Snapshot(values=walk.values, listings=walk.listings, errors=walk.errors,
                    requested=plan.keys)


class _Walk:
    """Accumulates one fetch's results; decides which children come next."""

    def __init__(self, limits: FetchLimits) -> None:
        self.limits = limits
        self.bytes_left = limits.max_run_bytes
        self.requests_left = limits.max_requests
        self.values: Dict[str, bytes] = {}
        self.listings: Dict[str, Tuple[str, ...]] = {}
        self.errors: Dict[str, str] = {}
        self.seen: set = set()

    def record(self, path: str, future: Future[bytes]) -> List[str]:
        """Store one answer; return the children still to fetch."""
        try:
            body = future.result()
        except NotFound:
            return []
        except SourceUnavailable:
            raise
        except SourceError as exc:
            log.warning("%s", exc)
            self.errors[path] = exc.what
            return []
        self.bytes_left -= len(body)
        if self.bytes_left < 0:
            self._cut(path, "the run's total size cap was exceeded")
            return []
        if not is_dir(path):
            self.values[path] = body
            return []
        children, skipped = parse_listing(path, body)
        if len(children) + len(skipped) > self.limits.max_listing_entries:
            self._cut(path, f"the listing has {len(children) + len(skipped)} entries, "
                            f"more than the cap of {self.limits.max_listing_entries}")
            return []
        for entry in skipped:
            log.warning("%s: skipped listing entry %r (not a safe path name)", path, entry)
        self.listings[path] = children
        return [c for c in children if self._admit(c)]

    def first(self, keys: Iterable[str]) -> List[str]:
        """The planned keys that fit the request cap (they count against it too)."""
        return [key for key in keys if self._request(key)]

    def _admit(self, child: str) -> bool:
        if child in self.seen:
            return False
        self.seen.add(child)
        if depth(child) > self.limits.max_depth:
            self._cut(child, f"deeper than the {self.limits.max_depth}-level directory cap")
            return False
        return self._request(child)

    def _request(self, path: str) -> bool:
        """Count one GET against the run's cap; past it, *path* fails instead.

        Every answer counts, an empty one too, so a tree of empty leaves
        cannot make unbounded requests under the byte cap.  One warning
        a run: the rest of what the cap cuts off only gets its error.
        """
        self.requests_left -= 1
        if self.requests_left >= 0:
            return True
        reason = f"the run's cap of {self.limits.max_requests} requests was reached"
        if self.requests_left == -1:
            log.warning("%s: %s; the resources needing it and later paths fail "
                        "(imds.max_requests)", path, reason)
        self.errors[path] = reason
        return False

    def _cut(self, path: str, reason: str) -> None:
        """A cap cut *path* off: one warning, and an error for the resources needing it."""
        self.errors[path] = reason
        log.warning("%s: %s", path, reason)
