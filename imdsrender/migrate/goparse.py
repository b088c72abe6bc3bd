"""Go's pipeline grammar: one action's tokens into commands and operands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from .common import Untranslatable
from .golex import Tok, go_unquote


@dataclass(frozen=True)
class Node:
    kind: str  # str num bool nil dot var field ident pipe chain
    value: Any = None  # literal value / name / Pipe
    fields: Tuple[str, ...] = ()  # field chain after the term


@dataclass(frozen=True)
class Pipe:
    decl: Tuple[str, ...]
    assign: bool  # "=" rather than ":="
    cmds: Tuple[Tuple[Node, ...], ...]



class Parser:
    """Recursive descent over one action's tokens (Go's pipeline grammar)."""

    def __init__(self, tokens: Sequence[Tok]) -> None:
        self.toks = list(tokens)
        self.i = 0

    def peek(self, offset: int = 0) -> Optional[Tok]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise Untranslatable("unexpected end of action")
        self.i += 1
        return tok

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def pipeline(self, allow_decl: bool = True, two_vars: bool = False) -> Pipe:
        decl: List[str] = []
        assign = False
        if allow_decl and self._decl_ahead(two_vars):
            decl.append(self.take().text)
            comma = self.peek()
            if comma is not None and comma.text == ",":
                self.take()
                decl.append(self.take().text)
            assign = self.take().text == "="
        cmds: List[Tuple[Node, ...]] = []
        while True:
            cmds.append(self.command())
            tok = self.peek()
            if tok is None or tok.text == ")":
                break
            if tok.text != "|":
                raise Untranslatable(f"unexpected {tok.text!r}")
            self.take()
        return Pipe(tuple(decl), assign, tuple(cmds))

    def _decl_ahead(self, two_vars: bool) -> bool:
        a, b = self.peek(), self.peek(1)
        if a is None or a.kind != "var" or b is None:
            return False
        if b.text in (":=", "="):
            return True
        c, d = self.peek(2), self.peek(3)
        return (two_vars and b.text == "," and c is not None and c.kind == "var"
                and d is not None and d.text == ":=")

    def command(self) -> Tuple[Node, ...]:
        args: List[Node] = []
        while True:
            tok = self.peek()
            if tok is None or tok.text in ("|", ")"):
                break
            args.append(self.operand())
        if not args:
            raise Untranslatable("empty command")
        return tuple(args)

    def operand(self) -> Node:
        node = self.term()
        fields: List[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "field" or not tok.adjacent:
                break
            fields.append(self.take().text[1:])
        if fields:
            if node.kind in ("field", "var", "dot"):
                return Node(node.kind, node.value, node.fields + tuple(fields))
            return Node("chain", node, tuple(fields))
        return node

    def term(self) -> Node:
        tok = self.take()
        if tok.kind in ("str", "raw"):
            return Node("str", go_unquote(tok))
        if tok.kind == "num":
            return Node("num", tok.text)
        if tok.kind == "var":
            return Node("var", tok.text)
        if tok.kind == "field":
            return Node("field", None, (tok.text[1:],))
        if tok.kind == "dot":
            return Node("dot")
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return Node("bool", tok.text == "true")
            if tok.text == "nil":
                return Node("nil")
            return Node("ident", tok.text)
        if tok.text == "(":
            inner = self.pipeline(allow_decl=False)
            if self.take().text != ")":
                raise Untranslatable("unbalanced parentheses")
            return Node("pipe", inner)
        raise Untranslatable(f"unexpected {tok.text!r}")
