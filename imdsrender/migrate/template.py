"""One Go template to Jinja: lex, then translate action by action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Set, Tuple

from .common import MARKER, PLACEHOLDER, fold_prefix
from .golex import Comment, LexError, Text, lex
from .statements import Translator


@dataclass
class Result:
    """A translated template, the problems found and the literal keys it reads."""

    text: str
    problems: List[str]
    literal_keys: List[Tuple[str, str, int]]  # (full key, kind: leaf/dir/glob, line)
    ns_decls: Set[int]
    used_decls: Set[int]


def translate(text: str, name: str, prefix: str) -> Result:
    """Translate *text*; a second pass applies what the first learnt about variables."""
    try:
        items = lex(text)
    except LexError as exc:
        comment = f"{{# {MARKER}: the whole template ({exc.what}) #}}{{{{ {PLACEHOLDER} }}}}"
        return Result(comment, [f"{name}:{exc.line}: cannot parse: {exc.what}"], [], set(), set())
    ns: Set[int] = set()
    used: Set[int] = set()
    for _ in range(2):
        t = Translator(name, prefix, ns, used)
        for i, item in enumerate(items):
            if isinstance(item, Text):
                if t.frames[-1].kind != "skip":
                    t.text(item.text, i == len(items) - 1)
            elif isinstance(item, Comment):
                if t.frames[-1].kind != "skip":
                    t.comment(item)
            else:
                t.action(item)
        t.finish()
        if t.found_ns <= ns and t.used <= used:
            break
        ns, used = ns | t.found_ns, used | t.used
    return Result("".join(t.out), t.problems, t.literal_keys, ns, used)


def convert_template(text: str, name: str, *, prefix: str = "/") -> Tuple[str, Tuple[str, ...]]:
    """Translate a confd Go template into Jinja2 text.

    *name* is used in problem lines (``templates/x.tmpl``); *prefix* is the
    resource's effective confd prefix, folded into every literal key.
    """
    result = translate(text, name, fold_prefix("", prefix))
    return result.text, tuple(result.problems)
