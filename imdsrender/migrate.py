"""confd -> imdsrender: TOML template resources + Go templates -> YAML + Jinja2.

``imdsrender migrate-confd SRC OUT`` reads a confd confdir (``conf.d/*.toml``,
``templates/``, optionally ``confd.toml`` for the global ``prefix``) and
writes an imdsrender confdir.  Nothing is ever converted in place.

Go templates are translated by a small lexer and parser for Go template
actions, not by pattern substitution: every action is parsed into a pipeline
and re-emitted as the Jinja2 expression or statement with the same meaning
under confd's semantics (keys relative to the prefix, ``getvs`` sorted by
value, ``{{-``/``-}}`` trimming, Go's scoping of ``$variables``).  A
construct with no safe translation is marked in the output with a
``{# imdsrender-migrate: untranslated: ... #}`` comment followed by a
reference to an undefined name (so the template fails loudly instead of
rendering something subtly different), and reported as ``file:line``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Union,
)

from .errors import UsageError
from .keys import ROOTS, TEMPLATE_FUNCTIONS, glob_match, glob_root

log = logging.getLogger(__name__)

MARKER = "imdsrender-migrate: untranslated"
# Referenced where an untranslated expression stood: undefined on purpose, so
# StrictUndefined stops the render instead of silently writing a gap.
PLACEHOLDER = "imdsrender_migrate_untranslated"

# IMDS paths that are directories although confd users list them without the
# trailing "/" (confd guessed directory-ness from newlines in the body; we
# must decide up front).  Matched segment by segment; "*" is one segment.
_KNOWN_DIRS = (
    "/meta-data", "/meta-data/block-device-mapping", "/meta-data/events",
    "/meta-data/events/maintenance", "/meta-data/events/recommendations",
    "/meta-data/iam", "/meta-data/iam/security-credentials",
    "/meta-data/identity-credentials", "/meta-data/identity-credentials/ec2",
    "/meta-data/identity-credentials/ec2/security-credentials", "/meta-data/metrics",
    "/meta-data/network", "/meta-data/network/interfaces",
    "/meta-data/network/interfaces/macs", "/meta-data/network/interfaces/macs/*",
    "/meta-data/network/interfaces/macs/*/ipv4-associations", "/meta-data/placement",
    "/meta-data/public-keys", "/meta-data/public-keys/*", "/meta-data/services",
    "/meta-data/spot", "/meta-data/tags", "/meta-data/tags/instance", "/dynamic",
    "/dynamic/instance-identity", "/dynamic/fws",
)

# Resource fields translated one to one (confd name -> imdsrender name).
_RESOURCE_FIELDS = ("src", "dest", "keys", "mode", "uid", "gid", "owner", "group",
                    "check_cmd", "reload_cmd", "check_cmd_timeout", "reload_cmd_timeout",
                    "prefix")


class MigrationError(UsageError):
    """The migration cannot start or read its input (exit 2)."""


@dataclass(frozen=True)
class MigrationReport:
    """What ``migrate_confdir`` wrote and what it could not translate."""

    written: Tuple[str, ...]  # paths relative to OUT
    problems: Tuple[str, ...]  # "conf.d/x.toml:LINE: ..." / "templates/x.tmpl:LINE: ..."


# --------------------------------------------------------------------------
# Keys and prefixes


def fold_prefix(global_prefix: str = "", resource_prefix: str = "") -> str:
    """confd's effective prefix: global and resource prefix concatenated.

    This is the confd 0.40 (the imds backend's) rule; "/" means no prefix.
    """
    parts = [p.strip("/") for p in (global_prefix or "", resource_prefix or "")]
    joined = "/".join(p for p in parts if p)
    return "/" + joined


def full_key(prefix: str, key: str) -> str:
    """The IMDS path a confd key names under *prefix*.

    confd joins prefix and key (``path.Join``); a bare path means
    ``/meta-data/...`` (as imdsrender's keys do).  A trailing ``/`` is kept:
    it is what makes an imdsrender key a directory.  Glob characters pass
    through untouched, so patterns use this too.
    """
    trailing = key.endswith("/") and key.strip("/") != ""
    joined = posixpath.normpath("/" + prefix.strip("/") + "/" + key.strip("/"))
    joined = "/" + joined.lstrip("/")
    if joined.startswith("/latest/") or joined == "/latest":
        joined = joined[len("/latest"):] or "/"
    if joined != "/" and not any(joined == r or joined.startswith(r + "/") for r in ROOTS):
        joined = "/meta-data" + joined
    elif joined == "/":
        joined = "/meta-data"
    if trailing and joined != "/user-data":
        joined += "/"
    return joined


def _is_known_dir(path: str) -> bool:
    return any(glob_match(pattern, path.rstrip("/")) for pattern in _KNOWN_DIRS)


# --------------------------------------------------------------------------
# Lexing Go templates


@dataclass(frozen=True)
class _Tok:
    kind: str  # str raw char num op var field dot ident
    text: str
    adjacent: bool  # no space between this token and the previous one


@dataclass(frozen=True)
class _Text:
    text: str
    line: int


@dataclass(frozen=True)
class _Action:
    tokens: Tuple[_Tok, ...]
    source: str  # the action as written, for messages
    line: int
    ltrim: bool
    rtrim: bool


@dataclass(frozen=True)
class _Comment:
    text: str
    line: int
    ltrim: bool
    rtrim: bool


_Item = Union[_Text, _Action, _Comment]

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


class _LexError(Exception):
    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


def _lex(text: str) -> List[_Item]:
    """Split a Go template into text, actions and comments (Go's lexer rules).

    Trim markers are applied here, to the neighbouring text, exactly as Go's
    lexer does; the flags are kept so the output can carry them too.
    """
    items: List[_Item] = []
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
            items.append(_Text(chunk, chunk_line))
        if start < 0:
            break
        pos, item = _lex_action(text, start, line, ltrim)
        pending_rtrim = item.rtrim
        line += text[start:pos].count("\n")
        items.append(item)
    return items


def _lex_action(text: str, start: int, line: int,
                ltrim: bool) -> Tuple[int, Union[_Action, _Comment]]:
    pos = start + (4 if ltrim else 2)
    if text.startswith("/*", pos):
        end = text.find("*/", pos + 2)
        if end < 0:
            raise _LexError(line, "unclosed comment")
        after = end + 2
        rtrim = False
        m = re.compile(r"[ \t\r\n]-}}").match(text, after)
        if m:
            rtrim, after = True, m.end()
        elif text.startswith("}}", after):
            after += 2
        else:
            raise _LexError(line, "comment ends before closing delimiter")
        return after, _Comment(text[pos + 2:end], line, ltrim, rtrim)
    tokens: List[_Tok] = []
    adjacent = True
    while True:
        if pos >= len(text):
            raise _LexError(line, "unclosed action")
        m = re.compile(r"[ \t\r\n]+-}}").match(text, pos)
        if m:
            return m.end(), _Action(tuple(tokens), text[start:m.end()], line, ltrim, True)
        if text.startswith("}}", pos):
            return pos + 2, _Action(tuple(tokens), text[start:pos + 2], line, ltrim, False)
        if text[pos] in _SPACE:
            pos += 1
            adjacent = False
            continue
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise _LexError(line, f"unexpected {text[pos]!r} in action")
        kind = m.lastgroup or "?"
        tokens.append(_Tok(kind, m.group(), adjacent))
        adjacent = True
        pos = m.end()


def _go_unquote(tok: _Tok) -> str:
    """The value of a Go string literal (interpreted or raw)."""
    try:
        return _unquote(tok)
    except (ValueError, IndexError, OverflowError):
        raise _Untranslatable(f"invalid string literal {tok.text}") from None


def _unquote(tok: _Tok) -> str:
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


# --------------------------------------------------------------------------
# Parsing actions into pipelines


@dataclass(frozen=True)
class _Node:
    kind: str  # str num bool nil dot var field ident pipe chain
    value: Any = None  # literal value / name / _Pipe
    fields: Tuple[str, ...] = ()  # field chain after the term


@dataclass(frozen=True)
class _Pipe:
    decl: Tuple[str, ...]
    assign: bool  # "=" rather than ":="
    cmds: Tuple[Tuple[_Node, ...], ...]


class _Untranslatable(Exception):
    """A construct with no safe Jinja translation (the message says which)."""


class _Parser:
    """Recursive descent over one action's tokens (Go's pipeline grammar)."""

    def __init__(self, tokens: Sequence[_Tok]) -> None:
        self.toks = list(tokens)
        self.i = 0

    def peek(self, offset: int = 0) -> Optional[_Tok]:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise _Untranslatable("unexpected end of action")
        self.i += 1
        return tok

    def at_end(self) -> bool:
        return self.i >= len(self.toks)

    def pipeline(self, allow_decl: bool = True, two_vars: bool = False) -> _Pipe:
        decl: List[str] = []
        assign = False
        if allow_decl and self._decl_ahead(two_vars):
            decl.append(self.take().text)
            comma = self.peek()
            if comma is not None and comma.text == ",":
                self.take()
                decl.append(self.take().text)
            assign = self.take().text == "="
        cmds: List[Tuple[_Node, ...]] = []
        while True:
            cmds.append(self.command())
            tok = self.peek()
            if tok is None or tok.text == ")":
                break
            if tok.text != "|":
                raise _Untranslatable(f"unexpected {tok.text!r}")
            self.take()
        return _Pipe(tuple(decl), assign, tuple(cmds))

    def _decl_ahead(self, two_vars: bool) -> bool:
        a, b = self.peek(), self.peek(1)
        if a is None or a.kind != "var" or b is None:
            return False
        if b.text in (":=", "="):
            return True
        c, d = self.peek(2), self.peek(3)
        return (two_vars and b.text == "," and c is not None and c.kind == "var"
                and d is not None and d.text == ":=")

    def command(self) -> Tuple[_Node, ...]:
        args: List[_Node] = []
        while True:
            tok = self.peek()
            if tok is None or tok.text in ("|", ")"):
                break
            args.append(self.operand())
        if not args:
            raise _Untranslatable("empty command")
        return tuple(args)

    def operand(self) -> _Node:
        node = self.term()
        fields: List[str] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "field" or not tok.adjacent:
                break
            fields.append(self.take().text[1:])
        if fields:
            if node.kind in ("field", "var", "dot"):
                return _Node(node.kind, node.value, node.fields + tuple(fields))
            return _Node("chain", node, tuple(fields))
        return node

    def term(self) -> _Node:
        tok = self.take()
        if tok.kind in ("str", "raw"):
            return _Node("str", _go_unquote(tok))
        if tok.kind == "num":
            return _Node("num", tok.text)
        if tok.kind == "var":
            return _Node("var", tok.text)
        if tok.kind == "field":
            return _Node("field", None, (tok.text[1:],))
        if tok.kind == "dot":
            return _Node("dot")
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return _Node("bool", tok.text == "true")
            if tok.text == "nil":
                return _Node("nil")
            return _Node("ident", tok.text)
        if tok.text == "(":
            inner = self.pipeline(allow_decl=False)
            if self.take().text != ")":
                raise _Untranslatable("unbalanced parentheses")
            return _Node("pipe", inner)
        raise _Untranslatable(f"unexpected {tok.text!r}")


# --------------------------------------------------------------------------
# Translating expressions


@dataclass(frozen=True)
class _Val:
    """A translated Go value: Jinja expression text and what Go type it has."""

    expr: str
    typ: str  # str bool num nil strlist kvlist kv map list any
    atomic: bool = True  # can take a filter, attribute or subscript as is
    literal: Optional[str] = None  # the Go string, for literal strings

    def atom(self) -> str:
        return self.expr if self.atomic else f"({self.expr})"


@dataclass
class _Binding:
    name: str  # Jinja name
    typ: str
    decl_id: int
    loop_depth: int


@dataclass
class _Frame:
    kind: str  # root if range with skip
    line: int
    vars: Dict[str, _Binding] = field(default_factory=dict)
    dot: Optional[_Val] = None
    closer: str = ""


_JINJA_RESERVED = {
    "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "set",
    "with", "endwith", "block", "endblock", "macro", "call", "filter", "import", "include",
    "from", "extends", "raw", "endraw", "self", "varargs", "kwargs", "caller", "loop",
    "namespace", "true", "false", "none", "True", "False", "None", "range", "dict", "lipsum",
    "cycler", "joiner", "src", "dest", PLACEHOLDER,
    "getv", "exists", "gets", "getvs", "ls", "lsdir", "json",
}
_DICT_ATTRS = set(dir(dict)) | set(dir(str))
_PRINTF_VERB = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?(.)")
# How the migrator reads each key function's argument, from the one table.
_KEY_FUNCS = {f.name: {"key": "leaf", "pattern": "glob", "directory": "dir"}[f.kind]
              for f in TEMPLATE_FUNCTIONS.values() if f.name != "json"}


def _jstr(value: str) -> str:
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


@dataclass
class _Result:
    text: str
    problems: List[str]
    literal_keys: List[Tuple[str, str, int]]  # (full key, kind: leaf/dir/glob, line)
    ns_decls: Set[int]
    used_decls: Set[int]


class _Translator:
    """One pass over a lexed template, emitting Jinja as it goes.

    Two passes are made: the first learns which variables are assigned in a
    loop (those become ``namespace`` objects, the only Jinja state that
    survives a loop iteration) and which range index variables are used.
    """

    def __init__(self, name: str, prefix: str, ns_decls: Set[int], used_decls: Set[int]) -> None:
        self.name = name
        self.prefix = prefix
        self.ns_decls = ns_decls
        self.used_decls_known = used_decls
        self.out: List[str] = []
        self.problems: List[str] = []
        self.literal_keys: List[Tuple[str, str, int]] = []
        self.found_ns: Set[int] = set()
        self.used: Set[int] = set()
        self.frames: List[_Frame] = [_Frame("root", 0)]
        self.decl_counter = 0
        self.line = 0

    # -- scopes

    def loop_depth(self) -> int:
        return sum(1 for f in self.frames if f.kind == "range")

    def lookup(self, go_name: str) -> Optional[_Binding]:
        for frame in reversed(self.frames):
            if go_name in frame.vars:
                return frame.vars[go_name]
        return None

    def bound_names(self) -> Set[str]:
        return {b.name for f in self.frames for b in f.vars.values()}

    def fresh(self, base: str) -> str:
        base = re.sub(r"\W", "_", base) or "v"
        if base[0].isdigit():
            base = "v" + base
        if base in _JINJA_RESERVED:
            base += "_"
        taken = self.bound_names()
        name, n = base, 1
        while name in taken:
            name = f"{base}_{n}"
            n += 1
        return name

    def declare(self, go_name: str, typ: str) -> _Binding:
        binding = _Binding(self.fresh(go_name[1:]), typ, self.decl_counter, self.loop_depth())
        self.decl_counter += 1
        self.frames[-1].vars[go_name] = binding
        return binding

    def dot(self) -> Optional[_Val]:
        for frame in reversed(self.frames):
            if frame.kind in ("range", "with") and frame.dot is not None:
                return frame.dot
        return None

    # -- problems

    def problem(self, line: int, what: str) -> None:
        self.problems.append(f"{self.name}:{line}: {what}")

    # -- keys

    def key_arg(self, val: _Val, kind: str) -> _Val:
        """A key argument with the prefix folded in (at runtime when not literal)."""
        if val.literal is not None:
            key = val.literal
            if kind == "dir" and not key.endswith("/"):
                key += "/"
            full = full_key(self.prefix, key)
            self.literal_keys.append((full, kind, self.line))
            return _Val(_jstr(full), "str")
        if self.prefix == "/":
            return val
        return _Val(f"{_jstr(self.prefix)} ~ {val.atom()}", "str", atomic=False)

    # -- expressions

    def pipe(self, pipe: _Pipe) -> _Val:
        val: Optional[_Val] = None
        for cmd in pipe.cmds:
            val = self.command(cmd, val)
        assert val is not None
        return val

    def command(self, args: Sequence[_Node], piped: Optional[_Val]) -> _Val:
        head = args[0]
        if head.kind == "ident":
            return self.call(head.value, list(args[1:]), piped)
        if len(args) > 1 or piped is not None:
            raise _Untranslatable("a value cannot take arguments")
        return self.value(head)

    def value(self, node: _Node) -> _Val:
        if node.kind == "str":
            return _Val(_jstr(node.value), "str", literal=node.value)
        if node.kind == "num":
            text = _number(node.value)
            return _Val(text, "num", atomic=not text.startswith(("-", "+")))
        if node.kind == "bool":
            return _Val("true" if node.value else "false", "bool")
        if node.kind == "nil":
            raise _Untranslatable("nil")
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
            raise _Untranslatable("confd's template data ('.' outside range/with) is empty")
        return self.fields(dot, node.fields)

    def var(self, go_name: str) -> _Val:
        if go_name == "$":
            raise _Untranslatable("'$' (confd's template data) is empty")
        binding = self.lookup(go_name)
        if binding is None:
            raise _Untranslatable(f"undefined variable {go_name}")
        self.used.add(binding.decl_id)
        if binding.decl_id in self.ns_decls:
            return _Val(f"{binding.name}.v", binding.typ)
        return _Val(binding.name, binding.typ)

    def fields(self, val: _Val, names: Sequence[str]) -> _Val:
        for name in names:
            if val.typ == "kv" and name == "Key":
                if self.prefix == "/":
                    val = _Val(f"{val.atom()}.key", "str")
                else:  # confd's .Key is relative to the prefix
                    val = _Val(f"{val.atom()}.key[{len(self.prefix)}:]", "str")
            elif val.typ == "kv" and name == "Value":
                val = _Val(f"{val.atom()}.value", "str")
            elif val.typ in ("map", "any"):
                if name in _DICT_ATTRS or not name.isidentifier():
                    val = _Val(f"{val.atom()}[{_jstr(name)}]", "any")
                else:
                    val = _Val(f"{val.atom()}.{name}", "any")
            else:
                raise _Untranslatable(f"field .{name} of a {val.typ} value")
        return val

    def call(self, fname: str, nodes: List[_Node], piped: Optional[_Val]) -> _Val:
        args = [self.value(n) for n in nodes]
        if piped is not None:
            args.append(piped)
        if fname in _KEY_FUNCS and args:
            return self.key_call(fname, self.key_arg(args[0], _KEY_FUNCS[fname]), args[1:])
        handler = _FUNCS.get(fname)
        if handler is None:
            raise _Untranslatable(f"function {fname!r} has no imdsrender equivalent")
        return handler(self, args)

    def key_call(self, fname: str, key: _Val, rest: List[_Val]) -> _Val:
        if fname == "getv":
            if len(rest) > 1:
                raise _Untranslatable("getv takes a key and at most one default")
            args = ", ".join([key.expr] + [r.expr for r in rest])
            return _Val(f"getv({args})", "str")
        if rest:
            raise _Untranslatable(f"{fname} takes one argument")
        if fname == "exists":
            return _Val(f"exists({key.expr})", "bool")
        if fname == "gets":
            return _Val(f"gets({key.expr})", "kvlist")
        if fname == "getvs":  # sorted by value, as confd's are
            return _Val(f"getvs({key.expr})", "strlist")
        return _Val(f"{fname}({key.expr})", "strlist")

    # -- output

    def emit(self, tags: Sequence[Tuple[str, str]], ltrim: bool, rtrim: bool) -> None:
        """Emit Jinja tags; the action's trim markers go on the outer ends."""
        for i, (kind, body) in enumerate(tags):
            lt = "-" if ltrim and i == 0 else ""
            rt = "-" if rtrim and i == len(tags) - 1 else ""
            if kind == "expr":
                self.out.append(f"{{{{{lt} {body} {rt}}}}}")
            elif kind == "stmt":
                self.out.append(f"{{%{lt} {body} {rt}%}}")
            else:
                self.out.append(f"{{#{lt} {body} {rt}#}}")

    def text(self, text: str, last: bool) -> None:
        self.out.append(_escape_text(text, last))

    def untranslated(self, item: _Action, why: str) -> List[Tuple[str, str]]:
        self.problem(item.line, f"untranslated {_one_line(item.source)}: {why}")
        return [("comment", f"{MARKER}: {_comment_safe(_one_line(item.source))} ({why})")]

    # -- actions

    def action(self, item: _Action) -> None:
        self.line = item.line
        toks = item.tokens
        if not toks:
            self.emit(self.untranslated(item, "empty action"), item.ltrim, item.rtrim)
            return
        head = toks[0].text if toks[0].kind == "ident" else ""
        handler = {"if": self.a_if, "range": self.a_range, "with": self.a_with,
                   "else": self.a_else, "end": self.a_end, "define": self.a_skip_block,
                   "block": self.a_skip_block}.get(head)
        if self.frames[-1].kind == "skip":
            if head in ("if", "range", "with", "define", "block"):
                self.frames.append(_Frame("skip", item.line))
            elif head == "end":
                self.frames.pop()
            return
        if handler is not None:
            handler(item)
            return
        try:
            tags = self.a_pipeline(item)
        except _Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("expr", PLACEHOLDER)]
        self.emit(tags, item.ltrim, item.rtrim)

    def a_pipeline(self, item: _Action) -> List[Tuple[str, str]]:
        head = item.tokens[0]
        if head.kind == "ident" and head.text in ("template", "break", "continue"):
            raise _Untranslatable(f"{{{{{head.text}}}}} is not supported")
        parser = _Parser(item.tokens)
        pipe = parser.pipeline()
        if not parser.at_end():
            raise _Untranslatable("unbalanced parentheses")
        if not pipe.decl:
            return [("expr", self.output(self.pipe(pipe)))]
        if len(pipe.decl) > 1:
            raise _Untranslatable("two variables outside range")
        go_name = pipe.decl[0]
        try:
            val = self.pipe(pipe)
        except _Untranslatable as exc:
            if pipe.assign:
                raise
            # keep the variable declared so its uses are not reported again
            val = _Val(PLACEHOLDER, "any")
            tags = self.untranslated(item, str(exc))
            return tags + self.declaration(go_name, val)
        if pipe.assign:
            binding = self.lookup(go_name)
            if binding is None:
                raise _Untranslatable(f"assignment to undeclared {go_name}")
            if self.loop_depth() > binding.loop_depth:
                self.found_ns.add(binding.decl_id)
            binding.typ = val.typ if val.typ == binding.typ else "any"
            if binding.decl_id in self.ns_decls:
                return [("stmt", f"set {binding.name}.v = {val.expr}")]
            return [("stmt", f"set {binding.name} = {val.expr}")]
        return self.declaration(go_name, val)

    def declaration(self, go_name: str, val: _Val) -> List[Tuple[str, str]]:
        binding = self.declare(go_name, val.typ)
        if binding.decl_id in self.ns_decls:
            return [("stmt", f"set {binding.name} = namespace(v={val.expr})")]
        return [("stmt", f"set {binding.name} = {val.expr}")]

    def output(self, val: _Val) -> str:
        """How Go prints a value, as a Jinja expression."""
        if val.typ == "bool":
            return f'"true" if {val.atom()} else "false"'
        if val.typ == "strlist":
            return f'"[" ~ ({val.expr} | join(" ")) ~ "]"'
        if val.typ in ("kv", "kvlist", "map", "list", "nil"):
            raise _Untranslatable(f"printing a {val.typ} value (Go's formatting of it differs)")
        return val.expr

    def cond(self, item: _Action, skip: int) -> _Val:
        parser = _Parser(item.tokens[skip:])
        pipe = parser.pipeline(allow_decl=False)
        if not parser.at_end():
            raise _Untranslatable("unbalanced parentheses")
        return self.pipe(pipe)

    def a_if(self, item: _Action) -> None:
        try:
            tags = [("stmt", f"if {self.cond(item, 1).expr}")]
        except _Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("stmt", f"if {PLACEHOLDER}")]
        self.frames.append(_Frame("if", item.line, closer="endif"))
        self.emit(tags, item.ltrim, item.rtrim)

    def a_with(self, item: _Action) -> None:
        frame = _Frame("with", item.line, closer="endif")
        try:
            val = self.cond(item, 1)
            name = self.fresh("it")
            frame.vars[f"$<with {name}>"] = _Binding(name, val.typ, -1, self.loop_depth())
            frame.dot = _Val(name, val.typ)
            tags = [("stmt", f"set {name} = {val.expr}"), ("stmt", f"if {name}")]
        except _Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("stmt", f"if {PLACEHOLDER}")]
        self.frames.append(frame)
        self.emit(tags, item.ltrim, item.rtrim)

    def a_range(self, item: _Action) -> None:
        frame = _Frame("range", item.line, closer="endfor")
        self.frames.append(frame)  # loop variables belong to the loop
        try:
            tags = self.range_tags(item, frame)
        except _Untranslatable as exc:
            frame.vars.clear()
            frame.dot = None
            tags = self.untranslated(item, str(exc)) + [("stmt", f"for _ in {PLACEHOLDER}")]
        self.emit(tags, item.ltrim, item.rtrim)

    def range_tags(self, item: _Action, frame: _Frame) -> List[Tuple[str, str]]:
        parser = _Parser(item.tokens[1:])
        pipe = parser.pipeline(two_vars=True)
        if not parser.at_end():
            raise _Untranslatable("unbalanced parentheses")
        if pipe.assign:
            raise _Untranslatable("range with '=' assignment")
        # evaluate the source outside the loop's own scope
        self.frames.pop()
        try:
            src = self.pipe(pipe)
        finally:
            self.frames.append(frame)
        elem = {"kvlist": "kv", "strlist": "str"}.get(src.typ, "any")
        base = {"kvlist": "kv", "strlist": "value", "map": "value"}.get(src.typ, "item")
        if src.typ in ("str", "bool", "num", "kv"):
            raise _Untranslatable(f"range over a {src.typ} value")
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
                frame.vars[index_go] = _Binding(key_name, "str", self.decl_counter,
                                                self.loop_depth())
                self.decl_counter += 1
            elem_name = self.fresh(elem_go[1:] if elem_go else base)
            head = f"for {key_name}, {elem_name} in {src.atom()} | dictsort(true)"
        else:
            elem_name = self.fresh(elem_go[1:] if elem_go else base)
            head = f"for {elem_name} in {src.expr}"
            if index_go:
                index_b = self.declare(index_go, "num")
                if index_b.decl_id in self.used_decls_known:
                    extra.append(("stmt", f"set {index_b.name} = loop.index0"))
        if elem_go:
            frame.vars[elem_go] = _Binding(elem_name, elem, self.decl_counter, self.loop_depth())
            self.decl_counter += 1
        else:
            frame.vars[f"$<range {elem_name}>"] = _Binding(elem_name, elem, -1, self.loop_depth())
        frame.dot = _Val(elem_name, elem)
        return [("stmt", head)] + extra

    def a_else(self, item: _Action) -> None:
        frame = self.frames[-1]
        if frame.kind not in ("if", "with", "range"):
            self.emit(self.untranslated(item, "else outside if/range/with"), item.ltrim, item.rtrim)
            return
        frame.vars.clear()
        frame.dot = None
        toks = item.tokens
        if len(toks) > 1 and toks[1].text == "if" and frame.kind == "if":
            try:
                tags = [("stmt", f"elif {self.cond(item, 2).expr}")]
            except _Untranslatable as exc:
                tags = self.untranslated(item, str(exc)) + [("stmt", f"elif {PLACEHOLDER}")]
        elif len(toks) > 1:
            tags = self.untranslated(item, "only {{else}} and {{else if}} are supported") + \
                [("stmt", f"elif {PLACEHOLDER}" if frame.kind != "range" else "else")]
        else:
            tags = [("stmt", "else")]
        self.emit(tags, item.ltrim, item.rtrim)

    def a_end(self, item: _Action) -> None:
        if len(self.frames) == 1:
            self.emit(self.untranslated(item, "{{end}} without a block"), item.ltrim, item.rtrim)
            return
        frame = self.frames.pop()
        self.emit([("stmt", frame.closer)], item.ltrim, item.rtrim)

    def a_skip_block(self, item: _Action) -> None:
        tags = self.untranslated(item, "template definitions are not supported; "
                                 "the block's body was dropped")
        self.frames.append(_Frame("skip", item.line))
        self.emit(tags, item.ltrim, item.rtrim)

    def comment(self, item: _Comment) -> None:
        self.emit([("comment", _comment_safe(item.text.strip()))], item.ltrim, item.rtrim)

    def finish(self) -> None:
        while len(self.frames) > 1:
            frame = self.frames.pop()
            self.problem(frame.line, f"{frame.kind} block is never closed with {{{{end}}}}")
            if frame.closer:
                self.out.append(f"{{% {frame.closer} %}}")


