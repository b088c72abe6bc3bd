"""YAML documents read as nodes: values with their line, and one-line errors.

YAML is read as *composed nodes*, not as plain Python objects: the nodes keep
the line of every field (for messages) and the raw text of every scalar (so
``mode: 0640`` and ``mode: 640`` both mean octal 640, whatever YAML 1.1
thinks of leading zeros).  A misspelt field gets a did-you-mean.
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, Optional, Sequence, Set, Tuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from ..errors import ConfigError, UsageError
from ..model import bounded_duration
from ..quantities import parse_duration

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# Field names confd users bring along, with what to write instead.
_CONFD_FIELDS = {"uid": "owner", "gid": "group"}


def kind(value: object) -> str:
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


def unknown_field(name: str, allowed: Sequence[str]) -> Tuple[str, str]:
    """(what, hint) for a misspelt field: the closest known name, or the list."""
    if name in _CONFD_FIELDS:
        return f"unknown field '{name}' (did you mean '{_CONFD_FIELDS[name]}'?)", ""
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown field '{name}' (did you mean '{close[0]}'?)", ""
    return f"unknown field '{name}'", "known fields: " + ", ".join(allowed)


def yaml_error(name: str, exc: yaml.YAMLError) -> ConfigError:
    """One line out of PyYAML's multi-line messages, located by its marks."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        what = f"invalid YAML: {exc.problem}"
        if exc.context and exc.context_mark is not None:
            what += f" ({exc.context} at line {exc.context_mark.line + 1})"
        elif exc.context:
            what += f" ({exc.context})"
        return ConfigError(f"{name}:{exc.problem_mark.line + 1}", what)
    return ConfigError(name, "invalid YAML: " + " ".join(str(exc).split()))


def read_text(path: str, name: str) -> str:
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


def compose(path: str, name: str) -> Optional[Node]:
    """The file's single YAML document as nodes (None when it is empty)."""
    text = read_text(path, name)
    try:
        return yaml.compose(text, Loader=_LOADER)  # type: ignore[no-any-return]
    except yaml.YAMLError as exc:
        raise yaml_error(name, exc) from None


class Doc:
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
            raise yaml_error(self.name, exc) from None
        except ValueError:  # int() of a number past Python's 4300-digit limit
            raise ConfigError(self.at(node), "number too long", "write a sensible number") from None

    def fields(self, node: Node, allowed: Sequence[str], what: str) -> Dict[str, Node]:
        """Field name -> value node; unknown or repeated fields are errors.

        Merge keys (``<<: *defaults``) are honoured, so resources can share
        fields through anchors; an explicit field overrides a merged one.
        Empty (null) values count as absent.
        """
        if not isinstance(node, MappingNode):
            raise ConfigError(self.at(node), f"{what} must be a mapping, not "
                              f"{kind(self.value(node))}")
        self._refuse_repeats(node)
        try:
            self._constructor.flatten_mapping(node)
        except yaml.YAMLError as exc:
            raise yaml_error(self.name, exc) from None
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
            what, hint = unknown_field(name, allowed)
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
            raise ConfigError(self.at(node), f"{name} must be a string, not {kind(value)}")
        if "\0" in value:  # no path, command or name can hold one: os calls refuse it later
            raise ConfigError(self.at(node), f"{name} contains a NUL byte", "remove the \\0")
        return value

    def integer(self, node: Node, name: str, low: int, high: Optional[int] = None) -> int:
        value = self.value(node)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(node), f"{name} must be a whole number, not {kind(value)}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f">= {low}"
            raise ConfigError(self.at(node), f"{name} must be {bounds}, not {value}")
        return value

    def boolean(self, node: Node, name: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise ConfigError(self.at(node), f"{name} must be true or false, not {kind(value)}")
        return value

    def duration(self, node: Node, name: str) -> float:
        """A duration within model.DURATION_BOUNDS[name], the bounds its flag obeys too."""
        try:
            return bounded_duration(name, parse_duration(self.value(node), self.at(node)),
                                    self.at(node))
        except UsageError as exc:
            raise ConfigError(exc.where, exc.what, exc.hint) from None
