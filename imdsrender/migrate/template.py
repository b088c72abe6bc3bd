"""One Go template to Jinja: lex, then translate action by action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Sequence, Set, Tuple

from ..markers import MARKER
from .common import PLACEHOLDER, fold_prefix
from .golex import Comment, LexError, Text, lex
from .keyuse import exists_on_directories
from .statements import Translator


@dataclass
class Result:
    """A translated template, the problems found and the literal keys it reads."""

    text: str
    problems: List[str]
    literal_keys: List[Tuple[str, str, int]]  # (full key, kind: leaf/dir/glob, line)


def translate(text: str, name: str, prefix: str, declared: Sequence[str] = ()) -> Result:
    """Translate *text* (keys under *prefix*; *declared*: the resource's keys, full paths).

    Passes repeat while one learns something the next needs: variables
    assigned in a loop (namespaces), range indexes used, the type of dot
    each {{define}} is called with, which exists() keys are directories.
    """
    try:
        items = lex(text)
    except LexError as exc:
        comment = f"{{# {MARKER}: the whole template ({exc.what}) #}}{{{{ {PLACEHOLDER} }}}}"
        return Result(comment, [f"{name}:{exc.line}: cannot parse: {exc.what}"], [])
    ns: Set[int] = set()
    used: Set[int] = set()
    dirs: FrozenSet[str] = frozenset()
    macro_dots: Dict[str, str] = {}
    for _ in range(4):
        t = Translator(name, prefix, ns, used, dirs, macro_dots)
        for i, item in enumerate(items):
            if isinstance(item, Text):
                t.text(item.text, i == len(items) - 1)
            elif isinstance(item, Comment):
                t.comment(item)
            else:
                t.action(item)
        t.finish()
        learnt = (ns | t.found_ns, used | t.used,
                  exists_on_directories(t.literal_keys, declared), t.macro_dots)
        if learnt == (ns, used, dirs, macro_dots):
            break
        ns, used, dirs, macro_dots = learnt
    return Result(t.text_out(), t.problems, t.literal_keys)


def convert_template(text: str, name: str, *, prefix: str = "/") -> Tuple[str, Tuple[str, ...]]:
    """Translate a confd Go template into Jinja2 text.

    *name* is used in problem lines (``templates/x.tmpl``); *prefix* is the
    resource's effective confd prefix, folded into every literal key.
    """
    result = translate(text, name, fold_prefix("", prefix))
    return result.text, tuple(result.problems)