def _number(text: str) -> str:
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
        raise _Untranslatable(f"invalid number {text}") from None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _comment_safe(text: str) -> str:
    return text.replace("#}", "# }").replace("{#", "{ #")


def _escape_text(text: str, last: bool) -> str:
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
            pieces.append("{{ " + _jstr(ch) + " }}")
        else:
            pieces.append(ch)
    pieces.append("" if last else "{")  # what follows: nothing, or one of our tags
    out = [('{{ "{" }}' if piece == "{" and pieces[i + 1][:1] in ("{", "%", "#") else piece)
           for i, piece in enumerate(pieces[:-1])]
    return "".join(out)


# -- functions (name -> translator over already translated arguments)


def _arity(args: List[_Val], n: int, fname: str) -> None:
    if len(args) != n:
        raise _Untranslatable(f"{fname} takes {n} argument(s), got {len(args)}")


def _f_filter(name: str, typ: str = "str") -> Callable[[_Translator, List[_Val]], _Val]:
    def fn(t: _Translator, args: List[_Val]) -> _Val:
        _arity(args, 1, name)
        return _Val(f"{args[0].atom()} | {name}", typ, atomic=False)
    return fn


def _f_json(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 1, "json")
    return _Val(f"{args[0].atom()} | fromjson", "map", atomic=False)


