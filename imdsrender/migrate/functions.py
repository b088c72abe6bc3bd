"""confd's template functions (other than the key readers) as Jinja.

Each entry takes the already translated arguments and returns the Jinja
expression with Go's meaning, or raises Untranslatable saying why not.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Dict, List

from .common import Untranslatable
from .jinjatext import Val, go_print, jstr, maybe_missing

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
    """Go's path.Base: the last element, trailing slashes ignored; "/" and "." for those."""
    _arity(args, 1, "base")
    s = args[0].atom()
    return Val(f'{s}.rstrip("/").split("/") | last or ("/" if {s} else ".")', "str",
               atomic=False)


def _f_dir(t: Expressions, args: List[Val]) -> Val:
    """Go's path.Dir for clean paths: everything before the last "/", "." without one."""
    _arity(args, 1, "dir")
    s = args[0].atom()
    return Val(f'({s}.rsplit("/", 1)[0] or "/") if "/" in {s} else "."', "str", atomic=False)


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
    arg_list = ", ".join(t.output(a) if a.typ == "bool" else a.expr for a in rest)
    hint = _PRINTF_VERB.split(fmt.literal, 1)[0] if verbs else None
    return Val(f"{jstr(py_fmt)} | format({arg_list})", "str", atomic=False, hint=hint)


def _f_index(t: Expressions, args: List[Val]) -> Val:
    """Go's index: a missing map key is the zero value, a list index out of range fails."""
    if len(args) < 2:
        raise Untranslatable("index needs a collection and an index")
    val = args[0]
    for idx in args[1:]:
        if val.typ in ("str", "num", "bool"):
            raise Untranslatable(f"index of a {val.typ} value")
        if val.typ in ("strlist", "list", "kvlist") or idx.typ == "num":
            typ = {"strlist": "str", "kvlist": "kv"}.get(val.typ, "any")
            val = Val(f"{val.atom()}[{idx.expr}]", typ)
        else:
            val = maybe_missing(f"{val.atom()}[{idx.expr}]")
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
    """Go's and/or return an operand (not a bool), short-circuiting, as Python's do."""
    def fn(t: Expressions, args: List[Val]) -> Val:
        if not args:
            raise Untranslatable(f"{op} needs an argument")
        if len(args) == 1:
            return args[0]
        typ = args[0].typ if all(a.typ == args[0].typ for a in args) else "any"
        return Val(f" {op} ".join(a.atom() for a in args), typ, atomic=False)
    return fn


def _f_not(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 1, "not")
    return Val(f"not {args[0].atom()}", "bool", atomic=False)


def _is_string(val: Val) -> str:
    """Go's "is this operand a string" as a Jinja test: "" no, "1" yes, else an expression."""
    if val.typ == "str":
        return "1"
    if val.typ == "any":
        return f"{val.atom()} is string"
    return ""


def _space(a: Val, b: Val) -> str:
    """Go's fmt.Sprint puts a space between operands when neither is a string."""
    tests = [_is_string(a), _is_string(b)]
    if "1" in tests:
        return ""
    runtime = [test for test in tests if test]
    if not runtime:
        return '" "'
    return f'(" " if not ({" or ".join(runtime)}) else "")'


def _printed(t: Expressions, val: Val) -> str:
    """An operand of print as Go's fmt formats it (a missing map value is nil there)."""
    if val.typ == "any":
        return f"({go_print(val, '<nil>')})"
    return f"({t.output(val)})"


def _f_print(t: Expressions, args: List[Val]) -> Val:
    if len(args) == 1 and args[0].typ == "str":
        return args[0]
    if not args:
        return Val('""', "str", literal="")
    parts = [_printed(t, args[0])]
    for prev, cur in zip(args, args[1:]):
        space = _space(prev, cur)
        parts.extend(([space] if space else []) + [_printed(t, cur)])
    if len(parts) == 1:  # a number or a bool, as text
        return Val(f"{parts[0]} | string", "str", atomic=False)
    return Val(" ~ ".join(parts), "str", atomic=False, hint=args[0].literal)


def _f_println(t: Expressions, args: List[Val]) -> Val:
    """Go's fmt.Sprintln: always a space between operands, and a newline."""
    parts = [_printed(t, a) for a in args]
    return Val(" ~ ".join(parts[:1] + [f'" " ~ {p}' for p in parts[1:]] + ['"\\n"']),
               "str", atomic=False)


