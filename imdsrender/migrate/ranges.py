"""Go's range: over lists, gets pairs, JSON objects (by key) and values of unknown type."""

from __future__ import annotations

from typing import List, Tuple

from .common import Untranslatable
from .expressions import Expressions
from .golex import Action
from .goparse import Parser
from .jinjatext import Val
from .scope import Binding, Frame


def test_expr(val: Val) -> str:
    """An expression where Jinja takes no bare ``a if b else c`` (if, elif, for ... in)."""
    return f"({val.expr})" if " if " in val.expr else val.expr


class Ranges(Expressions):
    """{{range}}: the loop head and the variables and dot it binds."""

    def range_tags(self, item: Action, frame: Frame) -> List[Tuple[str, str]]:
        parser = Parser(item.tokens[1:])
        pipe = parser.pipeline(two_vars=True)
        if not parser.at_end():
            raise Untranslatable("unbalanced parentheses")
        if pipe.assign:
            raise Untranslatable("range with '=' assignment")
        # evaluate the source outside the loop's own scope
        self.frames.pop()
        try:
            src = self.pipe(pipe)
        finally:
            self.frames.append(frame)
        elem = {"kvlist": "kv", "strlist": "str"}.get(src.typ, "any")
        base = {"kvlist": "kv", "strlist": "value", "map": "value"}.get(src.typ, "item")
        if src.typ in ("str", "bool", "num", "kv"):
            raise Untranslatable(f"range over a {src.typ} value")
        extra: List[Tuple[str, str]] = []
        if len(pipe.decl) == 2:
            index_go, elem_go = pipe.decl
        elif len(pipe.decl) == 1:
            index_go, elem_go = "", pipe.decl[0]
        else:
            index_go, elem_go = "", ""
        if src.typ == "map":
            key_name = self.fresh(index_go[1:] if index_go else "key")
            if index_go:
                frame.vars[index_go] = Binding(key_name, "str", self.decl_counter,
                                                self.loop_depth())
                self.decl_counter += 1
            elem_name = self.fresh(elem_go[1:] if elem_go else base)
            head = f"for {key_name}, {elem_name} in {src.atom()} | dictsort(true)"
        elif src.typ == "any":  # maybe a JSON object: Go ranges over its values, by key
            x, item_name = src.atom(), self.fresh("item")
            frame.vars["$<range item>"] = Binding(item_name, "any", -1, self.loop_depth())
            head = f"for {item_name} in ({x} | dictsort(true) if {x} is mapping else {x})"
            elem_name = self.fresh(elem_go[1:] if elem_go else "value")
            extra.append(("stmt", f"set {elem_name} = {item_name}[1] if {x} is mapping "
                                  f"else {item_name}"))
            if index_go:
                index_b = self.declare(index_go, "any")
                extra.append(("stmt", f"set {index_b.name} = {item_name}[0] if {x} is mapping "
                                      "else loop.index0"))
        else:
            elem_name = self.fresh(elem_go[1:] if elem_go else base)
            head = f"for {elem_name} in {test_expr(src)}"
            if index_go:
                index_b = self.declare(index_go, "num")
                if index_b.decl_id in self.used_decls_known:
                    extra.append(("stmt", f"set {index_b.name} = loop.index0"))
        if elem_go:
            frame.vars[elem_go] = Binding(elem_name, elem, self.decl_counter, self.loop_depth())
            self.decl_counter += 1
        else:
            frame.vars[f"$<range {elem_name}>"] = Binding(elem_name, elem, -1, self.loop_depth())
        frame.dot = Val(elem_name, elem)
        return [("stmt", head)] + extra