def _f_json_array(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 1, "jsonArray")
    return _Val(f"{args[0].atom()} | fromjson", "list", atomic=False)


def _f_split(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 2, "split")
    if args[1].literal == "":
        raise _Untranslatable("split on an empty separator")
    return _Val(f"{args[0].atom()}.split({args[1].expr})", "strlist")


def _f_join(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 2, "join")
    return _Val(f"{args[0].atom()} | join({args[1].expr})", "str", atomic=False)


def _f_base(t: _Translator, args: List[_Val]) -> _Val:
    """Go's path.Base for non-empty paths: last element, trailing slashes ignored."""
    _arity(args, 1, "base")
    return _Val(f'{args[0].atom()}.rstrip("/").split("/") | last', "str", atomic=False)


def _f_dir(t: _Translator, args: List[_Val]) -> _Val:
    """Go's path.Dir for absolute paths: everything before the last "/"."""
    _arity(args, 1, "dir")
    return _Val(f'{args[0].atom()}.rsplit("/", 1)[0] or "/"', "str", atomic=False)


def _f_replace(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 4, "replace")
    s, old, new, n = args
    if n.expr == "-1":
        return _Val(f"{s.atom()} | replace({old.expr}, {new.expr})", "str", atomic=False)
    return _Val(f"{s.atom()} | replace({old.expr}, {new.expr}, {n.expr})", "str", atomic=False)


