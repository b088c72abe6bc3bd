"""Settings (imdsrender.yaml) and template resources (conf.d/*.yaml).

Parsing is pure apart from reading the files; every error names the file,
the line where known, and the field, in one line (ConfigError, exit 2).

YAML is read as *composed nodes*, not as plain Python objects: the nodes keep
the line of every field (for messages) and the raw text of every scalar (so
``mode: 0640`` and ``mode: 640`` both mean octal 640, whatever YAML 1.1
thinks of leading zeros).
"""

from __future__ import annotations

import difflib
import glob
import grp
import logging
import os
import posixpath
import pwd
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple
from urllib.parse import urlsplit

import jinja2
import yaml
from jinja2 import nodes
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import UsageError
from .keys import TEMPLATE_FUNCTIONS, InvalidKey, is_credentials, key_of_call, normalize_key
from .model import MAX_CONCURRENCY, ImdsSettings, Resource, Settings
from .quantities import ascii_int, parse_duration

log = logging.getLogger(__name__)

MAX_ID = 2**32 - 2  # 2**32 - 1 is (uid_t)-1: "leave unchanged" to chown()


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_HINT = "write e.g. 500ms, 30s, 2m, 1h or plain seconds"
_MODE = re.compile(r"(?:0o|0)?([0-7]{1,4})")
# Field names confd users bring along, with what to write instead.
_CONFD_FIELDS = {"uid": "owner", "gid": "group"}


class ConfigError(UsageError):
    """A mistake in a config file, a template or a flag: exit 2."""


# -------------------------------------------------------------------- YAML

def _kind(value: object) -> str:
    """A YAML user's name for the type they wrote, for "must be X, not Y"."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a string" if isinstance(value, str) else type(value).__name__


def _unknown_field(name: str, allowed: Sequence[str]) -> Tuple[str, str]:
    """(what, hint) for a misspelt field: the closest known name, or the list."""
    if name in _CONFD_FIELDS:
        return f"unknown field '{name}' (did you mean '{_CONFD_FIELDS[name]}'?)", ""
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field '{name}' (did you mean '{close[0]}'?)", ""
    return f"unknown field '{name}'", "known fields: " + ", ".join(allowed)


def _yaml_error(name: str, exc: yaml.YAMLError) -> ConfigError:
    """One line out of PyYAML's multi-line messages, located by its marks."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        what = f"invalid YAML: {exc.problem}"
        if exc.context and exc.context_mark is not None:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        elif exc.context:
            what += f" ({exc.context})"
        return ConfigError(f"{name}:{exc.problem_mark.line + 1}", what)
    return ConfigError(name, "invalid YAML: " + " ".join(str(exc).split()))


def _read_text(path: str, name: str) -> str:
    """A config or template file as text; every failure a one-line ConfigError."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise ConfigError(name, f"cannot read: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}:{line}", f"not valid UTF-8 (byte {exc.start + 1} of the file)",
                          "save the file as UTF-8") from None


def _compose(path: str, name: str) -> Optional[Node]:
    """The file's single YAML document as nodes (None when it is empty)."""
    text = _read_text(path, name)
    try:
        return yaml.compose(text, Loader=_LOADER)  # type: ignore[no-any-return]
    except yaml.YAMLError as exc:
        raise _yaml_error(name, exc) from None


