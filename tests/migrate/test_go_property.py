"""Property: over generated confd templates, Go and the migrated Jinja agree, or the
migrator reported the spot (file:line).

The generator draws from the constructs the translator supports (and a few
it must refuse), nested with Go's scoping: variables are only used where Go
has them in scope, so Go itself accepts every template.
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.migrate.differential import FIXTURE, confd_store, go_render, migrate_and_render

pytestmark = pytest.mark.tools

T = TypeVar("T")
Draw = Callable[[st.SearchStrategy[T]], T]

LEAVES = ["/meta-data/instance-id", "/meta-data/local-ipv4", "/meta-data/tags/instance/Name",
          "/meta-data/tags/instance/Hosts", "/meta-data/app/empty", "/meta-data/security-groups"]
TEXT = ["a", " ", "\n", "x=", "\t", "{", "}", "#", "%", "-", ":", "{ {", "\r\n"]


def _string(draw: Draw, names: List[str], dot: Optional[str], depth: int = 0) -> str:
    """A Go expression of string type."""
    names = [n for n in names if n.startswith("$")]
    choices = ["getv", "default", "lit"]
    if depth < 2:
        choices += ["printf", "upper", "base", "print", "or", "replace", "join", "trim"]
    if names:
        choices.append("var")
    if dot == "str":
        choices.append("dot")
    if dot == "kv":
        choices += ["key", "value"]
    if depth < 2:
        choices.append("jsonfield")
    kind = draw(st.sampled_from(choices))
    sub = lambda: _string(draw, names, dot, depth + 1)  # noqa: E731
    if kind == "getv":
        return f'(getv "{draw(st.sampled_from(LEAVES))}")'
    if kind == "default":
        return f'(getv "/meta-data/nope" "{draw(st.sampled_from(["", "d", "x y"]))}")'
    if kind == "lit":
        return draw(st.sampled_from(['"a"', '""', '"a,b"', '`r`', '"{{"', '"/x/y"']))
    if kind == "printf":
        return f'(printf "%s-%s" {sub()} {sub()})'
    if kind == "upper":
        return f"({draw(st.sampled_from(['toUpper', 'toLower']))} {sub()})"
    if kind == "base":
        return f"({draw(st.sampled_from(['base', 'dir']))} {sub()})"
    if kind == "print":
        args = [sub() if draw(st.booleans()) else draw(st.sampled_from(["1", "2", "true"]))
                for _ in range(draw(st.integers(1, 3)))]
        return f"(print {' '.join(args)})"
    if kind == "or":
        return f"(or {sub()} {sub()})"
    if kind == "replace":
        return f'(replace {sub()} "a" "b" -1)'
    if kind == "join":
        return f'(join (split {sub()} ",") ";")'
    if kind == "trim":
        return f'(trimSuffix {sub()} "a")'
    if kind == "var":
        return draw(st.sampled_from(names))
    if kind == "key":
        return draw(st.sampled_from([".Key", "(base .Key)"]))
    if kind == "value":
        return ".Value"
    if kind == "jsonfield":  # present fields only: Go's printf shows a missing one as %!s(<nil>)
        field = draw(st.sampled_from(["name", "proxy_url"]))
        return f'(index (json (getv "/meta-data/app/containers/c1")) "{field}")'
    return "."


def _cond(draw: Draw, names: List[str], dot: Optional[str]) -> str:
    kind = draw(st.sampled_from(["exists", "eq", "not", "and", "contains", "str", "field"]))
    s = lambda: _string(draw, names, dot, 1)  # noqa: E731
    if kind == "exists":
        return f'exists "{draw(st.sampled_from(LEAVES + ["/meta-data/nope"]))}"'
    if kind == "eq":
        return f"{draw(st.sampled_from(['eq', 'ne']))} {s()} {s()}"
    if kind == "not":
        return f"not {s()}"
    if kind == "and":
        return f"{draw(st.sampled_from(['and', 'or']))} {s()} {s()}"
    if kind == "contains":
        return f'contains {s()} "a"'
    if kind == "field":  # a missing JSON field is false, as in Go
        doc = draw(st.sampled_from(["c1", "c2"]))
        return f'(json (getv "/meta-data/app/containers/{doc}")).proxy_url'
    return s()


def _action(draw: Draw, body: str) -> str:
    left = draw(st.sampled_from(["{{", "{{- "]))
    right = draw(st.sampled_from(["}}", " -}}"]))
    return f"{left}{body}{right}"


def _block(draw: Draw, names: List[str], dot: Optional[str], depth: int) -> str:
    out: List[str] = []
    names = list(names)
    for _ in range(draw(st.integers(0 if depth else 1, 4 if depth == 0 else 3))):
        kinds = ["text", "out", "set"] + (["if", "range", "with", "split", "gets"]
                                          if depth < 2 else [])
        if DEFINED in names:
            kinds.append("call")
        kind = draw(st.sampled_from(kinds))
        if kind == "text":
            out.append(draw(st.sampled_from(TEXT)))
        elif kind == "out":
            out.append(_action(draw, _string(draw, names, dot)))
        elif kind == "call":
            out.append(_action(draw, f'template "d" {_string(draw, names, dot, 1)}'))
        elif kind == "gets":
            out.append(_action(draw, 'range gets "/meta-data/tags/instance/*"')
                       + _block(draw, names, "kv", depth + 1) + _action(draw, "end"))
        elif kind == "set":
            name = f"$v{len(names)}"
            out.append(_action(draw, f"{name} := {_string(draw, names, dot)}"))
            names.append(name)
        elif kind == "if":
            out.append(_action(draw, f"if {_cond(draw, names, dot)}")
                       + _block(draw, names, dot, depth + 1)
                       + (_action(draw, "else") + _block(draw, names, dot, depth + 1)
                          if draw(st.booleans()) else "")
                       + _action(draw, "end"))
        elif kind == "range":
            out.append(_action(draw, 'range getvs "/meta-data/tags/instance/*"')
                       + _block(draw, names, "str", depth + 1) + _action(draw, "end"))
        elif kind == "split":
            var = f"$e{depth}"
            out.append(_action(draw, f"range $i{depth}, {var} := split "
                                     f"{_string(draw, names, dot, 1)} \",\"")
                       + _block(draw, names + [var], dot, depth + 1)
                       + _action(draw, "end"))
        else:
            out.append(_action(draw, f"with {_string(draw, names, dot, 1)}")
                       + _block(draw, names, "str", depth + 1) + _action(draw, "end"))
    return "".join(out)


# In the names of a block: {{template "d"}} may be called (a marker, never a variable).
DEFINED = "<defined>"


@st.composite
def go_templates(draw: Draw) -> str:
    if not draw(st.booleans()):
        return _block(draw, [], None, 0)
    define = _action(draw, 'define "d"') + _block(draw, [], "str", 1) + _action(draw, "end")
    body = _block(draw, [DEFINED], None, 0)
    return define + body if draw(st.booleans()) else body + define


PROBLEM_LINE = re.compile(r"^templates/t\.tmpl:\d+: ")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(template=go_templates(), prefixed=st.booleans())
def test_go_and_migrated_jinja_agree_or_the_spot_is_reported(
        go_binary: str, template: str, prefixed: bool) -> None:
    """With prefixed, the same template under confd's prefix /meta-data (keys relative)."""
    if prefixed:
        template = template.replace('"/meta-data/', '"/')
    prefix = "/meta-data" if prefixed else ""
    want = go_render(go_binary, [(template, confd_store(FIXTURE, prefix))])[0]
    ours = migrate_and_render(template, FIXTURE, prefix=prefix,
                              keys=["/"] if prefixed else ["/meta-data/", "/dynamic/"])
    if ours.problems:
        assert all(PROBLEM_LINE.match(p) for p in ours.problems), ours.problems
        return
    assert want.err == "", f"Go refused what the migrator called clean: {want.err}"
    assert ours.err == "", ours.err
    assert ours.out == want.out