def _f_contains(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 2, "contains")
    return _Val(f"{args[1].atom()} in {args[0].atom()}", "bool", atomic=False)


def _f_printf(t: _Translator, args: List[_Val]) -> _Val:
    if not args:
        raise _Untranslatable("printf without a format")
    fmt, rest = args[0], args[1:]
    if fmt.literal is None:
        raise _Untranslatable("printf with a computed format")
    verbs = _PRINTF_VERB.findall(fmt.literal)
    if any(v[3] not in "sdvf%" for v in verbs):
        raise _Untranslatable("printf verb other than %s %d %v %f %%")
    if sum(1 for v in verbs if v[3] != "%") != len(rest):
        raise _Untranslatable("printf arguments do not match the format")
    py_fmt = _PRINTF_VERB.sub(
        lambda m: m.group(0)[:-1] + ("s" if m.group(4) == "v" else m.group(4)), fmt.literal)
    if not rest:
        return _Val(_jstr(py_fmt.replace("%%", "%")), "str", literal=py_fmt.replace("%%", "%"))
    arg_list = ", ".join(a.expr for a in rest)
    return _Val(f"{_jstr(py_fmt)} | format({arg_list})", "str", atomic=False)


def _f_index(t: _Translator, args: List[_Val]) -> _Val:
    if len(args) < 2:
        raise _Untranslatable("index needs a collection and an index")
    val = args[0]
    for idx in args[1:]:
        typ = "str" if val.typ == "strlist" else "any"
        val = _Val(f"{val.atom()}[{idx.expr}]", typ)
    return val


