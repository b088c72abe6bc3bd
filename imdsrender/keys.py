"""The key namespace: normalising keys and reading directory listings.

Pure functions only: no sockets, no files.  Everything that decides "which
path is this" lives here so the fetcher, the renderer and the emulator agree.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
from typing import Dict, Iterable, List, NamedTuple, Tuple

from .errors import UsageError

log = logging.getLogger(__name__)

ROOTS = ("/meta-data", "/dynamic", "/user-data")
WHOLE_TREE = ("/meta-data/", "/dynamic/", "/user-data")  # what "/" means on the command line
CREDENTIAL_PREFIXES = (
    "/meta-data/iam/security-credentials/",
    "/meta-data/identity-credentials/",
)
PUBLIC_KEYS = "/meta-data/public-keys/"
# Characters that would change the meaning of a URL path or escape the tree.
_HOSTILE_CHARS = ("?", "#", "%")
REDACTED = "<redacted>"
_ASCII_BLANKS = " \t\n\r\f\v"


class TemplateFunction(NamedTuple):
    """A template function whose first argument names metadata.

    ``param`` is that argument's name (for calls written ``getv(key=...)``);
    ``kind`` says what the argument is: ``"key"`` a leaf or directory key,
    ``"pattern"`` a glob, ``"directory"`` a directory to list.
    """

    name: str
    param: str
    kind: str


# The ONE table of key-reading template functions: the renderer registers
# them, the template scanner derives keys from their calls, the confd
# migrator translates to them.  Adding a function starts here.
TEMPLATE_FUNCTIONS: Dict[str, TemplateFunction] = {f.name: f for f in (
    TemplateFunction("getv", "key", "key"),
    TemplateFunction("exists", "key", "key"),
    TemplateFunction("json", "key", "key"),
    TemplateFunction("getvs", "pattern", "pattern"),
    TemplateFunction("gets", "pattern", "pattern"),
    TemplateFunction("ls", "dir", "directory"),
    TemplateFunction("lsdir", "dir", "directory"),
)}


class InvalidKey(UsageError):
    """A key that cannot name an IMDS path (a config error: exit 2)."""


def normalize_key(key: str) -> str:
    """Return the canonical form of *key*: a path under ``/latest``.

    ``/latest/meta-data/x`` and ``/meta-data/x`` are the same key, and a bare
    ``/x`` means ``/meta-data/x`` (confd users write keys that way).  A
    trailing ``/`` is kept: it is what makes a key a directory.
    """
    raw = key
    key = key.strip(_ASCII_BLANKS)
    if not key.startswith("/"):
        key = "/" + key
    if key == "/latest" or key.startswith("/latest/"):
        key = key[len("/latest"):] or "/"
    is_dir = key.endswith("/")
    parts = [p for p in key.split("/") if p]
    for part in parts:
        if part in (".", "..") or any(c in part for c in _HOSTILE_CHARS):
            raise InvalidKey(repr(raw), f"'{part}' is not allowed in a key",
                             "write the plain metadata path, e.g. /meta-data/instance-id")
    if not parts:
        raise InvalidKey(repr(raw), "empty key", "name a path such as /meta-data/instance-id")
    path = "/" + "/".join(parts)
    if not any(path == r or path.startswith(r + "/") for r in ROOTS):
        path = "/meta-data" + path
    if is_dir and path != "/user-data":
        path += "/"
    return path


def expand_key(key: str) -> Tuple[str, ...]:
    """A command-line key in canonical form; ``/`` (or ``/latest``) is every root.

    ``get /`` and ``snapshot /`` walk the whole tree this way.
    """
    if key.strip(_ASCII_BLANKS) in ("/", "/latest", "/latest/"):
        return WHOLE_TREE
    return (normalize_key(key),)


def is_dir(path: str) -> bool:
    """A key ending in ``/`` is a directory; nothing else decides it."""
    return path.endswith("/")


def is_credentials(path: str) -> bool:
    """True for paths whose values are secrets (never logged, files 0600)."""
    if path.startswith(CREDENTIAL_PREFIXES):
        return True
    return is_dir(path) and any(p.startswith(path) for p in CREDENTIAL_PREFIXES)


def covers(directory: str, path: str) -> bool:
    """True if *path* lies inside (or is) the directory key *directory*."""
    return is_dir(directory) and path.startswith(directory)


def parse_listing(directory: str, body: bytes) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Turn a listing body into (child paths, skipped entries).

    Entries ending in ``/`` are sub-directories, anything else a leaf.  Under
    ``public-keys/`` only, ``0=name`` means the sub-directory ``0/``.
    ``\\r``, blank lines and duplicates are dropped; hostile entries are
    skipped (and reported by the caller), never rewritten into another path.
    """
    text = body.decode("utf-8", "surrogateescape")
    children: List[str] = []
    skipped: List[str] = []
    seen = set()
    for line in text.replace("\r", "").split("\n"):
        entry = line.strip(_ASCII_BLANKS)  # not str.strip(): U+00A0 is part of a name
        if not entry or entry in seen:
            continue
        seen.add(entry)
        if directory == PUBLIC_KEYS and "=" in entry:
            entry = entry.split("=", 1)[0] + "/"
        if _is_hostile(entry):
            skipped.append(entry)
            continue
        children.append(directory + entry)
    return tuple(children), tuple(skipped)


