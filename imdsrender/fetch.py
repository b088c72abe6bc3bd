"""Plan and fetch: every distinct path once, concurrently, into a Snapshot.

The plan is the union of all resources' keys; directories are walked level
by level, each level's requests in parallel.  The result is an immutable
Snapshot that the renderer reads and never writes back to.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Mapping, Optional, Tuple

from . import Error
from .tree import covers, is_dir


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
        return any(k == path or covers(k, path) for k in self.requested)

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
        return tuple(sorted((p, v) for p, v in self.values.items()
                            if fnmatch.fnmatchcase(p, pattern)))

    def _check(self, path: str) -> None:
        reason = self.error_for(path)
        if reason is not None:
            raise FetchFailed(path, f"could not be fetched ({reason})",
                              "see the earlier log lines for the IMDS error")


def glob_root(pattern: str) -> str:
    """The directory key that holds every path a glob can match.

    ``/meta-data/tags/instance/*`` -> ``/meta-data/tags/instance/``; a
    pattern without wildcards is its own key.
    """
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=-1)
    if cut < 0:
        return pattern
    return pattern[: pattern.rfind("/", 0, cut) + 1]
