"""What a template reads, from its Jinja syntax tree: keys, functions, references.

The fetch plan must be known before anything is fetched, so the keys a
template reads are taken from the literal arguments of its key functions
(the names come from :data:`imdsrender.keys.TEMPLATE_FUNCTIONS`, the one
table); ``{% include/import/extends %}`` with literal names are recorded
so :mod:`.templates` can follow them.  Parsing only; no file access.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Set, Tuple

import jinja2
from jinja2 import nodes

from ..errors import ConfigError, Problem
from ..keys import TEMPLATE_FUNCTIONS, InvalidKey, key_of_call

# A problem and the template line it is on.
Located = Tuple[int, Problem]


def _order(located: Located) -> Tuple[int, str, str]:
    """First by line, then by text, so the error reported never depends on walk order."""
    line, problem = located
    return line, problem.what, problem.hint


@dataclass(frozen=True)
class Ref:
    """A literal ``{% include/import/extends %}`` found in a template."""

    names: Tuple[str, ...]  # several for {% include ["a", "b"] %}
    line: int
    ignore_missing: bool
    without_context: bool  # an {% import %} that cannot see the template functions


@dataclass(frozen=True)
class Scan:
    """What config loading needs to know about one template source."""

    name: str
    keys: Tuple[str, ...]
    functions: Tuple[str, ...]  # key functions it calls, for the import check
    problems: Tuple[Located, ...]  # keys not derivable, by line
    refs: Tuple[Ref, ...]


def _parse(env: jinja2.Environment, source: str, name: str) -> nodes.Template:
    try:
        return env.parse(source, name=name)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"templates/{name}:{exc.lineno}",
                          exc.message or "template syntax error") from None


def _constant(expr: nodes.Expr, env: jinja2.Environment) -> Any:
    """The value of a constant expression ("a" ~ "b" folds), else Problem."""
    try:
        return expr.as_const(nodes.EvalContext(env))
    except Exception:  # Impossible, or a filter failing while folding
        raise Problem("not a literal") from None


def _first_argument(call: nodes.Call, function: str) -> nodes.Expr:
    if call.args:
        return call.args[0]
    for keyword in call.kwargs:
        if keyword.key == TEMPLATE_FUNCTIONS[function].param:
            return keyword.value  # type: ignore[no-any-return]
    if call.dyn_args is not None or call.dyn_kwargs is not None:
        raise Problem(f"key of {function}() is not a literal")
    raise Problem(f"{function}() has no key argument", f"write {function}(\"/meta-data/...\")")


def _call_key(call: nodes.Call, function: str, env: jinja2.Environment) -> str:
    argument = _first_argument(call, function)
    try:
        text = _constant(argument, env)
    except Problem:
        raise Problem(f"key of {function}() is not a literal") from None
    if not isinstance(text, str):
        raise Problem(f"key of {function}() is not a string", f"write {function}(\"...\")")
    try:
        return key_of_call(function, text)
    except InvalidKey as exc:
        raise Problem(f"invalid key {text!r}: {exc.what}", exc.hint) from None


def scan_template(env: jinja2.Environment, source: str, name: str) -> Scan:
    """Keys, problems and references of one template, from its syntax tree."""
    tree = _parse(env, source, name)
    keys: List[str] = []
    functions: List[str] = []
    problems: List[Located] = []
    called: Set[int] = set()
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name in TEMPLATE_FUNCTIONS:
            called.add(id(call.node))
            functions.append(call.node.name)
            try:
                keys.append(_call_key(call, call.node.name, env))
            except Problem as exc:
                problems.append((call.lineno, exc))
    problems.extend(_bare_uses(tree, called))
    refs, ref_problems = _references(tree, env)
    problems.extend(ref_problems)
    return Scan(name, tuple(keys), tuple(functions), tuple(sorted(problems, key=_order)), refs)


def _bare_uses(tree: nodes.Template, called: Set[int]) -> List[Located]:
    """getv passed around as a value (``set f = getv``) hides its keys."""
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    return [(n.lineno, Problem(f"{n.name} is used other than as a direct call {n.name}(...)"))
            for n in tree.find_all(nodes.Name)
            if n.name in TEMPLATE_FUNCTIONS and n.ctx == "load" and id(n) not in called
            and n.name not in assigned]


def _references(tree: nodes.Template, env: jinja2.Environment
                ) -> Tuple[Tuple[Ref, ...], List[Located]]:
    refs: List[Ref] = []
    problems: List[Located] = []
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        try:
            value = _constant(node.template, env)  # type: ignore[attr-defined]
        except Problem:
            value = None
        names = (value,) if isinstance(value, str) else tuple(value or ())
        if not names or not all(isinstance(n, str) for n in names):
            problems.append((node.lineno, Problem("template name is not a literal")))
            continue
        refs.append(Ref(
            names=names, line=node.lineno,
            ignore_missing=bool(getattr(node, "ignore_missing", False)),
            without_context=isinstance(node, (nodes.Import, nodes.FromImport))
            and not node.with_context,
        ))
    return tuple(refs), problems