def _f_len(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 1, "len")
    return _Val(f"{args[0].atom()} | length", "num", atomic=False)


def _f_compare(op: str) -> Callable[[_Translator, List[_Val]], _Val]:
    def fn(t: _Translator, args: List[_Val]) -> _Val:
        if len(args) < 2 or (op != "==" and len(args) != 2):
            raise _Untranslatable(f"comparison {op} with {len(args)} arguments")
        first = args[0].atom()
        parts = [f"{first} {op} {a.atom()}" for a in args[1:]]
        return _Val(" or ".join(parts), "bool", atomic=False)
    return fn


def _f_logic(op: str) -> Callable[[_Translator, List[_Val]], _Val]:
    def fn(t: _Translator, args: List[_Val]) -> _Val:
        if len(args) < 2:
            raise _Untranslatable(f"{op} needs two or more arguments")
        typ = "bool" if all(a.typ == "bool" for a in args) else "any"
        return _Val(f" {op} ".join(a.atom() for a in args), typ, atomic=False)
    return fn


def _f_not(t: _Translator, args: List[_Val]) -> _Val:
    _arity(args, 1, "not")
    return _Val(f"not {args[0].atom()}", "bool", atomic=False)


def _f_print(t: _Translator, args: List[_Val]) -> _Val:
    if len(args) != 1:
        raise _Untranslatable("print with several arguments")
    return args[0]


