"""The Jinja2 environment and the template functions (getv, ls, json, ...).

Pure: a template, a Resource and a Snapshot in, bytes out.  The functions
are bound to one snapshot for one render and passed as render variables,
never stored in the shared environment, so concurrent renders cannot see
each other's data and nothing outlives a run.  Consequence (Jinja's rule):
a macro file brought in with ``{% import %}`` sees them only when imported
``with context``; ``{% include %}`` and ``{% extends %}`` always do.
"""

from __future__ import annotations

import base64
import binascii
import json as jsonlib
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple

import jinja2

from .config import ConfigError, template_closure
from .errors import Error
from .fetch import FetchFailed, Snapshot
from .keys import (
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
from .model import Resource

_MISSING = object()  # getv()'s "no default given", distinct from default=None


class RenderError(Error):
    """A resource that could not be rendered (exit 1; other resources go on)."""


@dataclass(frozen=True)
class Rendered:
    content: bytes
    sensitive: bool  # the template read a credentials path: diffs and logs must redact


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


class _Problem(Exception):
    """Raised inside a template; render() adds the template and line it happened on."""

    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


def _text(raw: bytes) -> str:
    """Bytes as templates see them: UTF-8, undecodable bytes kept as surrogates."""
    return raw.decode("utf-8", "surrogateescape")


# ----------------------------------------------------------------- filters

def fromjson(value: Any) -> Any:
    """Parse a JSON document held in a string (or bytes)."""
    try:
        return jsonlib.loads(value)
    except (TypeError, ValueError) as exc:
        raise _Problem(f"fromjson: not valid JSON ({_json_reason(exc)})") from None


def b64decode(value: Any) -> str:
    """Base64 to text; whitespace (wrapped lines) is ignored, anything else invalid is not."""
    data = value if isinstance(value, bytes) else str(value).encode("ascii", "replace")
    try:
        return _text(base64.b64decode(b"".join(data.split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise _Problem(f"b64decode: not valid base64 ({exc})") from None


def b64encode(value: Any) -> str:
    """Text (or bytes) to base64; surrogate-escaped bytes encode as the original bytes."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    return base64.b64encode(data).decode("ascii")


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, jsonlib.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


def getenv(name: str, default: str = "") -> str:
    """A variable of imdsrender's environment (the unit's Environment=/EnvironmentFile=).

    As confd's getenv: unset or empty gives *default*.
    """
    return os.environ.get(name) or default


FILTERS: Dict[str, Callable[..., Any]] = {
    "fromjson": fromjson, "b64decode": b64decode, "b64encode": b64encode,
}


def make_environment(templates_dir: str) -> jinja2.Environment:
    """The one environment of a run: each template is compiled once and cached.

    auto_reload is off: templates are read as they were when the config was
    loaded (their keys were derived from that text), not half-way through an
    interval run.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.abspath(templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    return env


# --------------------------------------------------------------- functions

@contextmanager
def _fetched(path: str) -> Iterator[None]:
    """A fetch failure becomes a problem naming the key (render adds the template)."""
    try:
        yield
    except FetchFailed as exc:
        raise _Problem(f"key {path} {exc.what}", exc.hint) from None


class _Reader:
    """The template functions bound to one snapshot and one resource.

    Every call is checked against the resource's keys: a key outside them
    might happen to be in the snapshot because another resource asked for
    it, and a render must not depend on what else is configured.
    """

    def __init__(self, resource: Resource, snapshot: Snapshot) -> None:
        self.resource = resource
        self.snapshot = snapshot
        self.sensitive = False
        self._keys = frozenset(resource.keys)  # _allowed() runs on every call
        self._dirs = tuple(k for k in resource.keys if is_dir(k))

    def functions(self) -> Dict[str, Callable[..., Any]]:
        return {"getv": self.getv, "exists": self.exists, "getvs": self.getvs,
                "gets": self.gets, "ls": self.ls, "lsdir": self.lsdir, "json": self.json,
                "getenv": getenv}

    def _key(self, function: str, argument: Any) -> str:
        """The normalised path a call reads, after checking the resource may read it."""
        if not isinstance(argument, str):
            raise _Problem(f"{function}() needs a key string, not {type(argument).__name__}")
        try:
            path = key_of_call(function, argument)
        except InvalidKey as exc:
            raise _Problem(f"invalid key {argument!r}: {exc.what}", exc.hint) from None
        if not self._allowed(path):
            if not is_dir(path) and self._allowed(path + "/"):
                raise _Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
            raise _Problem(f"key {path} is not in keys: of {self.resource.origin}", "add it")
        if self.snapshot.requested and not self.snapshot.is_requested(path):
            raise _Problem(f"key {path} was not fetched in this run",
                           "the fetch plan must include every resource's keys")
        self.sensitive = self.sensitive or is_credentials(path)
        return path

    def _allowed(self, path: str) -> bool:
        return path in self._keys or any(covers(d, path) for d in self._dirs)

    def _leaf(self, function: str, key: Any) -> Optional[bytes]:
        path = self._key(function, key)
        if is_dir(path):
            raise _Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
        with _fetched(path):
            return self.snapshot.value(path)

    def getv(self, key: Any, default: Any = _MISSING) -> Any:
        raw = self._leaf("getv", key)
        if raw is not None:
            return _text(raw)
        if default is not _MISSING:
            return default
        raise self._missing("getv", key)

    def _missing(self, function: str, key: str) -> _Problem:
        path = normalize_key(key)
        if path + "/" in self.snapshot.listings:
            return _Problem(f"key {path} is a directory", "use ls(), getvs() or gets() on it")
        return _Problem(f"key {path} is missing (IMDS has no such path)",
                        f"give {function}() a default, or test it with exists() first")

    def exists(self, key: Any) -> bool:
        path = self._key("exists", key)
        with _fetched(path):
            return self.snapshot.exists(path)

    def _matching(self, function: str, pattern: Any) -> Tuple[Tuple[str, bytes], ...]:
        self._key(function, pattern)
        normalised = normalize_pattern(pattern)
        with _fetched(glob_root(normalised)):
            return self.snapshot.matching(normalised)

    def getvs(self, pattern: Any) -> List[str]:
        return sorted(_text(raw) for _, raw in self._matching("getvs", pattern))

    def gets(self, pattern: Any) -> List[Pair]:
        return [Pair(path, _text(raw)) for path, raw in self._matching("gets", pattern)]

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
            return jsonlib.loads(_text(raw))
        except ValueError as exc:
            raise _Problem(f"key {normalize_key(key)} is not valid JSON "
                           f"({_json_reason(exc)})") from None


# ------------------------------------------------------------------ render

def render(env: jinja2.Environment, resource: Resource, snapshot: Snapshot) -> Rendered:
    """Render one resource from the snapshot, or RenderError naming template:line and key."""
    reader = _Reader(resource, snapshot)
    try:
        text = env.get_template(resource.template).render(reader.functions())
        content = text.encode("utf-8", "surrogateescape")
    except Exception as exc:  # one line naming the template, whatever went wrong
        raise _render_error(env, resource, exc) from exc
    return Rendered(content=content, sensitive=reader.sensitive)


def _render_error(env: jinja2.Environment, resource: Resource, exc: Exception) -> RenderError:
    where = _position(env, exc) or f"templates/{resource.template}"
    if isinstance(exc, _Problem):
        return RenderError(where, exc.what, exc.hint)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return RenderError(f"templates/{exc.name or resource.template}:{exc.lineno}",
                           exc.message or "template syntax error", "run imdsrender check")
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(where, f"template {exc.name!r} does not exist",
                           f"looked in {_templates_dir(env)}")
    if isinstance(exc, jinja2.UndefinedError):
        return RenderError(where, exc.message or "undefined value", _undefined_hint(exc))
    if isinstance(exc, UnicodeEncodeError):
        return RenderError(where, "output holds text that is not encodable as UTF-8",
                           "check the values that are written out")
    if isinstance(exc, UnicodeDecodeError):
        return RenderError(where, "template is not valid UTF-8", "save it as UTF-8")
    if isinstance(exc, Error):
        return RenderError(where, str(exc))
    return RenderError(where, f"{type(exc).__name__}: {exc}")


def _undefined_hint(exc: jinja2.UndefinedError) -> str:
    for name in TEMPLATE_FUNCTIONS:
        if exc.message == f"'{name}' is undefined":
            return "a macro file must be imported 'with context' to use the template functions"
    return "define it, or test it with 'is defined' first"


def _templates_dir(env: jinja2.Environment) -> Optional[str]:
    paths = getattr(env.loader, "searchpath", None)
    return paths[0] if paths else None


def _position(env: jinja2.Environment, exc: BaseException) -> Optional[str]:
    """"templates/NAME:LINE" of the innermost template frame in the traceback.

    Jinja rewrites tracebacks so template frames carry the template's file
    name and line, which is exactly what a user needs to find the call.
    """
    root = _templates_dir(env)
    if root is None:
        return None
    root = os.path.abspath(root)
    where = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(frame.filename)
        if path.startswith(root + os.sep) and frame.lineno:
            where = f"templates/{os.path.relpath(path, root)}:{frame.lineno}"
    return where


def check_templates(env: jinja2.Environment, resources: Iterable[Resource]) -> None:
    """Compile every template and what it includes: ConfigError with file:line.

    Compiling with the real environment also catches unknown filters and
    tests, which parsing alone (config loading) does not.
    """
    root = _templates_dir(env)
    done: Set[str] = set()
    for resource in resources:
        if resource.template in done:  # compiled with its whole closure already
            continue
        names = template_closure(root, resource.template) if root else (resource.template,)
        for name in names:
            if name not in done:
                done.add(name)
                _compile(env, name)


def _compile(env: jinja2.Environment, name: str) -> None:
    try:
        env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"templates/{exc.name or name}:{exc.lineno}",
                          exc.message or "template syntax error") from None
    except jinja2.TemplateNotFound:
        raise ConfigError(f"templates/{name}", "template does not exist",
                          f"looked in {_templates_dir(env)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"templates/{name}", "not valid UTF-8", "save it as UTF-8") from None

