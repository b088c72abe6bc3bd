"""Jinja text the translator writes: values, string literals, inert literal text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional

from .common import Untranslatable


@dataclass(frozen=True)
class Val:
    """A translated Go value: Jinja expression text and what Go type it has."""

    expr: str
    typ: str  # str bool num nil strlist kvlist kv map list any
    atomic: bool = True  # can take a filter, attribute or subscript as is
    literal: Optional[str] = None  # the Go string, for literal strings
    # A map field or index that may be missing: Go gives its zero value (an
    # empty, false value; "<no value>" when printed).  expr already defaults
    # it to none; raw is the plain access, for printing it Go's way.
    raw: Optional[str] = None
    # For a key built at run time: the literal start of it (printf's format
    # up to the first verb), which tells directory keys apart; "" unknown.
    hint: Optional[str] = None

    def atom(self) -> str:
        return self.expr if self.atomic else f"({self.expr})"


def maybe_missing(access: str) -> Val:
    """A map field or index: Go's zero value (none here) when the key is missing."""
    return Val(f"{access} | default(none)", "any", atomic=False, raw=access)


def go_print(val: Val, missing: str) -> str:
    """A value of unknown type (a JSON field, an index) printed as Go's fmt prints it.

    A missing map key or JSON null prints *missing* (Go prints "<no value>"
    for an action, "<nil>" for an argument of print), booleans in lower
    case; strings and numbers as they are.
    """
    v = val.raw if val.raw is not None else val.atom()
    absent = f"{v} is undefined or " if val.raw is not None else ""
    return (f'"{missing}" if {absent}{v} is none else ("true" if {v} else "false") '
            f"if {v} is boolean else {v}")


def jstr(value: str) -> str:
    """A Jinja string literal for *value* (Jinja unescapes with unicode-escape)."""
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127 or (ch.isspace() and ch != " "):
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def number(text: str) -> str:
    """A Go number literal as Jinja reads it (Jinja wants digits before a ".").

    Go reads ``010`` as octal and prints an integral constant such as
    ``1e3`` or ``1.0`` as an integer; so does the translation.
    """
    text = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?0[0-7]+", text):
            return str(int(text, 8))
        if re.fullmatch(r"[+-]?(0[xXoObB][0-9a-fA-F]+|\d+)", text):
            return str(int(text, 0))
        value = float(text)
        return str(int(value)) if value.is_integer() else repr(value)
    except (ValueError, OverflowError):
        raise Untranslatable(f"invalid number {text}") from None


def one_line(text: str) -> str:
    return " ".join(text.split())


def comment_safe(text: str) -> str:
    return text.replace("#}", "# }").replace("{#", "{ #")


def escape_text(text: str, last: bool) -> str:
    """Literal text made inert for Jinja and safe from its rewriting.

    ``{{``, ``{%`` and ``{#`` (and a ``{`` right before a tag we emit) are
    written as expressions; so is ``\r`` (Jinja normalises newlines) and
    whitespace at either end that Go's trim markers keep but Python's
    ``str.strip`` (which Jinja's ``-`` uses) would eat, such as U+00A0.
    """
    pieces: List[str] = []
    end = len(text) - 1
    for i, ch in enumerate(text):
        if ch == "\r" or (ch.isspace() and ch not in " \t\n" and i in (0, end)):
            pieces.append("{{ " + jstr(ch) + " }}")
        else:
            pieces.append(ch)
    pieces.append("" if last else "{")  # what follows: nothing, or one of our tags
    out = [('{{ "{" }}' if piece == "{" and pieces[i + 1][:1] in ("{", "%", "#") else piece)
           for i, piece in enumerate(pieces[:-1])]
    return "".join(out)


# -- functions (name -> translator over already translated arguments)