_FUNCS: Dict[str, Callable[[_Translator, List[_Val]], _Val]] = {
    "toUpper": _f_filter("upper"), "toLower": _f_filter("lower"),
    "base64Encode": _f_filter("b64encode"), "base64Decode": _f_filter("b64decode"),
    "json": _f_json, "jsonArray": _f_json_array, "split": _f_split, "join": _f_join,
    "base": _f_base, "dir": _f_dir, "replace": _f_replace, "contains": _f_contains,
    "printf": _f_printf, "index": _f_index, "len": _f_len, "not": _f_not,
    "and": _f_logic("and"), "or": _f_logic("or"), "print": _f_print,
    "eq": _f_compare("=="), "ne": _f_compare("!="), "lt": _f_compare("<"),
    "le": _f_compare("<="), "gt": _f_compare(">"), "ge": _f_compare(">="),
}


# --------------------------------------------------------------------------
# Template and resource conversion


def _translate(text: str, name: str, prefix: str) -> _Result:
    try:
        items = _lex(text)
    except _LexError as exc:
        comment = f"{{# {MARKER}: the whole template ({exc.what}) #}}{{{{ {PLACEHOLDER} }}}}"
        return _Result(comment, [f"{name}:{exc.line}: cannot parse: {exc.what}"], [], set(), set())
    ns: Set[int] = set()
    used: Set[int] = set()
    for _ in range(2):
        t = _Translator(name, prefix, ns, used)
        for i, item in enumerate(items):
            if isinstance(item, _Text):
                if t.frames[-1].kind != "skip":
                    t.text(item.text, i == len(items) - 1)
            elif isinstance(item, _Comment):
                if t.frames[-1].kind != "skip":
                    t.comment(item)
            else:
                t.action(item)
        t.finish()
        if t.found_ns <= ns and t.used <= used:
            break
        ns, used = ns | t.found_ns, used | t.used
    return _Result("".join(t.out), t.problems, t.literal_keys, ns, used)


def convert_template(text: str, name: str, *, prefix: str = "/") -> Tuple[str, Tuple[str, ...]]:
    """Translate a confd Go template into Jinja2 text.

    *name* is used in problem lines (``templates/x.tmpl``); *prefix* is the
    resource's effective confd prefix, folded into every literal key.
    """
    result = _translate(text, name, fold_prefix("", prefix))
    return result.text, tuple(result.problems)


def convert_command(cmd: str, where: str, allowed: Sequence[str]) -> Tuple[str, Tuple[str, ...]]:
    """confd's check_cmd/reload_cmd (``{{.src}}``/``{{.dest}}``) in imdsrender form."""
    try:
        items = _lex(cmd)
    except _LexError as exc:
        return cmd, (f"{where}: cannot parse command template: {exc.what}",)
    out: List[str] = []
    problems: List[str] = []
    for item in items:
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, _Action) and len(item.tokens) == 1 and \
                item.tokens[0].kind == "field" and item.tokens[0].text[1:] in allowed:
            out.append(f"{{{{ {item.tokens[0].text[1:]} }}}}")
        else:
            source = item.source if isinstance(item, _Action) else "{{/*...*/}}"
            if isinstance(item, _Comment):
                continue
            problems.append(f"{where}: untranslated {_one_line(source)} in command "
                            f"(only {', '.join('{{.' + a + '}}' for a in allowed)} are supported)")
            out.append(source)
    return "".join(out), tuple(problems)


