"""Fixtures: metadata as a JSON file, and the Source that serves one.

What ``--data FILE`` renders from and what ``imdsrender snapshot`` writes;
the emulator serves the same tree over HTTP.  No sockets here, so offline
renders never import the HTTP server.

Fixture format
--------------
A JSON object mapping paths to values::

    {
      "/meta-data/instance-id": "i-0123456789abcdef0",
      "/meta-data/public-keys/0/_name": "web-1-key",
      "/meta-data/public-keys/0/openssh-key": "ssh-ed25519 AAAA... web-1-key",
      "/meta-data/events/recommendations/": "",
      "/user-data": {"base64": "H4sIAAAAAAAAA..."}
    }

- Keys live under ``/meta-data/``, ``/dynamic/`` or are ``/user-data``; a
  leading ``/latest`` is accepted and dropped.
- A value is a string (served as UTF-8) or ``{"base64": "..."}`` for binary.
- Directories are implied by the paths.  A key ending in ``/`` with the value
  ``""`` or ``null`` declares a directory, which is how an empty one exists.
- Public keys: the real service lists ``public-keys/`` as ``0=name``.  The
  name comes from the leaf ``/meta-data/public-keys/<N>/_name``, which is
  neither served nor listed; without it the entry is listed as ``<N>/``.
  This keeps fixture keys identical to the paths a client fetches (and to
  what ``imdsrender snapshot`` writes).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Iterable, Mapping, Optional, Set, Tuple, Union

from .errors import UsageError
from .keys import PUBLIC_KEYS, ROOTS, is_credentials
from .source import NotFound

if TYPE_CHECKING:  # pragma: no cover
    from .fetch import Snapshot

NAME_LEAF = "_name"
_FIXTURE_HINT = 'write keys like "/meta-data/instance-id" and string or {"base64": ...} values'

Value = Union[str, bytes, None]


class FixtureError(UsageError):
    """A fixture file or mapping the emulator cannot serve (a usage error: exit 2)."""


# --------------------------------------------------------------------------
# Fixtures


def load_fixture(path: str) -> Dict[str, bytes]:
    """Read a JSON fixture file; errors name the file (and line for bad JSON)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise FixtureError(path, f"cannot read fixture: {exc.strerror or exc}",
                           "pass an existing JSON fixture file") from exc
    except UnicodeDecodeError as exc:
        raise FixtureError(path, f"fixture is not UTF-8 text ({exc.reason})",
                           "save the fixture as UTF-8 JSON") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FixtureError(f"{path}:{exc.lineno}", f"invalid JSON: {exc.msg} (column {exc.colno})",
                           "fix the JSON syntax") from exc
    except RecursionError:  # json's C decoder recurses once per nesting level
        raise FixtureError(path, "JSON nested too deeply",
                           "a fixture maps paths to strings, objects or lists") from None
    return parse_fixture(doc, path)


def parse_fixture(doc: object, where: str) -> Dict[str, bytes]:
    """Turn a decoded JSON fixture into canonical path -> bytes.

    Canonical keys have no ``/latest`` prefix; declared directories keep
    their trailing ``/`` and map to ``b""``.  *where* names the source in
    errors.  The whole tree is checked, so an emulator never starts on a
    fixture it would serve inconsistently.
    """
    if not isinstance(doc, dict):
        raise FixtureError(where, f"a fixture must be a JSON object mapping paths to values, "
                                  f"not {_json_type(doc)}", _FIXTURE_HINT)
    return canonical_values(doc.items(), where)


def default_fixture() -> Dict[str, bytes]:
    """The realistic EC2 instance shipped as ``imdsrender/data/default-fixture.json``."""
    from importlib import resources

    resource = resources.files("imdsrender").joinpath("data/default-fixture.json")
    text = resource.read_text(encoding="utf-8")
    return parse_fixture(json.loads(text), "imdsrender/data/default-fixture.json")


