"""The theoretical minimum of IMDS requests for a set of keys, from the fixture alone.

Deliberately independent of imdsrender's fetcher (``imdsrender.fetch`` and
``imdsrender.keys`` are not used): the expectation is derived from the data
the emulator serves, the way a person would count on paper.  One token PUT,
one GET per distinct leaf, one GET per directory listing walked; a path asked
for twice (or covered by a directory already walked) counts once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Mapping, Set

PUBLIC_KEYS = "/meta-data/public-keys/"
NAME_LEAF = "_name"  # the emulator's public-key name leaf: neither listed nor served


@dataclass(frozen=True)
class Expectation:
    """What an ideal client requests: the paths, their count, and the critical path.

    ``depth`` is the number of round trips that must happen one after the
    other (token, then each directory level), which is what a fully
    parallel client cannot beat.
    """

    paths: FrozenSet[str]
    depth: int

    @property
    def requests(self) -> int:
        """Token PUT + one GET per distinct path."""
        return 1 + len(self.paths)


def directory_children(values: Mapping[str, bytes]) -> Dict[str, Set[str]]:
    """Directory path -> child paths (sub-directories end in ``/``), from fixture keys.

    Keys are canonical fixture keys (``/meta-data/...``); a key ending in
    ``/`` declares a (possibly empty) directory.
    """
    children: Dict[str, Set[str]] = {}
    for key in values:
        if _is_name_leaf(key):
            continue
        path = key
        while path not in ("", "/"):
            parent = path[: path.rstrip("/").rfind("/") + 1]
            children.setdefault(parent, set())
            if path != parent:
                children[parent].add(path)
            path = parent
        if key.endswith("/"):
            children.setdefault(key, set())
    return children


def _is_name_leaf(key: str) -> bool:
    if not key.startswith(PUBLIC_KEYS):
        return False
    parts = key[len(PUBLIC_KEYS):].split("/")
    return len(parts) == 2 and parts[1] == NAME_LEAF


def expect(keys: Iterable[str], values: Mapping[str, bytes]) -> Expectation:
    """The minimum for *keys* (canonical, directories ending in ``/``) over *values*."""
    tree = directory_children(values)
    paths: Set[str] = set()
    depth = 0
    for key in keys:
        depth = max(depth, _walk(key, tree, paths))
    return Expectation(frozenset(paths), 1 + depth)


def _walk(path: str, tree: Mapping[str, Set[str]], paths: Set[str]) -> int:
    """Add *path* (and everything below a directory) to *paths*; return its depth."""
    paths.add(path)
    if not path.endswith("/"):
        return 1
    below = [_walk(child, tree, paths) for child in sorted(tree.get(path, ()))]
    return 1 + max(below, default=0)
