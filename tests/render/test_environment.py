"""render.environment: the Jinja environment, and check compiling every template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Iterable, Tuple

import jinja2
import pytest

from imdsrender.config import ConfigError, Resource, template_closure
from imdsrender.render import (
    check_templates,
)
from tests.render.support import (
    Templates,
    one_template,
    snap,
)


def test_environment_settings(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "<{{ '<&>' }}>\n")
    env = templates.env
    assert env.undefined is jinja2.StrictUndefined
    assert env.keep_trailing_newline and not env.autoescape
    assert templates.render("t.j2", snap(), keys=()).content == b"<<&>>\n"
    assert env.get_template("t.j2") is env.get_template("t.j2")  # compiled once


# ---------------------------------------------------------- check_templates

def resources_for(templates: Templates, names: Iterable[str],
                  follow: bool = True) -> Tuple[Resource, ...]:
    """Resources as config loads them: with their include closure (*follow*), or bare."""
    return tuple(templates.resource(n, keys=(), closure=template_closure(str(templates.dir), n)
                                    if follow else ()) for n in names)


def test_check_templates_passes_good_templates(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {"a.j2": "{% include 'b.j2' %}{{ 'x' | b64encode }}",
                                     "b.j2": "{{ getv('/x') }}"})
    check_templates(templates.env, resources_for(templates, ["a.j2", "b.j2", "a.j2"]))


def test_check_templates_finds_unknown_filters_in_includes(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {"a.j2": "ok\n{% include 'b.j2' %}",
                                     "b.j2": "\n\n{{ getv('/x') | nosuch }}"})
    with pytest.raises(ConfigError) as info:
        check_templates(templates.env, resources_for(templates, ["a.j2"]))
    # Jinja 3 says "No filter named 'nosuch'.", Jinja 2.11 "no filter named 'nosuch'"
    assert str(info.value).lower().rstrip(".") == "templates/b.j2:3: no filter named 'nosuch'"


def test_check_templates_syntax_error(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {"a.j2": "{% for %}"})
    with pytest.raises(ConfigError) as info:
        check_templates(templates.env, resources_for(templates, ["a.j2"]))
    assert str(info.value).startswith("templates/a.j2:1: ")


def test_check_templates_missing_and_not_utf8(tmp_path: Path) -> None:
    templates = Templates(tmp_path, {})
    (templates.dir / "bad.j2").write_bytes(b"\xff")
    # follow=False: check_templates' own compile, not config's parse, must catch these.
    with pytest.raises(ConfigError) as info:
        check_templates(templates.env, resources_for(templates, ["gone.j2"], follow=False))
    assert str(info.value) == (
        f"templates/gone.j2: template does not exist; looked in {templates.dir}")
    with pytest.raises(ConfigError) as info:
        check_templates(templates.env, resources_for(templates, ["bad.j2"], follow=False))
    assert str(info.value) == "templates/bad.j2: not valid UTF-8; save it as UTF-8"
    # Loaded by config, the same file fails there first, with the byte.
    with pytest.raises(ConfigError) as info:
        resources_for(templates, ["bad.j2"])
    assert str(info.value) == "templates/bad.j2:1: not valid UTF-8 (byte 1 of the file); " \
                              "save the file as UTF-8"


def test_check_templates_compiles_the_closure_the_resource_carries(tmp_path: Path) -> None:
    """Includes come from Resource.closure: render never parses them again to find them."""
    templates = Templates(tmp_path, {"a.j2": "{% include 'b.j2' %}", "b.j2": "{{ x | nosuch }}"})
    check_templates(templates.env, [templates.resource("a.j2", keys=())])  # a.j2 alone compiles
    with pytest.raises(ConfigError, match="templates/b.j2:1: (?i:no filter named 'nosuch')"):
        check_templates(templates.env, [templates.resource("a.j2", keys=(),
                                                           closure=("a.j2", "b.j2"))])


def test_render_never_imports_config() -> None:
    code = ("import sys, imdsrender.render\n"
            "print(','.join(m for m in ('imdsrender.config', 'yaml') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == ""
