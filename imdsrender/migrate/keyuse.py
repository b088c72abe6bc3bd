"""Which keys a template reads, and what that makes of confd's keys.

confd's ``keys`` are prefixes: ``keys = ["/app"]`` fetches everything below
``/app``.  imdsrender walks only keys ending in ``/``, so each key must be
decided: a directory when the template reads anything below it, a leaf when
it reads exactly it.  The translator records every read as a *use*:
``(full path, kind, line)`` where kind is

- ``leaf``/``exists``: ``getv``/``json`` and ``exists`` of a literal key,
- ``dir``: ``ls``/``lsdir`` of a literal directory,
- ``glob``: ``gets``/``getvs`` of a literal pattern,
- ``prefix``: a key built at run time whose literal start is known
  (``printf "/app/%s/port"`` reads at or below ``/app/``),
- ``unknown``: a key built at run time from nothing literal (the path is
  the prefix's root).
"""

from __future__ import annotations

from typing import Iterable, List, NamedTuple, Sequence, Tuple

from ..keys import glob_root
from .common import is_known_dir

Use = Tuple[str, str, int]


class KeyForm(NamedTuple):
    directory: bool
    undecided: bool  # only a key built at run time might read below it (line of that)
    line: int


def _root(path: str, kind: str) -> str:
    return glob_root(path) if kind == "glob" else path


def key_form(key: str, uses: Iterable[Use]) -> KeyForm:
    """Decide whether the confd key *key* (full path, no trailing "/") is a directory.

    Read below: a directory.  Read exactly as a value: a leaf.  A well-known
    IMDS directory: a directory.  Otherwise a leaf, unless a key built at
    run time may read below it: then a directory, flagged as undecided.
    """
    below = key + "/"
    leaf, undecided_line = False, 0
    for path, kind, line in uses:
        root = _root(path, kind)
        if kind in ("leaf", "exists", "dir", "glob", "prefix") and root.startswith(below):
            return KeyForm(True, False, 0)
        if kind == "leaf" and path == key:
            leaf = True
        elif kind == "unknown" or (kind == "prefix" and below.startswith(root)):
            undecided_line = undecided_line or line
    if leaf:
        return KeyForm(False, False, 0)
    if is_known_dir(key):
        return KeyForm(True, False, 0)
    return KeyForm(bool(undecided_line), bool(undecided_line), undecided_line)


def exists_on_directories(uses: Sequence[Use], declared: Iterable[str]) -> frozenset:
    """Literal ``exists`` keys that are directories: confd's exists() is false on them."""
    dirs = {k.rstrip("/") for k in declared if k.endswith("/")}
    return frozenset(path for path, kind, _ in uses if kind == "exists"
                     and (path in dirs or key_form(path, uses).directory))


def derive_keys(uses: Sequence[Use]) -> List[str]:
    """keys for a resource that had none: what the template reads, directories folded."""
    keys: List[str] = []
    for path, kind, _ in uses:
        root = _root(path, kind)
        if kind in ("leaf", "exists"):
            key = path + "/" if key_form(path, uses).directory else path
        elif kind == "prefix":
            key = root[:root.rfind("/") + 1]
        else:
            key = root if root.endswith("/") else root + "/"
        if key not in keys:
            keys.append(key)
    dirs = [k for k in keys if k.endswith("/")]
    return [k for k in keys if not any(d != k and k.startswith(d) for d in dirs)]


def uncovered(keys: Sequence[str], uses: Iterable[Use], template_name: str,
              name: str) -> List[str]:
    """Literal template keys outside the resource's keys.

    confd answers those with an error, a default or false; imdsrender
    refuses to render them, so the converted resource would not work.
    """
    problems = []
    for path, kind, line in uses:
        if kind in ("prefix", "unknown"):
            continue
        root = _root(path, kind)
        if not any(k in (root, root + "/") or (k.endswith("/") and root.startswith(k))
                   for k in keys):
            problems.append(f"{template_name}:{line}: key {root} is not in the keys of {name}; "
                            "add it there (confd could not read it either)")
    return problems
