"""Template resources: conf.d/*.yaml read into :class:`~imdsrender.model.Resource`.

Templates are parsed here (syntax errors are config errors, exit 2, found
before anything is fetched), keys are derived when not listed, and each
resource carries its template closure so ``check`` compiles exactly those.
"""

from __future__ import annotations

import glob
import grp
import logging
import os
import posixpath
import pwd
import re
import reprlib
from typing import Dict, List, Optional, Sequence, Tuple

from yaml.nodes import Node, ScalarNode, SequenceNode

from ..errors import ConfigError
from ..keys import InvalidKey, is_credentials, normalize_key
from ..model import Resource
from ..quantities import ascii_int
from .templates import Templates, template_path_ok
from .yamldoc import Doc, compose, kind

log = logging.getLogger(__name__)

MAX_ID = 2**32 - 2  # 2**32 - 1 is (uid_t)-1: "leave unchanged" to chown()
_MODE = re.compile(r"(?:0o|0)?([0-7]{1,4})")

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
    templates = Templates(os.path.join(confdir, "templates"))
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


def _file_resources(path: str, name: str, templates: Templates,
                    dest_root: Optional[str]) -> List[Tuple[Resource, str]]:
    """(resource, "file:line" of its dest) for one conf.d file; empty file: none."""
    root = compose(path, name)
    if root is None:
        log.debug("%s: empty, declares no resources", name)
        return []
    doc = Doc(name)
    fields = doc.fields(root, _FILE_FIELDS, "a conf.d file")
    if "templates" not in fields:
        raise ConfigError(doc.at(root), "missing field 'templates'",
                          "list the resources under templates:")
    items = fields["templates"]
    if not isinstance(items, SequenceNode):
        raise ConfigError(doc.at(items), "templates must be a list of resources, not "
                          f"{kind(doc.value(items))}", "start each resource with '- src: ...'")
    return [_resource(doc, item, templates, dest_root) for item in items.value]


def _resource(doc: Doc, item: Node, templates: Templates,
              dest_root: Optional[str]) -> Tuple[Resource, str]:
    fields = doc.fields(item, _RESOURCE_FIELDS, "a template resource")
    origin = doc.at(item)
    for required, hint in (("src", "name the template, relative to templates/"),
                           ("dest", "name the absolute path of the file to write")):
        if required not in fields:
            raise ConfigError(origin, f"missing field '{required}'", hint)
    template = _template_name(doc, fields["src"], templates)
    keys = _keys(doc, fields["keys"]) if "keys" in fields else templates.derive(template, origin)
    # Parsed even when keys are listed: a syntax error is a config error.
    closure = tuple(scanned.name for scanned in templates.closure(template))
    resource = Resource(
        origin=origin,
        src=templates.path(template),
        template=template,
        dest=_dest(doc, fields["dest"], dest_root),
        keys=keys,
        closure=closure,
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


def _default_mode(keys: Sequence[str]) -> int:
    """0600 when a secret may land in the file, 0644 otherwise."""
    return 0o600 if any(is_credentials(k) for k in keys) else 0o644


def _template_name(doc: Doc, node: Node, templates: Templates) -> str:
    src = doc.string(node, "src").strip()
    name = posixpath.normpath(src) if src else ""
    if not template_path_ok(name):
        raise ConfigError(doc.at(node), f"src {src!r} must be a path inside templates/",
                          "write it relative to templates/, e.g. src: app.conf.j2")
    if not templates.exists(name):
        raise ConfigError(doc.at(node), f"template {src!r} does not exist",
                          f"looked in {templates.directory}")
    return name


def _dest(doc: Doc, node: Node, dest_root: Optional[str]) -> str:
    dest = doc.string(node, "dest").strip()
    if not dest.startswith("/") or dest.endswith("/"):
        raise ConfigError(doc.at(node), f"dest {dest!r} must be an absolute file path",
                          "write e.g. dest: /etc/app/app.conf")
    dest = posixpath.normpath(dest)
    return os.path.join(dest_root, dest.lstrip("/")) if dest_root else dest


def _keys(doc: Doc, node: Node) -> Tuple[str, ...]:
    if not isinstance(node, SequenceNode):
        raise ConfigError(doc.at(node), f"keys must be a list, not {kind(doc.value(node))}",
                          "write one '- /meta-data/...' line per key")
    keys: List[str] = []
    for item in node.value:
        text = doc.string(item, "a key")
        try:
            keys.append(normalize_key(text))
        except InvalidKey as exc:
            raise ConfigError(doc.at(item), f"invalid key {text!r}: {exc.what}", exc.hint) from None
    return tuple(sorted(set(keys)))


def _mode(doc: Doc, node: Node) -> int:
    """The raw scalar read as octal: "0640", 0640 and 640 all mean rw-r-----."""
    raw = node.value.strip() if isinstance(node, ScalarNode) else ""
    match = _MODE.fullmatch(raw)
    if not match:
        raise ConfigError(doc.at(node), f"mode {raw or kind(doc.value(node))!r} is not an "
                          "octal file mode", 'write it quoted, e.g. mode: "0640"')
    return int(match.group(1), 8)


def _owner(doc: Doc, node: Node, name: str) -> int:
    """A uid/gid from a number or a user/group name (looked up now, so typos fail early)."""
    value = doc.string(node, name) if isinstance(doc.value(node), str) else doc.value(node)
    digits = isinstance(value, str) and len(value.strip()) <= len(str(MAX_ID))
    number = ascii_int(value) if digits else None
    if number is not None:
        value = number
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value <= MAX_ID:
            raise ConfigError(doc.at(node), f"{name} {value} is out of range",
                              f"ids go from 0 to {MAX_ID}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(doc.at(node), f"{name} must be a name or a number, not {kind(value)}")
    try:
        if name == "owner":
            return pwd.getpwnam(value.strip()).pw_uid
        return grp.getgrnam(value.strip()).gr_gid
    except KeyError:
        account = "user" if name == "owner" else "group"
        shown = reprlib.repr(value.strip())  # a 5,000-digit "name" is not echoed whole
        raise ConfigError(doc.at(node), f"unknown {account} {shown}",
                          f"create the {account} first or give a number") from None