def dump_fixture(values: Mapping[str, bytes]) -> str:
    """JSON fixture text for *values*: UTF-8 as strings, anything else as base64.

    Keys are written as given, sorted; ``parse_fixture`` reads the text back
    to the same mapping.
    """
    doc: Dict[str, object] = {}
    for key in sorted(values):
        raw = values[key]
        try:
            doc[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            doc[key] = {"base64": base64.b64encode(raw).decode("ascii")}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def canonical_values(items: Iterable[Tuple[object, object]], where: str) -> Dict[str, bytes]:
    values: Dict[str, bytes] = {}
    for key, raw in items:
        path = canonical_key(key, where)
        if path in values:
            raise FixtureError(where, f"key {key!r} names {path} a second time",
                               "keep one key per path")
        values[path] = to_bytes(path, key, raw, where)
    checked_tree(values, where)
    return values


def canonical_key(key: object, where: str) -> str:
    """``/latest/meta-data/x`` -> ``/meta-data/x``; anything outside the roots is an error."""
    if not isinstance(key, str):
        raise FixtureError(where, f"key {key!r} is not a string", _FIXTURE_HINT)
    path = key.strip()
    if not path.startswith("/"):
        path = "/" + path
    if path.startswith("/latest/"):
        path = path[len("/latest"):]
    is_directory = path.endswith("/")
    parts = path.strip("/").split("/")
    if not any(path == r or path.startswith(r + "/") for r in ROOTS):
        raise FixtureError(where, f"key {key!r} is not under /meta-data/, /dynamic/ or /user-data",
                           _FIXTURE_HINT)
    if any(p in ("", ".", "..") for p in parts):
        raise FixtureError(where, f"key {key!r} has an empty, '.' or '..' path component",
                           _FIXTURE_HINT)
    if parts[0] == "user-data" and path != "/user-data":
        raise FixtureError(where, f"key {key!r}: /user-data is a single value, not a directory",
                           'use the key "/user-data"')
    if len(parts) == 1 and parts[0] != "user-data" and not is_directory:
        raise FixtureError(where, f"key {key!r} is a directory and cannot hold a value",
                           f'write the key as "/{parts[0]}/..."')
    return path


def to_bytes(path: str, key: object, raw: object, where: str) -> bytes:
    """A fixture value as bytes: str as UTF-8, bytes as is, {"base64": ...} decoded."""
    if path.endswith("/"):
        if raw in (None, "", b""):
            return b""
        raise FixtureError(where, f"key {key!r} declares a directory; its value must be \"\" "
                                  f"or null, not {_json_type(raw)}",
                           "drop the trailing '/' to make it a value")
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw)
    if isinstance(raw, str):
        try:
            return raw.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FixtureError(where, f"key {key!r}: value is not valid Unicode ({exc.reason})",
                               'use {"base64": "..."} for binary values') from exc
    if isinstance(raw, dict) and set(raw) == {"base64"} and isinstance(raw["base64"], str):
        try:
            return base64.b64decode(raw["base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FixtureError(where, f"key {key!r}: bad base64 ({exc})",
                               "encode binary values with standard base64") from exc
    raise FixtureError(where, f"key {key!r}: value must be a string or {{\"base64\": \"...\"}}, "
                              f"not {_json_type(raw)}", _FIXTURE_HINT)


def _json_type(doc: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(doc), type(doc).__name__)


# --------------------------------------------------------------------------
# The served tree


@dataclass(frozen=True)
class Tree:
    """What the emulator serves: leaf bytes and prebuilt listing bodies.

    Directory keys end in ``/``; ``/`` itself is ``/latest/``.  Built once
    per data change and swapped atomically, so readers never lock.
    """

    leaves: Mapping[str, bytes]
    listings: Mapping[str, bytes]

    def lookup(self, path: str) -> Optional[bytes]:
        """Body for a path below ``/latest`` (``""`` is the root), None if missing.

        Like the real service, a trailing ``/`` is optional both ways: a
        directory answers without it and a leaf answers with it (botocore
        asks for ``placement/availability-zone/``).
        """
        bare = path[:-1] if path.endswith("/") else path
        leaf = self.leaves.get(bare)
        return leaf if leaf is not None else self.listings.get(bare + "/")


def checked_tree(values: Mapping[str, bytes], where: str) -> Tree:
    try:
        return _build_tree(values)
    except ValueError as exc:
        raise FixtureError(where, str(exc), _FIXTURE_HINT) from exc


def _build_tree(values: Mapping[str, bytes]) -> Tree:
    children: Dict[str, Set[str]] = {"/": set()}
    leaves: Dict[str, bytes] = {}
    key_names: Dict[str, str] = {}
    for path, value in values.items():
        if path.endswith("/"):
            _add_dir(children, path)
            continue
        parent, leaf = _split(path)
        _add_dir(children, parent)
        if leaf == NAME_LEAF and _split(parent[:-1])[0] == PUBLIC_KEYS:
            key_names[parent] = value.decode("utf-8", "replace")
            continue
        children[parent].add(leaf)
        leaves[path] = value
    clashes = sorted(p for p in leaves if p + "/" in children)
    if clashes:
        raise ValueError(f"{clashes[0]} is both a value and a directory")
    listings = {d: _listing(d, names, key_names) for d, names in children.items()}
    return Tree(leaves=leaves, listings=listings)


def _split(path: str) -> Tuple[str, str]:
    """``/a/b/c`` -> (``/a/b/``, ``c``)."""
    parent, _, name = path.rpartition("/")
    return parent + "/", name


def _add_dir(children: Dict[str, Set[str]], directory: str) -> None:
    """Register *directory* and every ancestor, each listed in its parent."""
    child: Optional[str] = None
    while True:
        entries = children.get(directory)
        created = entries is None
        if entries is None:
            entries = children[directory] = set()
        if child is not None:
            entries.add(child)
        if not created or directory == "/":
            return
        parent, name = _split(directory[:-1])
        child, directory = name + "/", parent


def _listing(directory: str, names: Set[str], key_names: Mapping[str, str]) -> bytes:
    entries = sorted(names)
    if directory == PUBLIC_KEYS:
        entries = [_public_key_entry(directory + e, e, key_names) for e in entries]
    return "\n".join(entries).encode("utf-8")


def _public_key_entry(path: str, entry: str, key_names: Mapping[str, str]) -> str:
    name = key_names.get(path)
    return entry if name is None or not entry.endswith("/") else f"{entry[:-1]}={name}"



class FixtureSource:
    """A fixture answering paths exactly as the emulator would, without sockets.

    This is what ``--data FILE`` renders from: the fetcher walks it like IMDS
    (404 for what the fixture lacks), so an offline render and a render
    against the emulator serving the same fixture give the same bytes.
    """

    def __init__(self, values: Mapping[str, bytes], where: str = "fixture") -> None:
        self._tree = checked_tree(values, where)

    def get(self, path: str) -> bytes:
        body = self._tree.lookup(path)
        if body is None:
            raise NotFound(path, "not in the fixture (404)")
        return body


def fixture_from_snapshot(snapshot: Snapshot, *, include_credentials: bool = False
                          ) -> Dict[str, bytes]:
    """The fixture that serves *snapshot* back: leaves, plus empty directories.

    Credentials subtrees are left out unless asked for: a snapshot is a file
    people attach to bug reports.  (A public key's name in the ``0=name``
    listing is not in the Snapshot, which holds parsed listings only: add
    :func:`public_key_names` of the raw listing.)
    """
    values = {p: v for p, v in snapshot.values.items()
              if include_credentials or not is_credentials(p)}
    for directory, children in snapshot.listings.items():
        if not children and (include_credentials or not is_credentials(directory)):
            values[directory] = b""
    return values


def public_key_names(listing: bytes) -> Dict[str, bytes]:
    """The ``<N>/_name`` leaves of a raw ``public-keys/`` listing (``0=web-1-key``).

    The inverse of how the tree lists them, so a snapshot served back lists
    ``0=web-1-key`` as the instance did.  Entries that are not ``N=name``
    with a safe N are left out (they are listed ``N/`` then).
    """
    names: Dict[str, bytes] = {}
    for line in listing.decode("utf-8", "replace").splitlines():
        number, sep, name = line.strip().partition("=")
        if sep and number.isdigit() and name:
            names[f"{PUBLIC_KEYS}{number}/{NAME_LEAF}"] = name.encode("utf-8")
    return names
