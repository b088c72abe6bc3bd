"""The template functions (getv, exists, getvs, gets, ls, lsdir, json).

Bound to one snapshot and one resource for one render and passed as render
variables, never stored in the shared environment, so concurrent renders
cannot see each other's data and nothing outlives a run.  Their names are
the rows of :data:`imdsrender.keys.TEMPLATE_FUNCTIONS` (the one table; a
test checks they match).  A failure is a :class:`~imdsrender.errors.Problem`;
:mod:`.errors` adds the template and line.
"""

from __future__ import annotations

import json as jsonlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ..errors import Problem
from ..fetch import FetchFailed, Snapshot
from ..keys import (
    TEMPLATE_FUNCTIONS,
    InvalidKey,
    covers,
    glob_root,
    is_credentials,
    is_dir,
    key_of_call,
    normalize_key,
    normalize_pattern,
)
from ..model import Resource
from .filters import as_text, json_reason
from .redact import secret_strings

_MISSING = object()  # getv()'s "no default given", distinct from default=None


@dataclass(frozen=True)
class Pair:
    """One gets() result.  ``.Key``/``.Value`` too, so confd templates port as they are."""

    key: str
    value: str

    @property
    def Key(self) -> str:  # noqa: N802 - confd's spelling
        return self.key

    @property
    def Value(self) -> str:  # noqa: N802 - confd's spelling
        return self.value


@contextmanager
def _fetched(path: str) -> Iterator[None]:
    """A fetch failure becomes a problem naming the key (render adds the template)."""
    try:
        yield
    except FetchFailed as exc:
        raise Problem(f"key {path} {exc.what}", exc.hint) from None


def getenv(name: str, default: str = "") -> str:
    """A variable of imdsrender's environment (the unit's Environment=/EnvironmentFile=).

    As confd's getenv: unset or empty gives *default*.  Not a key function:
    it reads no metadata, so it is not in keys.TEMPLATE_FUNCTIONS.
    """
    return os.environ.get(name) or default


class Reader:
    """The template functions bound to one snapshot and one resource.

    Every call is checked against the resource's keys: a key outside them
    might happen to be in the snapshot because another resource asked for
    it, and a render must not depend on what else is configured.
    """

    def __init__(self, resource: Resource, snapshot: Snapshot) -> None:
        self.resource = resource
        self.snapshot = snapshot
        self.sensitive = False
        self.secrets: List[str] = []  # credentials values read: error texts hide them
        self._keys = frozenset(resource.keys)  # _allowed() runs on every call
        self._dirs = tuple(k for k in resource.keys if is_dir(k))

    def functions(self) -> Dict[str, Callable[..., Any]]:
        """The render variables: one bound method per row of TEMPLATE_FUNCTIONS, and getenv."""
        functions: Dict[str, Callable[..., Any]] = {
            name: getattr(self, name) for name in TEMPLATE_FUNCTIONS}
        functions["getenv"] = getenv
        return functions

    def _key(self, function: str, argument: Any) -> str:
        """The normalised path a call reads, after checking the resource may read it."""
        if not isinstance(argument, str):
            raise Problem(f"{function}() needs a key string, not {type(argument).__name__}")
        try:
            path = key_of_call(function, argument)
        except InvalidKey as exc:
            raise Problem(f"invalid key {argument!r}: {exc.what}", exc.hint) from None
        if not self._allowed(path):
            if not is_dir(path) and self._allowed(path + "/"):
                raise Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
            raise Problem(f"key {path} is not in keys: of {self.resource.origin}", "add it")
        if self.snapshot.requested and not self.snapshot.is_requested(path):
            raise Problem(f"key {path} was not fetched in this run",
                           "the fetch plan must include every resource's keys")
        self.sensitive = self.sensitive or is_credentials(path)
        return path

    def _allowed(self, path: str) -> bool:
        return path in self._keys or any(covers(d, path) for d in self._dirs)

    def _leaf(self, function: str, key: Any) -> Optional[bytes]:
        path = self._key(function, key)
        if is_dir(path):
            raise Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
        with _fetched(path):
            raw = self.snapshot.value(path)
        if raw is not None:
            self._note(path, raw)
        return raw

    def _note(self, path: str, raw: bytes) -> None:
        """Remember a credentials value, so an error message can be cleaned of it."""
        if is_credentials(path):
            self.secrets.extend(secret_strings(as_text(raw)))

    def getv(self, key: Any, default: Any = _MISSING) -> Any:
        raw = self._leaf("getv", key)
        if raw is not None:
            return as_text(raw)
        if default is not _MISSING:
            return default
        raise self._missing("getv", key)

    def _missing(self, function: str, key: str) -> Problem:
        path = normalize_key(key)
        if path + "/" in self.snapshot.listings:
            return Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
        return Problem(f"key {path} is missing (IMDS has no such path)",
                        f"give {function}() a default, or test it with exists() first")

    def exists(self, key: Any) -> bool:
        path = self._key("exists", key)
        with _fetched(path):
            return self.snapshot.exists(path)

    def _matching(self, function: str, pattern: Any) -> Tuple[Tuple[str, bytes], ...]:
        self._key(function, pattern)
        normalised = normalize_pattern(pattern)
        with _fetched(glob_root(normalised)):
            matches = self.snapshot.matching(normalised)
        for path, raw in matches:
            self._note(path, raw)
        return matches

    def getvs(self, pattern: Any) -> List[str]:
        return sorted(as_text(raw) for _, raw in self._matching("getvs", pattern))

    def gets(self, pattern: Any) -> List[Pair]:
        return [Pair(path, as_text(raw)) for path, raw in self._matching("gets", pattern)]

    def _children(self, function: str, key: Any) -> Iterable[str]:
        """Child names of a directory; a directory IMDS does not have has none."""
        path = self._key(function, key)
        with _fetched(path):
            children = self.snapshot.children(path) or ()
        return (child[len(path):] for child in children)

    def ls(self, key: Any) -> List[str]:
        return sorted(name.rstrip("/") for name in self._children("ls", key))

    def lsdir(self, key: Any) -> List[str]:
        return sorted(name[:-1] for name in self._children("lsdir", key) if name.endswith("/"))

    def json(self, key: Any, default: Any = _MISSING) -> Any:
        raw = self._leaf("json", key)
        if raw is None:
            if default is not _MISSING:
                return default
            raise self._missing("json", key)
        try:
            return jsonlib.loads(as_text(raw))
        except ValueError as exc:
            raise Problem(f"key {normalize_key(key)} is not valid JSON "
                           f"({json_reason(exc)})") from None
