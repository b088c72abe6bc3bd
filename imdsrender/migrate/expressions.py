"""Go expressions (pipelines, calls, fields, variables) as Jinja expressions."""

from __future__ import annotations

from typing import Dict, FrozenSet, List, Optional, Sequence, Set, Tuple

from ..keys import TEMPLATE_FUNCTIONS
from .common import Untranslatable, full_key
from .functions import FUNCTIONS, HINTS, UNKNOWN_HINT
from .goparse import Node, Pipe
from .jinjatext import Val, go_print, jstr, maybe_missing, number
from .scope import Scope

_DICT_ATTRS = set(dir(dict)) | set(dir(str))
# How the migrator reads each key function's argument, from the one table.
KEY_FUNCTIONS = {f.name: {"key": "leaf", "pattern": "glob", "directory": "dir"}[f.kind]
                 for f in TEMPLATE_FUNCTIONS.values() if f.name != "json"}


class Expressions(Scope):
    """One pass over a lexed template, emitting Jinja as it goes.

    Two passes are made: the first learns which variables are assigned in a
    loop (those become ``namespace`` objects, the only Jinja state that
    survives a loop iteration) and which range index variables are used.
    """

    def __init__(self, name: str, prefix: str, ns_decls: Set[int], used_decls: Set[int],
                 dirs: FrozenSet[str] = frozenset(),
                 macro_dots: Optional[Dict[str, str]] = None) -> None:
        super().__init__()
        self.name = name
        self.prefix = prefix
        # The full IMDS path confd's prefix stands for ("/meta-data/app"):
        # confd's store, and so .Key, holds keys relative to it.
        self.root = full_key(prefix, "/").rstrip("/") if prefix.strip("/") else ""
        self.dirs = dirs  # literal keys known to be directories (exists() is false on them)
        # {{define}}d templates: Go name -> macro name, the type of dot each is
        # called with (learnt in the first pass), and where they are called.
        self.macro_names: Dict[str, str] = {}
        self.macro_dots: Dict[str, str] = dict(macro_dots or {})
        self.called: Dict[str, int] = {}
        self.defined: Set[str] = set()
        self.macros: List[str] = []
        self.outer: List[List[str]] = []
        self.ns_decls = ns_decls
        self.used_decls_known = used_decls
        self.out: List[str] = []
        self.problems: List[str] = []
        self.literal_keys: List[Tuple[str, str, int]] = []
        self.found_ns: Set[int] = set()
        self.used: Set[int] = set()
        self.line = 0

    # -- problems

    def problem(self, line: int, what: str) -> None:
        self.problems.append(f"{self.name}:{line}: {what}")

    # -- keys

    def key_arg(self, val: Val, kind: str) -> Val:
        """A key argument with the prefix folded in (at runtime when not literal)."""
        if val.literal is not None:
            key = val.literal
            if kind == "dir" and not key.endswith("/"):
                key += "/"
            full = full_key(self.prefix, key)
            self.literal_keys.append((full, kind, self.line))
            return Val(jstr(full), "str", literal=full)
        if val.hint:  # reads at or below the literal start of a key built at run time
            self.literal_keys.append((full_key(self.prefix, val.hint), "prefix", self.line))
        else:
            self.literal_keys.append((full_key(self.prefix, "/"), "unknown", self.line))
        if self.prefix == "/":
            return val
        return Val(f"{jstr(self.prefix)} ~ {val.atom()}", "str", atomic=False)

    # -- expressions

    def pipe(self, pipe: Pipe) -> Val:
        val: Optional[Val] = None
        for cmd in pipe.cmds:
            val = self.command(cmd, val)
        assert val is not None
        return val

    def command(self, args: Sequence[Node], piped: Optional[Val]) -> Val:
        head = args[0]
        if head.kind == "ident":
            return self.call(head.value, list(args[1:]), piped)
        if len(args) > 1 or piped is not None:
            raise Untranslatable("a value cannot take arguments")
        return self.value(head)

    def value(self, node: Node) -> Val:
        if node.kind == "str":
            return Val(jstr(node.value), "str", literal=node.value)
        if node.kind == "num":
            text = number(node.value)
            return Val(text, "num", atomic=not text.startswith(("-", "+")))
        if node.kind == "bool":
            return Val("true" if node.value else "false", "bool")
        if node.kind == "nil":
            raise Untranslatable("nil")
        if node.kind == "pipe":
            return self.pipe(node.value)
        if node.kind == "ident":
            return self.call(node.value, [], None)
        if node.kind == "chain":
            return self.fields(self.value(node.value), node.fields)
        if node.kind == "var":
            return self.fields(self.var(node.value), node.fields)
        # dot or .Field: relative to the current dot
        dot = self.dot()
        if dot is None:
            raise Untranslatable("confd's template data ('.' outside range/with) is empty")
        return self.fields(dot, node.fields)

    def var(self, go_name: str) -> Val:
        if go_name == "$":
            raise Untranslatable("'$' (confd's template data) is empty")
        binding = self.lookup(go_name)
        if binding is None:
            raise Untranslatable(f"undefined variable {go_name}")
        self.used.add(binding.decl_id)
        if binding.decl_id in self.ns_decls:
            return Val(f"{binding.name}.v", binding.typ, hint=binding.hint)
        return Val(binding.name, binding.typ, hint=binding.hint)

    def fields(self, val: Val, names: Sequence[str]) -> Val:
        for name in names:
            if val.typ == "kv" and name == "Key":
                if not self.root:
                    val = Val(f"{val.atom()}.key", "str")
                else:  # confd's .Key is relative to the prefix
                    val = Val(f"{val.atom()}.key[{len(self.root)}:]", "str")
            elif val.typ == "kv" and name == "Value":
                val = Val(f"{val.atom()}.value", "str")
            elif val.typ in ("map", "any"):
                if name in _DICT_ATTRS or not name.isidentifier():
                    val = maybe_missing(f"{val.atom()}[{jstr(name)}]")
                else:
                    val = maybe_missing(f"{val.atom()}.{name}")
            else:
                raise Untranslatable(f"field .{name} of a {val.typ} value")
        return val

    def call(self, fname: str, nodes: List[Node], piped: Optional[Val]) -> Val:
        args = [self.value(n) for n in nodes]
        if piped is not None:
            args.append(piped)
        if fname in KEY_FUNCTIONS and args:
            kind = "exists" if fname == "exists" else KEY_FUNCTIONS[fname]
            return self.key_call(fname, self.key_arg(args[0], kind), args[1:])
        handler = FUNCTIONS.get(fname)
        if handler is None:
            raise Untranslatable(f"function {fname!r} has no imdsrender equivalent; "
                                 + HINTS.get(fname, UNKNOWN_HINT))
        return handler(self, args)

    def key_call(self, fname: str, key: Val, rest: List[Val]) -> Val:
        if fname == "getv":
            if len(rest) > 1:
                raise Untranslatable("getv takes a key and at most one default")
            args = ", ".join([key.expr] + [r.expr for r in rest])
            return Val(f"getv({args})", "str")
        if rest:
            raise Untranslatable(f"{fname} takes one argument")
        if fname == "exists":
            if key.literal is not None and key.literal.rstrip("/") in self.dirs:
                return Val("false", "bool")  # confd's exists() is true for values only
            return Val(f"exists({key.expr})", "bool")
        if fname == "gets":
            return Val(f"gets({key.expr})", "kvlist")
        if fname == "getvs":  # sorted by value, as confd's are
            return Val(f"getvs({key.expr})", "strlist")
        return Val(f"{fname}({key.expr})", "strlist")

    def output(self, val: Val) -> str:
        """How Go prints a value, as a Jinja expression."""
        if val.typ == "bool":
            return f'"true" if {val.atom()} else "false"'
        if val.typ == "strlist":
            return f'"[" ~ ({val.expr} | join(" ")) ~ "]"'
        if val.typ in ("kv", "kvlist", "map", "list", "nil"):
            raise Untranslatable(f"printing a {val.typ} value (Go's formatting of it differs)")
        if val.typ == "any":
            return go_print(val, "<no value>")
        return val.expr

