"""Go's variable scopes mapped onto Jinja names.

Go scopes ``:=`` to the enclosing block and ``range``/``with`` rebind dot;
Jinja's ``if`` is no scope at all.  A Scope hands out Jinja names that never
clobber an outer variable and remembers what dot is at each depth.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

from .common import PLACEHOLDER
from .jinjatext import Val


@dataclass
class Binding:
    name: str  # Jinja name
    typ: str
    decl_id: int
    loop_depth: int
    hint: Optional[str] = None  # Val.hint of what it holds (a key built at run time)


@dataclass
class Frame:
    kind: str  # root if range with define
    line: int
    vars: Dict[str, Binding] = field(default_factory=dict)
    dot: Optional[Val] = None
    closer: str = ""


JINJA_RESERVED = {
    "and", "or", "not", "in", "is", "if", "else", "elif", "endif", "for", "endfor", "set",
    "with", "endwith", "block", "endblock", "macro", "call", "filter", "import", "include",
    "from", "extends", "raw", "endraw", "self", "varargs", "kwargs", "caller", "loop",
    "namespace", "true", "false", "none", "True", "False", "None", "range", "dict", "lipsum",
    "cycler", "joiner", "src", "dest", PLACEHOLDER,
    "getv", "exists", "gets", "getvs", "ls", "lsdir", "json", "getenv",
}


class Scope:
    """The stack of Go blocks being translated, innermost last."""

    def __init__(self) -> None:
        self.frames: List[Frame] = [Frame("root", 0)]
        self.decl_counter = 0

    def loop_depth(self) -> int:
        return sum(1 for f in self.frames if f.kind == "range")

    def lookup(self, go_name: str) -> Optional[Binding]:
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
        if base in JINJA_RESERVED:
            base += "_"
        taken = self.bound_names()
        name, n = base, 1
        while name in taken:
            name = f"{base}_{n}"
            n += 1
        return name

    def declare(self, go_name: str, typ: str, hint: Optional[str] = None) -> Binding:
        binding = Binding(self.fresh(go_name[1:]), typ, self.decl_counter, self.loop_depth(),
                          hint)
        self.decl_counter += 1
        self.frames[-1].vars[go_name] = binding
        return binding

    def dot(self) -> Optional[Val]:
        for frame in reversed(self.frames):
            if frame.kind in ("range", "with", "define") and frame.dot is not None:
                return frame.dot
        return None