def _is_hostile(entry: str) -> bool:
    name = entry[:-1] if entry.endswith("/") else entry
    return (
        name in ("", ".", "..")
        or "/" in name
        or any(c in name for c in _HOSTILE_CHARS)
        or any(ord(c) < 32 for c in name)
    )


def depth(path: str) -> int:
    """Number of path components, used for the directory depth cap."""
    return len([p for p in path.split("/") if p])


def redact(path: str, value: str) -> str:
    """The form of *value* that may appear in logs and diffs."""
    return REDACTED if is_credentials(path) else value


def union(keys: Iterable[str]) -> Tuple[str, ...]:
    """Sorted distinct keys with everything inside a requested directory dropped.

    Those paths are fetched by the directory walk anyway; listing them again
    would only make the plan look bigger than the requests it makes.
    """
    distinct = sorted(set(keys))
    dirs = [k for k in distinct if is_dir(k)]
    return tuple(k for k in distinct
                 if not any(d != k and covers(d, k) for d in dirs))


def glob_match(pattern: str, path: str) -> bool:
    """Glob matching one path segment per wildcard, as confd's path.Match does.

    ``/tags/instance/*`` must not reach into sub-directories: ``*`` never
    matches ``/``.
    """
    parts, segments = pattern.split("/"), path.split("/")
    return len(parts) == len(segments) and all(
        fnmatch.fnmatchcase(segment, part) for part, segment in zip(parts, segments))


def glob_root(pattern: str) -> str:
    """The directory key that holds every path a glob can match.

    ``/meta-data/tags/instance/*`` -> ``/meta-data/tags/instance/``; a
    pattern without wildcards is its own key.
    """
    cut = min((i for i, c in enumerate(pattern) if c in "*?["), default=-1)
    if cut < 0:
        return pattern
    return pattern[: pattern.rfind("/", 0, cut) + 1]


def normalize_pattern(pattern: str) -> str:
    """A glob for getvs()/gets() in canonical key form.

    Only the part before the first wildcard is a key (normalize_key would
    refuse ``?``); the wildcard tail is kept as written.
    """
    root = glob_root(pattern)
    if root == pattern:
        return normalize_key(pattern)
    if not root.strip().strip("/"):
        raise InvalidKey(repr(pattern), "a pattern needs a directory before its first wildcard",
                         "write e.g. /meta-data/tags/instance/*")
    directory = normalize_key(root)
    if not directory.endswith("/"):
        directory += "/"
    return directory + pattern[len(root):]


def directory_key(key: str) -> str:
    """The directory key for ls()/lsdir(): ``/tags/instance`` and ``/tags/instance/`` agree."""
    key = key.strip()
    return normalize_key(key if key.endswith("/") else key + "/")


@functools.lru_cache(maxsize=4096)  # pure; runs for every getv() of every render
def key_of_call(function: str, argument: str) -> str:
    """The key a template function needs fetched for its first argument.

    getv/exists/json need the key itself, getvs/gets the directory holding
    every match, ls/lsdir the directory they list.  render.py checks calls
    against a resource's keys with this same mapping.
    """
    kind = TEMPLATE_FUNCTIONS[function].kind
    if kind == "pattern":
        return glob_root(normalize_pattern(argument))
    if kind == "directory":
        return directory_key(argument)
    return normalize_key(argument)
