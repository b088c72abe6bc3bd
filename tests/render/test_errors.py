"""render.errors: every failure one exact line naming template:line."""

from __future__ import annotations

from pathlib import Path

from tests.render.support import (
    Templates,
    one_template,
    snap,
)

# ---------------------------------------------------- templates and errors

def test_include_sees_the_functions_and_errors_name_the_included_file(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {"t.j2": 'top\n{% include "sub/inc.j2" %}',
                                     "sub/inc.j2": 'a={{ getv("/a") }}\n\nb={{ getv("/b") }}\n'})
    assert templates.render("t.j2", snap({"/meta-data/a": b"1", "/meta-data/b": b"2"})).content \
        == b"top\na=1\n\nb=2\n"
    assert templates.error("t.j2", snap({"/meta-data/a": b"1"})) == (
        "templates/sub/inc.j2:3: key /meta-data/b is missing (IMDS has no such path); "
        "give getv() a default, or test it with exists() first")


def test_macros_imported_with_context_see_the_functions(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {
        "t.j2": '{% import "m.j2" as m with context %}{{ m.row("/a") }}',
        "m.j2": '{% macro row(k) %}{{ k }}={{ getv(k) }}{% endmacro %}'})
    out = templates.render("t.j2", snap({"/meta-data/a": b"1"}), keys=["/meta-data/a"])
    assert out.content == b"/a=1"


def test_macros_imported_without_context_get_a_hint(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {
        "t.j2": '{% import "m.j2" as m %}{{ m.row("/a") }}',
        "m.j2": '{% macro row(k) %}\n{{ getv(k) }}{% endmacro %}'})
    assert templates.error("t.j2", snap({"/meta-data/a": b"1"}), keys=["/meta-data/a"]) == (
        "templates/m.j2:2: 'getv' is undefined; a macro file must be imported 'with context' "
        "to use the template functions")


def test_undefined_variables_are_errors(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "a\n{{ nope }}")
    assert templates.error("t.j2", snap()) == (
        "templates/t.j2:2: 'nope' is undefined; define it, or test it with 'is defined' first")
    templates = one_template(tmp_path, '{{ json("/d").missing }}')
    assert templates.error("t.j2", snap({"/meta-data/d": b"{}"})) == (
        "templates/t.j2:1: 'dict object' has no attribute 'missing'; "
        "define it, or test it with 'is defined' first")


def test_python_errors_in_templates_are_one_line(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "\n\n{{ 1 // 0 }}")
    assert templates.error("t.j2", snap()) == (
        "templates/t.j2:3: ZeroDivisionError: integer division or modulo by zero")
    templates = one_template(tmp_path, "{{ getv(5) }}")
    assert templates.error("t.j2", snap(), keys=["/meta-data/"]) == (
        "templates/t.j2:1: getv() needs a key string, not int")


def test_key_with_hostile_characters_at_render_time(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{% set k = "/a?b" %}{{ getv(k) }}')
    assert templates.error("t.j2", snap(), keys=["/meta-data/"]) == (
        "templates/t.j2:1: invalid key '/a?b': 'a?b' is not allowed in a key; "
        "write the plain metadata path, e.g. /meta-data/instance-id")


def test_unencodable_output(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ json("/d").s }}')
    assert templates.error("t.j2", snap({"/meta-data/d": b'{"s": "\\ud800"}'})) == (
        "templates/t.j2: output holds text that is not encodable as UTF-8; "
        "check the values that are written out")


def test_missing_include_at_render_time(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "x\n{% include 'gone.j2' %}")
    assert templates.error("t.j2", snap(), keys=()) == (
        f"templates/t.j2:2: template 'gone.j2' does not exist; looked in {templates.dir}")


def test_syntax_error_at_render_time(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "x\n{% if %}")
    assert templates.error("t.j2", snap(), keys=()) == (
        "templates/t.j2:2: Expected an expression, got 'end of statement block'; "
        "run imdsrender check")


def test_renders_are_independent(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/a") }}')
    first = templates.render("t.j2", snap({"/meta-data/a": b"1"}))
    second = templates.render("t.j2", snap({"/meta-data/a": b"2"}))
    assert (first.content, second.content) == (b"1", b"2")