def _output_template_name(src: str) -> str:
    stem = src[: -len(".tmpl")] if src.endswith(".tmpl") else src
    return stem + ".j2"


def _go_duration(value: Any) -> Optional[float]:
    """Seconds from a TOML number (seconds) or a Go duration string ("1m30s")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str):
        return None
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", value)
    if not parts or "".join(a + b for a, b in parts) != value.strip():
        return None
    return sum(float(a) * units[b] for a, b in parts)


def _duration_text(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"


def _parse_mode(value: Any) -> Tuple[Optional[int], str]:
    """confd's strconv.ParseUint(mode, 0, 32): "0644" octal, "644" decimal."""
    if not isinstance(value, str):
        return None, "mode must be a string such as \"0644\""
    text = value.strip().replace("_", "")
    try:
        if re.fullmatch(r"0[oO]?[0-7]+", text):
            mode = int(text.lstrip("0").lstrip("oO") or "0", 8)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            mode = int(text, 16)
        elif re.fullmatch(r"0[bB][01]+", text):
            mode = int(text, 2)
        elif re.fullmatch(r"\d+", text):
            mode = int(text, 10)
            if mode > 7:
                return None, (f"mode {value!r} is decimal to confd (= 0{mode:o}); "
                              f"write \"0{text}\" if octal was meant")
        else:
            return None, f"mode {value!r} is not a number"
    except ValueError:
        return None, f"mode {value!r} is not a number"
    if mode > 0o7777:
        return None, f"mode {value!r} has bits beyond 07777"
    return mode, ""


def _line_of(text: str, field_name: str, table: bool = False) -> int:
    """Line of ``field = ...`` (or of the ``[table]`` header) in a TOML file; 0: not found."""
    name = re.escape(field_name)
    if table:
        m = re.compile(r"^\s*\[\s*" + name + r"\s*[\].]", re.M).search(text)
    else:
        m = re.compile(r"^\s*[\"']?" + name + r"[\"']?\s*=", re.M).search(text)
    return text.count("\n", 0, m.start()) + 1 if m else 0


def _key_is_dir(key: str, used: Iterable[Tuple[str, str, int]]) -> bool:
    """Decide whether a confd key (no trailing "/") is a directory for imdsrender."""
    below = key + "/"
    exact_leaf = False
    for literal, kind, _ in used:
        root = glob_root(literal) if kind == "glob" else literal
        if root.startswith(below):
            return True
        if literal == key and kind == "leaf":
            exact_leaf = True
    return not exact_leaf and _is_known_dir(key)


def _uncovered(keys: Sequence[str], used: Iterable[Tuple[str, str, int]],
               template_name: str, name: str) -> List[str]:
    """Literal template keys outside the resource's keys.

    confd answers those with an error, a default or false; imdsrender
    refuses to render them, so the converted resource would not work.
    """
    problems = []
    for literal, kind, line in used:
        path = glob_root(literal) if kind == "glob" else literal
        if not any(k in (path, path + "/") or (k.endswith("/") and path.startswith(k))
                   for k in keys):
            problems.append(f"{template_name}:{line}: key {path} is not in the keys of {name}; "
                            "add it there (confd could not read it either)")
    return problems


def convert_resource(doc: Mapping[str, Any], name: str, global_prefix: str = "", *,
                     text: str = "", template_keys: Iterable[Tuple[str, str, int]] = (),
                     template_name: str = "") -> Tuple[Dict[str, Any], Tuple[str, ...]]:
    """One confd template resource (the parsed TOML) as an imdsrender entry.

    *name* is the TOML file's name for problem lines (``conf.d/x.toml``),
    *text* its source (for line numbers), *template_keys* the (key, kind,
    line) literals its converted template *template_name* uses: they tell
    directory keys apart and are checked against the keys.
    """
    problems: List[str] = []

    def where(field_name: str, table: bool = False) -> str:
        line = _line_of(text, field_name, table) if text else 0
        return f"{name}:{line}" if line else name

    tpl = doc.get("template")
    if not isinstance(tpl, Mapping):
        return {}, (f"{name}: no [template] table",)
    for key in doc:
        if key != "template":
            at = where(key, isinstance(doc[key], Mapping))
            problems.append(f"{at}: [{key}] is not translated (imdsrender reads IMDS only)")
    for key in tpl:
        if key not in _RESOURCE_FIELDS:
            problems.append(f"{where(key)}: field {key!r} has no imdsrender equivalent; "
                            "not translated")
    entry: Dict[str, Any] = {}
    src = tpl.get("src")
    if not isinstance(src, str) or not src:
        problems.append(f"{where('src')}: src is missing")
    else:
        entry["src"] = _output_template_name(src)
    dest = tpl.get("dest")
    if not isinstance(dest, str) or not dest:
        problems.append(f"{where('dest')}: dest is missing")
    else:
        entry["dest"] = dest
    prefix = fold_prefix(global_prefix, str(tpl.get("prefix") or ""))
    keys = tpl.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        problems.append(f"{where('keys')}: keys must be a list of strings")
        keys = []
    used = list(template_keys)
    out_keys: List[str] = []
    for key in keys:
        full = full_key(prefix, key)
        if not full.endswith("/") and _key_is_dir(full, used):
            full += "/"
        if full not in out_keys:
            out_keys.append(full)
    if out_keys:  # none: imdsrender derives them from the template
        entry["keys"] = out_keys
        problems.extend(_uncovered(out_keys, used, template_name or "templates", name))
    if "mode" in tpl:
        mode, why = _parse_mode(tpl["mode"])
        if mode is None:
            problems.append(f"{where('mode')}: {why}")
        else:
            entry["mode"] = f"{mode:04o}"
    for confd_id, confd_name, ours in (("uid", "owner", "owner"), ("gid", "group", "group")):
        if confd_id in tpl:  # confd: a number wins over a name
            if isinstance(tpl[confd_id], int) and not isinstance(tpl[confd_id], bool) \
                    and tpl[confd_id] >= 0:
                entry[ours] = tpl[confd_id]
            else:
                problems.append(f"{where(confd_id)}: {confd_id} must be a number")
        elif confd_name in tpl:
            entry[ours] = tpl[confd_name]
    for cmd_field, allowed in (("check_cmd", ("src",)), ("reload_cmd", ("src", "dest"))):
        if cmd_field in tpl:
            cmd, cmd_problems = convert_command(str(tpl[cmd_field]), where(cmd_field), allowed)
            entry[cmd_field] = cmd
            problems.extend(cmd_problems)
    for confd_t, ours in (("check_cmd_timeout", "check_timeout"),
                          ("reload_cmd_timeout", "reload_timeout")):
        if confd_t in tpl:
            seconds = _go_duration(tpl[confd_t])
            if seconds is None or seconds <= 0:
                problems.append(f"{where(confd_t)}: {confd_t} {tpl[confd_t]!r} is not a duration")
            else:
                entry[ours] = _duration_text(seconds)
    return entry, tuple(problems)


