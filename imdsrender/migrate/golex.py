"""Go's template lexer: text, actions and comments, with Go's trim rules.

Trim markers (``{{-``/``-}}``) are applied to the neighbouring text here,
exactly as Go's lexer applies them (ASCII space, tab, CR, LF only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Tuple, Union

from .common import Untranslatable


@dataclass(frozen=True)
class Tok:
    kind: str  # str raw char num op var field dot ident
    text: str
    adjacent: bool  # no space between this token and the previous one


@dataclass(frozen=True)
class Text:
    text: str
    line: int


@dataclass(frozen=True)
class Action:
    tokens: Tuple[Tok, ...]
    source: str  # the action as written, for messages
    line: int
    ltrim: bool
    rtrim: bool


@dataclass(frozen=True)
class Comment:
    text: str
    line: int
    ltrim: bool
    rtrim: bool


Item = Union[Text, Action, Comment]

_SPACE = " \t\r\n"
_TOKEN_RE = re.compile(r"""
    (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<char>'(?:[^'\\\n]|\\.)+')
  | (?P<op>:=|[=|(),])
  | (?P<var>\$[^\W]*)
  | (?P<field>\.[^\W\d]\w*)
  | (?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?))
  | (?P<dot>\.)
  | (?P<ident>[^\W\d]\w*)
""", re.VERBOSE)


class LexError(Exception):
    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


def lex(text: str) -> List[Item]:
    """Split a Go template into text, actions and comments (Go's lexer rules).

    Trim markers are applied here, to the neighbouring text, exactly as Go's
    lexer does; the flags are kept so the output can carry them too.
    """
    items: List[Item] = []
    pos, line, pending_rtrim = 0, 1, False
    while pos <= len(text):
        start = text.find("{{", pos)
        chunk = text[pos:] if start < 0 else text[pos:start]
        ltrim = start >= 0 and text.startswith("-", start + 2) and \
            start + 3 < len(text) and text[start + 3] in _SPACE
        if pending_rtrim:
            chunk_line = line + chunk.count("\n") - chunk.lstrip(_SPACE).count("\n")
            chunk = chunk.lstrip(_SPACE)
        else:
            chunk_line = line
        line += text[pos:len(text) if start < 0 else start].count("\n")
        if ltrim:
            chunk = chunk.rstrip(_SPACE)
        if chunk:
            items.append(Text(chunk, chunk_line))
        if start < 0:
            break
        pos, item = _lex_action(text, start, line, ltrim)
        pending_rtrim = item.rtrim
        line += text[start:pos].count("\n")
        items.append(item)
    return items


def _lex_action(text: str, start: int, line: int,
                ltrim: bool) -> Tuple[int, Union[Action, Comment]]:
    pos = start + (4 if ltrim else 2)
    if text.startswith("/*", pos):
        end = text.find("*/", pos + 2)
        if end < 0:
            raise LexError(line, "unclosed comment")
        after = end + 2
        rtrim = False
        m = re.compile(r"[ \t\r\n]-}}").match(text, after)
        if m:
            rtrim, after = True, m.end()
        elif text.startswith("}}", after):
            after += 2
        else:
            raise LexError(line, "comment ends before closing delimiter")
        return after, Comment(text[pos + 2:end], line, ltrim, rtrim)
    tokens: List[Tok] = []
    adjacent = True
    while True:
        if pos >= len(text):
            raise LexError(line, "unclosed action")
        m = re.compile(r"[ \t\r\n]+-}}").match(text, pos)
        if m:
            return m.end(), Action(tuple(tokens), text[start:m.end()], line, ltrim, True)
        if text.startswith("}}", pos):
            return pos + 2, Action(tuple(tokens), text[start:pos + 2], line, ltrim, False)
        if text[pos] in _SPACE:
            pos += 1
            adjacent = False
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise LexError(line, f"unexpected {text[pos]!r} in action")
        kind = m.lastgroup or "?"
        tokens.append(Tok(kind, m.group(), adjacent))
        adjacent = True
        pos = m.end()


def go_unquote(tok: Tok) -> str:
    """The value of a Go string literal (interpreted or raw)."""
    try:
        return _unquote(tok)
    except (ValueError, IndexError, OverflowError):
        raise Untranslatable(f"invalid string literal {tok.text}") from None


def _unquote(tok: Tok) -> str:
    if tok.kind == "raw":
        return tok.text[1:-1].replace("\r", "")
    body = tok.text[1:-1]
    out: List[str] = []
    i = 0
    simple = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
              "v": "\v", "\\": "\\", '"': '"', "'": "'"}
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            out.append(chr(int(body[i + 2:i + 2 + width], 16)))
            i += 2 + width
        else:  # octal \ooo
            out.append(chr(int(body[i + 1:i + 4], 8)))
            i += 4
    return "".join(out)
