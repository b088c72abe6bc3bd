"""confd's template functions (other than the key readers) as Jinja.

Each entry takes the already translated arguments and returns the Jinja
expression with Go's meaning, or raises Untranslatable saying why not.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Dict, List

from .common import Untranslatable
from .jinjatext import Val, jstr

if TYPE_CHECKING:
    from .expressions import Expressions

_PRINTF_VERB = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?(.)")


def _arity(args: List[Val], n: int, fname: str) -> None:
    if len(args) != n:
        raise Untranslatable(f"{fname} takes {n} argument(s), got {len(args)}")


def _f_filter(name: str, typ: str = "str") -> Callable[[Expressions, List[Val]], Val]:
    def fn(t: Expressions, args: List[Val]) -> Val:
        _arity(args, 1, name)
        return Val(f"{args[0].atom()} | {name}", typ, atomic=False)
    return fn


def _f_json(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 1, "json")
    return Val(f"{args[0].atom()} | fromjson", "map", atomic=False)


def _f_json_array(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 1, "jsonArray")
    return Val(f"{args[0].atom()} | fromjson", "list", atomic=False)


def _f_split(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 2, "split")
    if args[1].literal == "":
        raise Untranslatable("split on an empty separator")
    return Val(f"{args[0].atom()}.split({args[1].expr})", "strlist")


def _f_join(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 2, "join")
    return Val(f"{args[0].atom()} | join({args[1].expr})", "str", atomic=False)


def _f_base(t: Expressions, args: List[Val]) -> Val:
    """Go's path.Base for non-empty paths: last element, trailing slashes ignored."""
    _arity(args, 1, "base")
    return Val(f'{args[0].atom()}.rstrip("/").split("/") | last', "str", atomic=False)


def _f_dir(t: Expressions, args: List[Val]) -> Val:
    """Go's path.Dir for absolute paths: everything before the last "/"."""
    _arity(args, 1, "dir")
    return Val(f'{args[0].atom()}.rsplit("/", 1)[0] or "/"', "str", atomic=False)


def _f_replace(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 4, "replace")
    s, old, new, n = args
    if n.expr == "-1":
        return Val(f"{s.atom()} | replace({old.expr}, {new.expr})", "str", atomic=False)
    return Val(f"{s.atom()} | replace({old.expr}, {new.expr}, {n.expr})", "str", atomic=False)


def _f_contains(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 2, "contains")
    return Val(f"{args[1].atom()} in {args[0].atom()}", "bool", atomic=False)


def _f_printf(t: Expressions, args: List[Val]) -> Val:
    if not args:
        raise Untranslatable("printf without a format")
    fmt, rest = args[0], args[1:]
    if fmt.literal is None:
        raise Untranslatable("printf with a computed format")
    verbs = _PRINTF_VERB.findall(fmt.literal)
    if any(v[3] not in "sdvf%" for v in verbs):
        raise Untranslatable("printf verb other than %s %d %v %f %%")
    if sum(1 for v in verbs if v[3] != "%") != len(rest):
        raise Untranslatable("printf arguments do not match the format")
    py_fmt = _PRINTF_VERB.sub(
        lambda m: m.group(0)[:-1] + ("s" if m.group(4) == "v" else m.group(4)), fmt.literal)
    if not rest:
        return Val(jstr(py_fmt.replace("%%", "%")), "str", literal=py_fmt.replace("%%", "%"))
    arg_list = ", ".join(a.expr for a in rest)
    return Val(f"{jstr(py_fmt)} | format({arg_list})", "str", atomic=False)


def _f_index(t: Expressions, args: List[Val]) -> Val:
    if len(args) < 2:
        raise Untranslatable("index needs a collection and an index")
    val = args[0]
    for idx in args[1:]:
        typ = "str" if val.typ == "strlist" else "any"
        val = Val(f"{val.atom()}[{idx.expr}]", typ)
    return val


def _f_len(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 1, "len")
    return Val(f"{args[0].atom()} | length", "num", atomic=False)


def _f_compare(op: str) -> Callable[[Expressions, List[Val]], Val]:
    def fn(t: Expressions, args: List[Val]) -> Val:
        if len(args) < 2 or (op != "==" and len(args) != 2):
            raise Untranslatable(f"comparison {op} with {len(args)} arguments")
        first = args[0].atom()
        parts = [f"{first} {op} {a.atom()}" for a in args[1:]]
        return Val(" or ".join(parts), "bool", atomic=False)
    return fn


def _f_logic(op: str) -> Callable[[Expressions, List[Val]], Val]:
    def fn(t: Expressions, args: List[Val]) -> Val:
        if len(args) < 2:
            raise Untranslatable(f"{op} needs two or more arguments")
        typ = "bool" if all(a.typ == "bool" for a in args) else "any"
        return Val(f" {op} ".join(a.atom() for a in args), typ, atomic=False)
    return fn


def _f_not(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 1, "not")
    return Val(f"not {args[0].atom()}", "bool", atomic=False)


def _f_print(t: Expressions, args: List[Val]) -> Val:
    if len(args) != 1:
        raise Untranslatable("print with several arguments")
    return args[0]


FUNCTIONS: Dict[str, Callable[[Expressions, List[Val]], Val]] = {
    "toUpper": _f_filter("upper"), "toLower": _f_filter("lower"),
    "base64Encode": _f_filter("b64encode"), "base64Decode": _f_filter("b64decode"),
    "json": _f_json, "jsonArray": _f_json_array, "split": _f_split, "join": _f_join,
    "base": _f_base, "dir": _f_dir, "replace": _f_replace, "contains": _f_contains,
    "printf": _f_printf, "index": _f_index, "len": _f_len, "not": _f_not,
    "and": _f_logic("and"), "or": _f_logic("or"), "print": _f_print,
    "eq": _f_compare("=="), "ne": _f_compare("!="), "lt": _f_compare("<"),
    "le": _f_compare("<="), "gt": _f_compare(">"), "ge": _f_compare(">="),
}