# --------------------------------------------------------------------------
# The confdir


def _toml_module() -> Any:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
        return tomllib
    except ImportError:
        pass
    try:
        import tomli  # type: ignore[import-not-found,unused-ignore]
        return tomli
    except ImportError:
        raise MigrationError("migrate-confd",
                             "reading TOML needs Python 3.11+ or the tomli package",
                             "pip install 'imdsrender[migrate]'") from None


def _load_toml(path: str, rel: str) -> Tuple[Dict[str, Any], str]:
    toml = _toml_module()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise MigrationError(rel, f"cannot read: {exc.strerror}", "check the file") from None
    try:
        text = raw.decode("utf-8")
        return toml.loads(text), text
    except UnicodeDecodeError:
        raise MigrationError(rel, "not UTF-8", "TOML files must be UTF-8") from None
    except toml.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"{rel}:{m.group(1)}" if m else rel
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise MigrationError(where, f"invalid TOML: {what}", "fix the file and run again") from None


def _is_inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def _check_dirs(src: str, out: str, force: bool) -> Tuple[str, str]:
    real_src, real_out = os.path.realpath(src), os.path.realpath(out)
    if not os.path.isdir(os.path.join(real_src, "conf.d")):
        raise MigrationError(src, "not a confd confdir (no conf.d/ directory)",
                             "name the directory holding conf.d/ and templates/, e.g. /etc/confd")
    if _is_inside(real_out, real_src):
        raise MigrationError(out, "is the confd confdir or inside it",
                             "migration never works in place; name a new directory")
    if os.path.exists(real_out):
        if not os.path.isdir(real_out):
            raise MigrationError(out, "exists and is not a directory", "name a new directory")
        if os.listdir(real_out) and not force:
            raise MigrationError(out, "exists and is not empty",
                                 "name a new directory, or pass --force to overwrite files in it")
    return real_src, real_out


def _write(out: str, rel: str, content: str, written: List[str]) -> None:
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(content)
    written.append(rel)


def _yaml_text(entry: Dict[str, Any], origin: str) -> str:
    import yaml
    body = yaml.safe_dump({"templates": [entry]}, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1000)
    return f"# Converted from {origin} by imdsrender migrate-confd.\n{body}"


@dataclass
class _TemplateJob:
    """One (template, prefix) pair: the same Go template under two prefixes is two outputs."""

    out_name: str
    text: str = ""
    name: str = ""
    keys: List[Tuple[str, str, int]] = field(default_factory=list)


def migrate_confdir(src: str, out: str, *, force: bool = False) -> MigrationReport:
    """Convert the confd confdir *src* into the imdsrender confdir *out*."""
    real_src, real_out = _check_dirs(src, out, force)
    global_prefix = ""
    confd_toml = os.path.join(real_src, "confd.toml")
    if os.path.isfile(confd_toml):
        settings, _ = _load_toml(confd_toml, "confd.toml")
        global_prefix = str(settings.get("prefix") or "")
    conf_dir = os.path.join(real_src, "conf.d")
    names = sorted(n for n in os.listdir(conf_dir) if n.endswith("toml")
                   and os.path.isfile(os.path.join(conf_dir, n)))
    loaded = [(n, _load_toml(os.path.join(conf_dir, n), f"conf.d/{n}")) for n in names]
    problems: List[str] = []
    written: List[str] = []
    jobs: Dict[Tuple[str, str], _TemplateJob] = {}
    taken: Set[str] = set()
    for fname, (doc, text) in loaded:
        rel = f"conf.d/{fname}"
        table = doc.get("template")
        tpl: Mapping[str, Any] = table if isinstance(table, Mapping) else {}
        job = _template_job(real_src, tpl, global_prefix, jobs, taken, problems)
        entry, resource_problems = convert_resource(
            doc, rel, global_prefix, text=text, template_keys=job.keys if job else (),
            template_name=job.name if job else "")
        if job is not None and entry:
            entry["src"] = job.out_name
        problems.extend(resource_problems)
        if entry:
            stem = fname[: -len(".toml")] if fname.endswith(".toml") else fname
            _write(real_out, f"conf.d/{stem}.yaml", _yaml_text(entry, rel), written)
    for job in jobs.values():
        _write(real_out, f"templates/{job.out_name}", job.text, written)
    return MigrationReport(tuple(sorted(written)), tuple(problems))


def _template_job(real_src: str, tpl: Mapping[str, Any], global_prefix: str,
                  jobs: Dict[Tuple[str, str], _TemplateJob], taken: Set[str],
                  problems: List[str]) -> Optional[_TemplateJob]:
    src = tpl.get("src")
    if not isinstance(src, str) or not src:
        return None
    prefix = fold_prefix(global_prefix, str(tpl.get("prefix") or ""))
    if (src, prefix) in jobs:
        return jobs[(src, prefix)]
    rel = posixpath.normpath(src)
    name = f"templates/{rel}"
    if rel.startswith("../") or rel.startswith("/") or rel == "..":
        problems.append(f"{name}: template outside templates/; not converted")
        return None
    path = os.path.join(real_src, "templates", rel)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            source = fh.read()
    except OSError as exc:
        problems.append(f"{name}: cannot read: {exc.strerror}")
        return None
    out_name = _output_template_name(rel)
    n = 2
    while out_name in taken:  # same template, another prefix
        out_name = _output_template_name(rel)[: -len(".j2")] + f"-{n}.j2"
        n += 1
    taken.add(out_name)
    result = _translate(source, name, prefix)
    problems.extend(result.problems)
    job = _TemplateJob(out_name, result.text, name, result.literal_keys)
    jobs[(src, prefix)] = job
    return job
