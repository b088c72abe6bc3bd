"""The templates/ directory as config loading sees it: each file parsed once.

Follows literal includes/imports/extends (the *closure* of a template),
derives the keys of a resource from the whole closure, and refuses what
would hide keys from the fetch plan.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import jinja2

from ..errors import ConfigError
from .scan import Ref, Scan, scan_template
from .yamldoc import read_text


def _list_keys_hint(origin: Optional[str]) -> str:
    place = origin or "the resource's conf.d file"
    return (f"list the keys under keys: in {place} (a directory key such as "
            "/meta-data/tags/instance/ covers everything below it)")


def template_path_ok(name: str) -> bool:
    """Jinja names are relative and stay inside templates/ (no "..")."""
    return bool(name) and not name.startswith("/") and ".." not in name.split("/")


class Templates:
    """The templates/ directory as config loading sees it: each file parsed once."""

    def __init__(self, directory: Optional[str]) -> None:
        self.directory = directory  # None: look at added sources only, follow nothing
        self._env = jinja2.Environment()
        self._scans: Dict[str, Scan] = {}

    def path(self, name: str) -> str:
        return os.path.abspath(os.path.join(self.directory or ".", *name.split("/")))

    def exists(self, name: str) -> bool:
        return (self.directory is not None and template_path_ok(name)
                and os.path.isfile(self.path(name)))

    def add(self, name: str, source: str) -> None:
        self._scans[name] = scan_template(self._env, source, name)

    def scan(self, name: str) -> Scan:
        if name not in self._scans:
            if not self.exists(name):
                raise ConfigError(f"templates/{name}", "template does not exist",
                                  f"looked in {self.directory}")
            self.add(name, read_text(self.path(name), f"templates/{name}"))
        return self._scans[name]

    def closure(self, name: str) -> List[Scan]:
        """*name* and every template it includes, imports or extends by literal name."""
        order: List[Scan] = []
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

    def _targets(self, scan: Scan, ref: Ref) -> List[str]:
        found = [n for n in ref.names if self.exists(n)]
        if not found and not ref.ignore_missing:
            raise ConfigError(f"templates/{scan.name}:{ref.line}",
                              f"template {ref.names[0]!r} does not exist",
                              f"looked in {self.directory}")
        return found

    def derive(self, name: str, origin: Optional[str]) -> Tuple[str, ...]:
        """The keys the template and everything it pulls in read, or ConfigError."""
        keys: List[str] = []
        for scanned in self.closure(name):
            if scanned.problems:
                line, problem = scanned.problems[0]
                raise problem.at(f"templates/{scanned.name}:{line}", ConfigError,
                                 hint=_list_keys_hint(origin))
            self._refuse_contextless_imports(scanned)
            keys.extend(scanned.keys)
        return tuple(sorted(set(keys)))

    def _refuse_contextless_imports(self, scan: Scan) -> None:
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
    templates = Templates(templates_dir)
    templates.add(template_name, source)
    return templates.derive(template_name, origin)


def template_closure(templates_dir: str, name: str) -> Tuple[str, ...]:
    """*name* and the templates it includes/imports/extends by literal name.

    What :func:`~imdsrender.config.load_resources` stores as
    ``Resource.closure``; ConfigError when one does not exist or does not parse.
    """
    return tuple(scanned.name for scanned in Templates(templates_dir).closure(name))