def _f_getenv(t: Expressions, args: List[Val]) -> Val:
    """confd's getenv: the variable, or the default (or "") when unset or empty."""
    if len(args) not in (1, 2):
        raise Untranslatable(f"getenv takes a name and at most one default, got {len(args)}")
    return Val(f"getenv({', '.join(a.expr for a in args)})", "str")


def _f_trim_suffix(t: Expressions, args: List[Val]) -> Val:
    _arity(args, 2, "trimSuffix")
    s, suffix = args
    if suffix.literal is None:
        raise Untranslatable("trimSuffix with a computed suffix")
    if not suffix.literal:
        return s
    return Val(f"{s.atom()}[:-{len(suffix.literal)}] if {s.atom()}.endswith({suffix.expr}) "
               f"else {s.atom()}", "str", atomic=False)


def _f_arith(op: str) -> Callable[[Expressions, List[Val]], Val]:
    """confd's add/sub/mul on ints (div and mod round differently in Go: not translated)."""
    def fn(t: Expressions, args: List[Val]) -> Val:
        _arity(args, 2, op)
        return Val(f"{args[0].atom()} {op} {args[1].atom()}", "num", atomic=False)
    return fn


_DNS_HINT = ("resolving names at render time is not supported; let the service resolve "
             "the name, or put the address in a tag")
_JINJA_HINT = "rewrite it with Jinja: {}"
# Why a confd function has no translation, and what to do instead.
HINTS: Dict[str, str] = {
    "lookupIP": _DNS_HINT, "lookupIPV4": _DNS_HINT, "lookupIPV6": _DNS_HINT,
    "lookupSRV": _DNS_HINT,
    "datetime": "output must depend on metadata only (a timestamp rewrites the file on "
                "every run); drop it",
    "fileExists": "templates read metadata only; test files in check_cmd or the service",
    "hostname": 'use getv("/meta-data/local-hostname")',
    "get": "use getv for the value; the key is the literal you passed",
    "cget": "encrypted values are not supported; let the service read the secret",
    "cgetv": "encrypted values are not supported; let the service read the secret",
    "cgets": "encrypted values are not supported; let the service read the secret",
    "cgetvs": "encrypted values are not supported; let the service read the secret",
    "map": _JINJA_HINT.format("{% set m = {\"k\": v} %}"),
    "seq": _JINJA_HINT.format("range(a, b + 1)"),
    "reverse": _JINJA_HINT.format("x | reverse | list"),
    "atoi": _JINJA_HINT.format("x | int (which gives 0 where Go fails)"),
    "parseBool": _JINJA_HINT.format('x in ("1", "t", "T", "true", "TRUE", "True")'),
    "div": _JINJA_HINT.format("a // b (Python rounds down, Go toward zero)"),
    "mod": _JINJA_HINT.format("a % b (Python's sign follows b, Go's a)"),
    "sortByLength": _JINJA_HINT.format("x | sort(attribute=\"__len__\")"),
    "sortKVByLength": _JINJA_HINT.format("x | sort(attribute=\"key.__len__\")"),
    "include": "put the shared part in its own template and {% include %} it",
    "slice": _JINJA_HINT.format("x[a:b]"),
    "html": _JINJA_HINT.format("x | escape (entities may differ)"),
    "js": "Go's JavaScript escaping has no Jinja equivalent; escape in the service",
    "urlquery": _JINJA_HINT.format("x | urlencode (may differ for some characters)"),
    "call": "calling a function value is not supported",
}
UNKNOWN_HINT = ("not a confd function (a fork's or plugin's own, e.g. calico's hashToIPv4); "
                "rewrite the spot with Jinja expressions and filters")


FUNCTIONS: Dict[str, Callable[[Expressions, List[Val]], Val]] = {
    "toUpper": _f_filter("upper"), "toLower": _f_filter("lower"),
    "base64Encode": _f_filter("b64encode"), "base64Decode": _f_filter("b64decode"),
    "json": _f_json, "jsonArray": _f_json_array, "split": _f_split, "join": _f_join,
    "base": _f_base, "dir": _f_dir, "replace": _f_replace, "contains": _f_contains,
    "printf": _f_printf, "index": _f_index, "len": _f_len, "not": _f_not,
    "and": _f_logic("and"), "or": _f_logic("or"), "print": _f_print, "println": _f_println,
    "getenv": _f_getenv, "trimSuffix": _f_trim_suffix, "add": _f_arith("+"),
    "sub": _f_arith("-"), "mul": _f_arith("*"),
    "eq": _f_compare("=="), "ne": _f_compare("!="), "lt": _f_compare("<"),
    "le": _f_compare("<="), "gt": _f_compare(">"), "ge": _f_compare(">="),
}