class _Doc:
    """One YAML file under validation: nodes to values, marks to "file:line"."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._constructor = yaml.constructor.SafeConstructor()

    def at(self, node: Node) -> str:
        return f"{self.name}:{node.start_mark.line + 1}"

    def value(self, node: Node) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise _yaml_error(self.name, exc) from None

    def fields(self, node: Node, allowed: Sequence[str], what: str) -> Dict[str, Node]:
        """Field name -> value node; unknown or repeated fields are errors.

        Merge keys (``<<: *defaults``) are honoured, so resources can share
        fields through anchors; an explicit field overrides a merged one.
        Empty (null) values count as absent.
        """
        if not isinstance(node, MappingNode):
            raise ConfigError(self.at(node), f"{what} must be a mapping, not "
                              f"{_kind(self.value(node))}")
        self._refuse_repeats(node)
        try:
            self._constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise _yaml_error(self.name, exc) from None
        found: Dict[str, Node] = {}
        for key_node, value_node in node.value:
            name = self._field_name(key_node, allowed)
            if value_node.tag == _NULL_TAG:
                found.pop(name, None)
            else:
                found[name] = value_node
        return found

    def _field_name(self, key_node: Node, allowed: Sequence[str]) -> str:
        name = self.value(key_node)
        if not isinstance(name, str):
            raise ConfigError(self.at(key_node), f"field name {name!r} is not a string")
        if name not in allowed:
            what, hint = _unknown_field(name, allowed)
            raise ConfigError(self.at(key_node), what, hint)
        return name

    def _refuse_repeats(self, node: MappingNode) -> None:
        seen: Set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            if key_node.value in seen:
                raise ConfigError(self.at(key_node), f"field '{key_node.value}' is given twice")
            seen.add(key_node.value)

    def string(self, node: Node, name: str) -> str:
        value = self.value(node)
        if not isinstance(value, str):
            raise ConfigError(self.at(node), f"{name} must be a string, not {_kind(value)}")
        return value

    def integer(self, node: Node, name: str, low: int, high: Optional[int] = None) -> int:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(node), f"{name} must be a whole number, not {_kind(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise ConfigError(self.at(node), f"{name} must be {bounds}, not {value}")
        return value

    def boolean(self, node: Node, name: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise ConfigError(self.at(node), f"{name} must be true or false, not {_kind(value)}")
        return value

    def duration(self, node: Node, name: str) -> float:
        return parse_duration(self.value(node), self.at(node))


# ---------------------------------------------------------------- settings

_SETTINGS_FIELDS = ("imds", "cache_ttl", "concurrency")
_IMDS_FIELDS = ("endpoint", "endpoint_mode", "token_ttl", "timeout", "retries",
                "boot_wait", "allow_imdsv1")


def load_settings(path: Optional[str], *, required: bool = False) -> Settings:
    """Settings from imdsrender.yaml; the defaults when there is none.

    The file is optional in a confdir, but a file named with ``--config``
    (*required*) must exist: a typo there must not silently mean defaults.
    """
    if path is None:
        return Settings()
    if not os.path.exists(path):
        if required:
            raise ConfigError(path, "no such file", "check the --config path")
        log.debug("no settings file at %s; using defaults", path)
        return Settings()
    root = _compose(path, path)
    if root is None:
        return Settings()
    doc = _Doc(path)
    fields = doc.fields(root, _SETTINGS_FIELDS, "the settings file")
    imds = _imds_settings(doc, fields["imds"]) if "imds" in fields else ImdsSettings()
    return Settings(
        imds=imds,
        cache_ttl=doc.duration(fields["cache_ttl"], "cache_ttl")
        if "cache_ttl" in fields else Settings.cache_ttl,
        concurrency=doc.integer(fields["concurrency"], "concurrency", 1, MAX_CONCURRENCY)
        if "concurrency" in fields else Settings.concurrency,
    )


def _imds_settings(doc: _Doc, node: Node) -> ImdsSettings:
    fields = doc.fields(node, _IMDS_FIELDS, "imds")
    parsers: Dict[str, Callable[[Node], Any]] = {
        "endpoint": lambda n: _endpoint(doc, n),
        "endpoint_mode": lambda n: _endpoint_mode(doc, n),
        "token_ttl": lambda n: doc.integer(n, "token_ttl", 1, 21600),
        "timeout": lambda n: _positive_duration(doc, n, "timeout"),
        "retries": lambda n: doc.integer(n, "retries", 0),
        "boot_wait": lambda n: doc.duration(n, "boot_wait"),
        "allow_imdsv1": lambda n: doc.boolean(n, "allow_imdsv1"),
    }
    return ImdsSettings(**{name: parsers[name](n) for name, n in fields.items()})


def _endpoint(doc: _Doc, node: Node) -> str:
    url = doc.string(node, "endpoint").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(doc.at(node), f"endpoint {url!r} is not an http:// URL",
                          "write e.g. http://169.254.169.254")
    return url.rstrip("/")


def _endpoint_mode(doc: _Doc, node: Node) -> str:
    mode = doc.string(node, "endpoint_mode").strip().lower()
    if mode not in ("ipv4", "ipv6"):
        raise ConfigError(doc.at(node), f"endpoint_mode must be ipv4 or ipv6, not {mode!r}")
    return mode


def _positive_duration(doc: _Doc, node: Node, name: str) -> float:
    seconds = doc.duration(node, name)
    if seconds <= 0:
        raise ConfigError(doc.at(node), f"{name} must be more than 0")
    return seconds


# -------------------------------------------------------------------- keys

def _default_mode(keys: Sequence[str]) -> int:
    """0600 when a secret may land in the file, 0644 otherwise."""
    return 0o600 if any(is_credentials(k) for k in keys) else 0o644


# --------------------------------------------------------------- templates

@dataclass(frozen=True)
class _Ref:
    """A literal ``{% include/import/extends %}`` found in a template."""

    names: Tuple[str, ...]  # several for {% include ["a", "b"] %}
    line: int
    ignore_missing: bool
    without_context: bool  # an {% import %} that cannot see the template functions


@dataclass(frozen=True)
class _Scan:
    """What config loading needs to know about one template source."""

    name: str
    keys: Tuple[str, ...]
    functions: Tuple[str, ...]  # key functions it calls, for the import check
    problems: Tuple[Tuple[int, str, str], ...]  # (line, what, hint): keys not derivable
    refs: Tuple[_Ref, ...]


class _Underivable(Exception):
    def __init__(self, what: str, hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.hint = hint


def _list_keys_hint(origin: Optional[str]) -> str:
    place = origin or "the resource's conf.d file"
    return (f"list the keys under keys: in {place} (a directory key such as "
            "/meta-data/tags/instance/ covers everything below it)")


def _parse(env: jinja2.Environment, source: str, name: str) -> nodes.Template:
    try:
        return env.parse(source, name=name)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"templates/{name}:{exc.lineno}",
                          exc.message or "template syntax error") from None


def _constant(expr: nodes.Expr, env: jinja2.Environment) -> Any:
    """The value of a constant expression ("a" ~ "b" folds), else _Underivable."""
    try:
        return expr.as_const(nodes.EvalContext(env))
    except Exception:  # Impossible, or a filter failing while folding
        raise _Underivable("not a literal") from None


def _first_argument(call: nodes.Call, function: str) -> nodes.Expr:
    if call.args:
        return call.args[0]
    for keyword in call.kwargs:
        if keyword.key == TEMPLATE_FUNCTIONS[function].param:
            return keyword.value  # type: ignore[no-any-return]
    if call.dyn_args is not None or call.dyn_kwargs is not None:
        raise _Underivable(f"key of {function}() is not a literal")
    raise _Underivable(f"{function}() has no key argument", f"write {function}(\"/meta-data/...\")")


def _call_key(call: nodes.Call, function: str, env: jinja2.Environment) -> str:
    argument = _first_argument(call, function)
    try:
        text = _constant(argument, env)
    except _Underivable:
        raise _Underivable(f"key of {function}() is not a literal") from None
    if not isinstance(text, str):
        raise _Underivable(f"key of {function}() is not a string", f"write {function}(\"...\")")
    try:
        return key_of_call(function, text)
    except InvalidKey as exc:
        raise _Underivable(f"invalid key {text!r}: {exc.what}", exc.hint) from None


def _scan(env: jinja2.Environment, source: str, name: str) -> _Scan:
    """Keys, problems and references of one template, from its syntax tree."""
    tree = _parse(env, source, name)
    keys: List[str] = []
    functions: List[str] = []
    problems: List[Tuple[int, str, str]] = []
    called: Set[int] = set()
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in TEMPLATE_FUNCTIONS:
            called.add(id(call.node))
            functions.append(call.node.name)
            try:
                keys.append(_call_key(call, call.node.name, env))
            except _Underivable as exc:
                problems.append((call.lineno, exc.what, exc.hint))
    problems.extend(_bare_uses(tree, called))
    refs, ref_problems = _references(tree, env)
    problems.extend(ref_problems)
    return _Scan(name, tuple(keys), tuple(functions), tuple(sorted(problems)), refs)


def _bare_uses(tree: nodes.Template, called: Set[int]) -> List[Tuple[int, str, str]]:
    """getv passed around as a value (``set f = getv``) hides its keys."""
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return [(n.lineno, f"{n.name} is used other than as a direct call {n.name}(...)", "")
            for n in tree.find_all(nodes.Name)
            if n.name in TEMPLATE_FUNCTIONS and n.ctx == "load" and id(n) not in called
            and n.name not in assigned]


def _references(tree: nodes.Template, env: jinja2.Environment
                ) -> Tuple[Tuple[_Ref, ...], List[Tuple[int, str, str]]]:
    refs: List[_Ref] = []
    problems: List[Tuple[int, str, str]] = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        try:
            value = _constant(node.template, env)  # type: ignore[attr-defined]
        except _Underivable:
            value = None
        names = (value,) if isinstance(value, str) else tuple(value or ())
        if not names or not all(isinstance(n, str) for n in names):
            problems.append((node.lineno, "template name is not a literal", ""))
            continue
        refs.append(_Ref(
            names=names, line=node.lineno,
            ignore_missing=bool(getattr(node, "ignore_missing", False)),
            without_context=isinstance(node, (nodes.Import, nodes.FromImport))
            and not node.with_context,
        ))
    return tuple(refs), problems


def _template_path_ok(name: str) -> bool:
    """Jinja names are relative and stay inside templates/ (no "..")."""
    return bool(name) and not name.startswith("/") and ".." not in name.split("/")


class _Templates:
    """The templates/ directory as config loading sees it: each file parsed once."""

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory  # None: look at added sources only, follow nothing
        self._env = jinja2.Environment()
        self._scans: Dict[str, _Scan] = {}

    def path(self, name: str) -> str:
        return os.path.abspath(os.path.join(self.directory or ".", *name.split("/")))

    def exists(self, name: str) -> bool:
        return (self.directory is not None and _template_path_ok(name)
                and os.path.isfile(self.path(name)))

    def add(self, name: str, source: str) -> None:
        self._scans[name] = _scan(self._env, source, name)

    def scan(self, name: str) -> _Scan:
        if name not in self._scans:
            if not self.exists(name):
                raise ConfigError(f"templates/{name}", "template does not exist",
                                  f"looked in {self.directory}")
            self.add(name, _read_text(self.path(name), f"templates/{name}"))
        return self._scans[name]

    def closure(self, name: str) -> List[_Scan]:
        """*name* and every template it includes, imports or extends by literal name."""
        order: List[_Scan] = []
        todo, seen = [name], {name}
        while todo:
            scan = self.scan(todo.pop(0))
            order.append(scan)
            for ref in scan.refs if self.directory is not None else ():
                for target in self._targets(scan, ref):
                    if target not in seen:
                        seen.add(target)
                        todo.append(target)
        return order

    def _targets(self, scan: _Scan, ref: _Ref) -> List[str]:
        found = [n for n in ref.names if self.exists(n)]
        if not found and not ref.ignore_missing:
            raise ConfigError(f"templates/{scan.name}:{ref.line}",
                              f"template {ref.names[0]!r} does not exist",
                              f"looked in {self.directory}")
        return found

    def derive(self, name: str, origin: Optional[str]) -> Tuple[str, ...]:
        """The keys the template and everything it pulls in read, or ConfigError."""
        keys: List[str] = []
        for scan in self.closure(name):
            if scan.problems:
                line, what, hint = scan.problems[0]
                raise ConfigError(f"templates/{scan.name}:{line}", what,
                                  hint or _list_keys_hint(origin))
            self._refuse_contextless_imports(scan)
            keys.extend(scan.keys)
        return tuple(sorted(set(keys)))

    def _refuse_contextless_imports(self, scan: _Scan) -> None:
        for ref in scan.refs:
            if not ref.without_context:
                continue
            for target in ref.names:
                used = self.scan(target).functions if self.exists(target) else ()
                if used:
                    raise ConfigError(
                        f"templates/{scan.name}:{ref.line}",
                        f"{target!r} is imported without context, so its {used[0]}() "
                        "cannot see the metadata",
                        f"write {{% import {target!r} as ... with context %}}")


def derive_keys(source: str, template_name: str, *, origin: Optional[str] = None,
                templates_dir: Optional[str] = None) -> Tuple[str, ...]:
    """The keys a template reads, from the literal arguments of its key functions.

    Raises ConfigError (templates/NAME:LINE) when a key is not a literal,
    since the fetch plan must be known before anything is fetched.  With
    *templates_dir*, literal includes/imports/extends are followed too;
    without it only *source* itself is looked at.  *origin* (the resource's
    "conf.d/x.yaml:LINE") goes into the hint.
    """
    templates = _Templates(templates_dir)
    templates.add(template_name, source)
    return templates.derive(template_name, origin)


def template_closure(templates_dir: str, name: str) -> Tuple[str, ...]:
    """*name* and the templates it includes/imports/extends by literal name.

    For ``imdsrender check``, which compiles each of them with the real
    environment; ConfigError when one does not exist or does not parse.
    """
    return tuple(scan.name for scan in _Templates(templates_dir).closure(name))


# --------------------------------------------------------------- resources

_FILE_FIELDS = ("templates",)
_RESOURCE_FIELDS = ("src", "dest", "keys", "mode", "owner", "group", "check_cmd",
                    "reload_cmd", "check_timeout", "reload_timeout")


def load_resources(confdir: str, *, dest_root: Optional[str] = None) -> Tuple[Resource, ...]:
    """Every resource of conf.d/*.yaml (files in name order), validated.

    Templates are parsed here (syntax errors are config errors, exit 2, found
    before anything is fetched) and keys are derived when not listed.
    *dest_root* re-roots every dest under a directory, so the demo and
    offline tests can render a real confdir without touching /etc.
    """
    confd = os.path.join(confdir, "conf.d")
    if not os.path.isdir(confd):
        raise ConfigError(confd, "no such directory",
                          "create it with one or more *.yaml resource files")
    _warn_ignored(confd)
    templates = _Templates(os.path.join(confdir, "templates"))
    resources: List[Resource] = []
    writers: Dict[str, str] = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(confd), "*.yaml"))):
        if not os.path.isfile(path):
            continue
        for resource, dest_at in _file_resources(path, os.path.relpath(path, confdir),
                                                 templates, dest_root):
            if resource.dest in writers:
                raise ConfigError(dest_at, f"dest {resource.dest} is already written by "
                                  f"{writers[resource.dest]}", "give each resource its own dest")
            writers[resource.dest] = resource.origin
            resources.append(resource)
    return tuple(resources)


def _warn_ignored(confd: str) -> None:
    for path in sorted(glob.glob(os.path.join(glob.escape(confd), "*.yml"))):
        log.warning("%s: ignored; resource files must end in .yaml", path)


def _file_resources(path: str, name: str, templates: _Templates,
                    dest_root: Optional[str]) -> List[Tuple[Resource, str]]:
    """(resource, "file:line" of its dest) for one conf.d file; empty file: none."""
    root = _compose(path, name)
    if root is None:
        log.debug("%s: empty, declares no resources", name)
        return []
    doc = _Doc(name)
    fields = doc.fields(root, _FILE_FIELDS, "a conf.d file")
    if "templates" not in fields:
        raise ConfigError(doc.at(root), "missing field 'templates'",
                          "list the resources under templates:")
    items = fields["templates"]
    if not isinstance(items, SequenceNode):
        raise ConfigError(doc.at(items), "templates must be a list of resources, not "
                          f"{_kind(doc.value(items))}", "start each resource with '- src: ...'")
    return [_resource(doc, item, templates, dest_root) for item in items.value]


def _resource(doc: _Doc, item: Node, templates: _Templates,
              dest_root: Optional[str]) -> Tuple[Resource, str]:
    fields = doc.fields(item, _RESOURCE_FIELDS, "a template resource")
    origin = doc.at(item)
    for required, hint in (("src", "name the template, relative to templates/"),
                           ("dest", "name the absolute path of the file to write")):
        if required not in fields:
            raise ConfigError(origin, f"missing field '{required}'", hint)
    template = _template_name(doc, fields["src"], templates)
    if "keys" in fields:
        keys = _keys(doc, fields["keys"])
        templates.closure(template)  # still parse it and what it includes
    else:
        keys = templates.derive(template, origin)
    resource = Resource(
        origin=origin,
        src=templates.path(template),
        template=template,
        dest=_dest(doc, fields["dest"], dest_root),
        keys=keys,
        mode=_mode(doc, fields["mode"]) if "mode" in fields else _default_mode(keys),
        owner=_owner(doc, fields["owner"], "owner") if "owner" in fields else None,
        group=_owner(doc, fields["group"], "group") if "group" in fields else None,
        check_cmd=doc.string(fields["check_cmd"], "check_cmd") if "check_cmd" in fields else None,
        reload_cmd=doc.string(fields["reload_cmd"], "reload_cmd")
        if "reload_cmd" in fields else None,
        check_timeout=doc.duration(fields["check_timeout"], "check_timeout")
        if "check_timeout" in fields else Resource.check_timeout,
        reload_timeout=doc.duration(fields["reload_timeout"], "reload_timeout")
        if "reload_timeout" in fields else Resource.reload_timeout,
    )
    return resource, doc.at(fields["dest"])


def _template_name(doc: _Doc, node: Node, templates: _Templates) -> str:
    src = doc.string(node, "src").strip()
    name = posixpath.normpath(src) if src else ""
    if not _template_path_ok(name):
        raise ConfigError(doc.at(node), f"src {src!r} must be a path inside templates/",
                          "write it relative to templates/, e.g. src: app.conf.j2")
    if not templates.exists(name):
        raise ConfigError(doc.at(node), f"template {src!r} does not exist",
                          f"looked in {templates.directory}")
    return name


def _dest(doc: _Doc, node: Node, dest_root: Optional[str]) -> str:
    dest = doc.string(node, "dest").strip()
    if not dest.startswith("/") or dest.endswith("/"):
        raise ConfigError(doc.at(node), f"dest {dest!r} must be an absolute file path",
                          "write e.g. dest: /etc/app/app.conf")
    dest = posixpath.normpath(dest)
    return os.path.join(dest_root, dest.lstrip("/")) if dest_root else dest


def _keys(doc: _Doc, node: Node) -> Tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        raise ConfigError(doc.at(node), f"keys must be a list, not {_kind(doc.value(node))}",
                          "write one '- /meta-data/...' line per key")
    keys: List[str] = []
    for item in node.value:
        text = doc.string(item, "a key")
        try:
            keys.append(normalize_key(text))
        except InvalidKey as exc:
            raise ConfigError(doc.at(item), f"invalid key {text!r}: {exc.what}", exc.hint) from None
    return tuple(sorted(set(keys)))


def _mode(doc: _Doc, node: Node) -> int:
    """The raw scalar read as octal: "0640", 0640 and 640 all mean rw-r-----."""
    raw = node.value.strip() if isinstance(node, ScalarNode) else ""
    match = _MODE.fullmatch(raw)
    if not match:
        raise ConfigError(doc.at(node), f"mode {raw or _kind(doc.value(node))!r} is not an "
                          "octal file mode", 'write it quoted, e.g. mode: "0640"')
    return int(match.group(1), 8)


def _owner(doc: _Doc, node: Node, name: str) -> int:
    """A uid/gid from a number or a user/group name (looked up now, so typos fail early)."""
    value = doc.value(node)
    number = ascii_int(value) if isinstance(value, str) else None
    if number is not None:
        value = number
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_ID:
            raise ConfigError(doc.at(node), f"{name} {value} is out of range",
                              f"ids go from 0 to {MAX_ID}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(doc.at(node), f"{name} must be a name or a number, not {_kind(value)}")
    try:
        if name == "owner":
            return pwd.getpwnam(value.strip()).pw_uid
        return grp.getgrnam(value.strip()).gr_gid
    except KeyError:
        kind = "user" if name == "owner" else "group"
        raise ConfigError(doc.at(node), f"unknown {kind} {value.strip()!r}",
                          f"create the {kind} first or give a number") from None
