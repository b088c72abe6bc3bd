"""Go actions (if, range, with, variables, output) as Jinja statements."""

from __future__ import annotations

from typing import List, Sequence, Tuple

from ..markers import MARKER
from .common import PLACEHOLDER, Untranslatable
from .golex import Action, Comment, go_unquote
from .goparse import Parser
from .jinjatext import Val, comment_safe, escape_text, maybe_missing, one_line
from .ranges import Ranges, test_expr
from .scope import Binding, Frame


class Translator(Ranges):
    """Expressions plus the actions that open, continue and close blocks."""

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
        self.out.append(escape_text(text, last))

    def untranslated(self, item: Action, why: str) -> List[Tuple[str, str]]:
        self.problem(item.line, f"untranslated {one_line(item.source)}: {why}")
        return [("comment", f"{MARKER}: {comment_safe(one_line(item.source))} ({why})")]

    # -- actions

    def action(self, item: Action) -> None:
        self.line = item.line
        toks = item.tokens
        if not toks:
            self.emit(self.untranslated(item, "empty action"), item.ltrim, item.rtrim)
            return
        head = toks[0].text if toks[0].kind == "ident" else ""
        handler = {"if": self.a_if, "range": self.a_range, "with": self.a_with,
                   "else": self.a_else, "end": self.a_end, "define": self.a_define,
                   "block": self.a_define}.get(head)
        if handler is not None:
            handler(item)
            return
        try:
            tags = self.a_pipeline(item)
        except Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("expr", PLACEHOLDER)]
        self.emit(tags, item.ltrim, item.rtrim)

    def a_pipeline(self, item: Action) -> List[Tuple[str, str]]:
        head = item.tokens[0]
        if head.kind == "ident" and head.text == "template":
            return [("expr", self.template_call(item))]
        if head.kind == "ident" and head.text in ("break", "continue"):
            raise Untranslatable(f"{{{{{head.text}}}}} is not supported")
        parser = Parser(item.tokens)
        pipe = parser.pipeline()
        if not parser.at_end():
            raise Untranslatable("unbalanced parentheses")
        if not pipe.decl:
            return [("expr", self.output(self.pipe(pipe)))]
        if len(pipe.decl) > 1:
            raise Untranslatable("two variables outside range")
        go_name = pipe.decl[0]
        try:
            val = self.pipe(pipe)
        except Untranslatable as exc:
            if pipe.assign:
                raise
            # keep the variable declared so its uses are not reported again
            val = Val(PLACEHOLDER, "any")
            tags = self.untranslated(item, str(exc))
            return tags + self.declaration(go_name, val)
        if pipe.assign:
            binding = self.lookup(go_name)
            if binding is None:
                raise Untranslatable(f"assignment to undeclared {go_name}")
            if self.loop_depth() > binding.loop_depth:
                self.found_ns.add(binding.decl_id)
            binding.typ = val.typ if val.typ == binding.typ else "any"
            if (val.hint or val.literal) != binding.hint:
                binding.hint = None
            if binding.decl_id in self.ns_decls:
                return [("stmt", f"set {binding.name}.v = {val.expr}")]
            return [("stmt", f"set {binding.name} = {val.expr}")]
        return self.declaration(go_name, val)

    def declaration(self, go_name: str, val: Val) -> List[Tuple[str, str]]:
        binding = self.declare(go_name, val.typ, val.hint or val.literal)
        if binding.decl_id in self.ns_decls:
            return [("stmt", f"set {binding.name} = namespace(v={val.expr})")]
        return [("stmt", f"set {binding.name} = {val.expr}")]

    def cond(self, item: Action, skip: int) -> Val:
        parser = Parser(item.tokens[skip:])
        pipe = parser.pipeline(allow_decl=False)
        if not parser.at_end():
            raise Untranslatable("unbalanced parentheses")
        return self.pipe(pipe)

    def a_if(self, item: Action) -> None:
        try:
            tags = [("stmt", f"if {test_expr(self.cond(item, 1))}")]
        except Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("stmt", f"if {PLACEHOLDER}")]
        self.frames.append(Frame("if", item.line, closer="endif"))
        self.emit(tags, item.ltrim, item.rtrim)

    def a_with(self, item: Action) -> None:
        frame = Frame("with", item.line, closer="endif")
        try:
            parser = Parser(item.tokens[1:])
            pipe = parser.pipeline()
            if not parser.at_end() or pipe.assign or len(pipe.decl) > 1:
                raise Untranslatable("with takes a value or one $variable := value")
            val = self.pipe(pipe)
            go_name = pipe.decl[0] if pipe.decl else ""
            name = self.fresh(go_name[1:] if go_name else "it")
            decl_id = -1
            if go_name:  # {{with $x := ...}}: $x and dot are the value
                decl_id, self.decl_counter = self.decl_counter, self.decl_counter + 1
            frame.vars[go_name or f"$<with {name}>"] = Binding(name, val.typ, decl_id,
                                                               self.loop_depth(), val.hint)
            frame.dot = Val(name, val.typ)
            tags = [("stmt", f"set {name} = {val.expr}"), ("stmt", f"if {name}")]
        except Untranslatable as exc:
            tags = self.untranslated(item, str(exc)) + [("stmt", f"if {PLACEHOLDER}")]
        self.frames.append(frame)
        self.emit(tags, item.ltrim, item.rtrim)

    def a_range(self, item: Action) -> None:
        frame = Frame("range", item.line, closer="endfor")
        self.frames.append(frame)  # loop variables belong to the loop
        try:
            tags = self.range_tags(item, frame)
        except Untranslatable as exc:
            frame.vars.clear()
            frame.dot = None
            tags = self.untranslated(item, str(exc)) + [("stmt", f"for _ in {PLACEHOLDER}")]
        self.emit(tags, item.ltrim, item.rtrim)

    def a_else(self, item: Action) -> None:
        frame = self.frames[-1]
        if frame.kind not in ("if", "with", "range"):
            self.emit(self.untranslated(item, "else outside if/range/with"), item.ltrim, item.rtrim)
            return
        frame.vars.clear()
        frame.dot = None
        toks = item.tokens
        if len(toks) > 1 and toks[1].text == "if" and frame.kind == "if":
            try:
                tags = [("stmt", f"elif {test_expr(self.cond(item, 2))}")]
            except Untranslatable as exc:
                tags = self.untranslated(item, str(exc)) + [("stmt", f"elif {PLACEHOLDER}")]
        elif len(toks) > 1:
            tags = self.untranslated(item, "only {{else}} and {{else if}} are supported") + \
                [("stmt", f"elif {PLACEHOLDER}" if frame.kind != "range" else "else")]
        else:
            tags = [("stmt", "else")]
        self.emit(tags, item.ltrim, item.rtrim)

    def a_end(self, item: Action) -> None:
        if len(self.frames) == 1:
            self.emit(self.untranslated(item, "{{end}} without a block"), item.ltrim, item.rtrim)
            return
        frame = self.frames.pop()
        if frame.kind == "define":
            self.close_define()
            return
        self.emit([("stmt", frame.closer)], item.ltrim, item.rtrim)

    def close_define(self) -> None:
        self.out.append("{% endmacro %}")
        self.macros.append("".join(self.out))
        self.out = self.outer.pop()

    # -- {{define}}, {{block}}, {{template}}: Jinja macros taking dot

    def template_name(self, item: Action) -> str:
        """The macro name for the template a define/block/template action names."""
        toks = item.tokens
        if len(toks) < 2 or toks[1].kind not in ("str", "raw"):
            raise Untranslatable(f"{toks[0].text} needs a quoted template name")
        go_name = go_unquote(toks[1])
        return self.macro_names.setdefault(go_name, self.fresh("tpl_" + go_name))

    def template_call(self, item: Action) -> str:
        """{{template "x" pipeline}}: call the macro with the pipeline as its dot."""
        name = self.template_name(item)
        self.called.setdefault(name, item.line)
        val = Val("", "nil")  # no argument: dot is nil ("<no value>" printed)
        if len(item.tokens) > 2:
            parser = Parser(item.tokens[2:])
            val = self.pipe(parser.pipeline(allow_decl=False))
            if not parser.at_end():
                raise Untranslatable("unbalanced parentheses")
        known = self.macro_dots.get(name)
        self.macro_dots[name] = val.typ if known in (None, val.typ) else "any"
        return f"{name}({val.expr})"

    def a_define(self, item: Action) -> None:
        """The body becomes a macro written at the top (Go may call it before it is defined)."""
        try:
            name = self.template_name(item)
            call = self.template_call(item) if item.tokens[0].text == "block" else ""
        except Untranslatable as exc:
            self.emit(self.untranslated(item, str(exc)), item.ltrim, item.rtrim)
            self.frames.append(Frame("if", item.line, closer="endif"))
            self.emit([("stmt", "if false")], False, False)
            return
        if call:
            self.emit([("expr", call)], item.ltrim, item.rtrim)
        self.defined.add(name)
        typ = self.macro_dots.get(name, "any")
        dot = maybe_missing("dot") if typ in ("nil", "any") else Val("dot", typ)
        frame = Frame("define", item.line, closer="endmacro", dot=dot)
        frame.vars["$<define dot>"] = Binding("dot", typ, -1, self.loop_depth())
        self.frames.append(frame)
        self.outer.append(self.out)
        self.out = [f"{{% macro {name}(dot) %}}"]

    def comment(self, item: Comment) -> None:
        self.emit([("comment", comment_safe(item.text.strip()))], item.ltrim, item.rtrim)

    def finish(self) -> None:
        while len(self.frames) > 1:
            frame = self.frames.pop()
            self.problem(frame.line, f"{frame.kind} block is never closed with {{{{end}}}}")
            if frame.kind == "define":
                self.close_define()
            elif frame.closer:
                self.out.append(f"{{% {frame.closer} %}}")
        for go_name, name in self.macro_names.items():
            if name in self.called and name not in self.defined:
                self.problem(self.called[name], f"template {go_name!r} is never defined")

    def text_out(self) -> str:
        """The Jinja template: the macros first, then the body."""
        return "".join(self.macros + self.out)

