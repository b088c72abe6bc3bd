"""config.scan and config.templates: keys derived from the Jinja AST, include closures."""

from __future__ import annotations

import os
import textwrap

import pytest

from imdsrender.config import (
    derive_keys,
    load_resources,
    template_closure,
)
from imdsrender.config import templates as config_templates
from tests.config.support import Build, error_of, one

# ------------------------------------------------------------ derived keys

@pytest.mark.parametrize("call,key", [
    ('getv("/meta-data/instance-id")', "/meta-data/instance-id"),
    ("getv('/instance-id', 'none')", "/meta-data/instance-id"),
    ('getv(key="/latest/meta-data/ami-id")', "/meta-data/ami-id"),
    ('exists("/meta-data/public-ipv4")', "/meta-data/public-ipv4"),
    ('exists("/user-data")', "/user-data"),
    ('getvs("/meta-data/tags/instance/*")', "/meta-data/tags/instance/"),
    ('gets("/tags/instance/Env*")', "/meta-data/tags/instance/"),
    ('getvs("/meta-data/network/interfaces/macs/*/local-ipv4s")',
     "/meta-data/network/interfaces/macs/"),
    ('gets("/meta-data/placement/region")', "/meta-data/placement/region"),
    ('ls("/meta-data/tags/instance")', "/meta-data/tags/instance/"),
    ('ls("/meta-data/tags/instance/")', "/meta-data/tags/instance/"),
    ('lsdir("/network/interfaces/macs")', "/meta-data/network/interfaces/macs/"),
    ('json("/dynamic/instance-identity/document")', "/dynamic/instance-identity/document"),
    ('getv("/meta-data/" ~ "instance-type")', "/meta-data/instance-type"),
    ('getv("/meta-data/" + "mac")', "/meta-data/mac"),
])
def test_derived_key_for_each_function(call: str, key: str) -> None:
    assert derive_keys("{{ " + call + " }}", "x.j2") == (key,)


def test_derived_keys_from_every_kind_of_statement() -> None:
    source = textwrap.dedent("""\
        {% if exists("/meta-data/public-ipv4") %}pub={{ getv("/meta-data/public-ipv4") }}{% endif %}
        {% for name in ls("/meta-data/tags/instance/") %}{{ name }}{% endfor %}
        {% set doc = json("/dynamic/instance-identity/document") %}
        {% macro m() %}{{ getv("/meta-data/hostname") }}{% endmacro %}
        {{ m() }}{{ getv("/placement/region") | upper }}
        {% for ls in [1] %}{{ ls }}{% endfor %}
        """)
    assert derive_keys(source, "x.j2") == (
        "/dynamic/instance-identity/document", "/meta-data/hostname",
        "/meta-data/placement/region", "/meta-data/public-ipv4", "/meta-data/tags/instance/")


def test_no_calls_no_keys() -> None:
    assert derive_keys("static {{ 1 + 1 }}\n", "x.j2") == ()


@pytest.mark.parametrize("source,line,what", [
    ('a\n\n{% for t in ls("/tags/instance/") %}{{ getv("/tags/instance/" ~ t) }}{% endfor %}',
     3, "key of getv() is not a literal"),
    ("{{ exists(k) }}", 1, "key of exists() is not a literal"),
    ("{{ getvs(p) }}", 1, "key of getvs() is not a literal"),
    ("{{ getv(*args) }}", 1, "key of getv() is not a literal"),
    ("\n{% set f = getv %}{{ f('/x') }}", 2, "getv is used other than as a direct call getv(...)"),
    ("{{ ls(['/a']) }}", 1, "key of ls() is not a string; write ls(\"...\")"),
    ("{{ getv() }}", 1, "getv() has no key argument; write getv(\"/meta-data/...\")"),
    ('{% include name %}', 1, "template name is not a literal"),
])
def test_underivable_keys_are_errors(source: str, line: int, what: str) -> None:
    message = error_of(derive_keys, source, "x.j2", origin="conf.d/app.yaml:3")
    if ";" not in what:
        what += ("; list the keys under keys: in conf.d/app.yaml:3 (a directory key such as "
                 "/meta-data/tags/instance/ covers everything below it)")
    assert message == f"templates/x.j2:{line}: {what}"


def test_invalid_literal_key() -> None:
    assert error_of(derive_keys, '{{ getv("/a/%2e%2e/b") }}', "x.j2") == (
        "templates/x.j2:1: invalid key '/a/%2e%2e/b': '%2e%2e' is not allowed in a key; "
        "write the plain metadata path, e.g. /meta-data/instance-id")


def test_pattern_without_a_directory() -> None:
    assert error_of(derive_keys, '{{ getvs("*") }}', "x.j2") == (
        "templates/x.j2:1: invalid key '*': a pattern needs a directory before its first "
        "wildcard; write e.g. /meta-data/tags/instance/*")


def test_template_syntax_error_names_template_and_line(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "ok\n{{ getv('/x') }}\n{% if %}\n"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:3: Expected an expression, got 'end of statement block'")


def test_syntax_is_checked_even_when_keys_are_given(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       "    keys: [/x]\n",
                    "templates/a.j2": "{% include 'inc.j2' %}",
                    "templates/inc.j2": "\n{{ getv('/x') }\n"})
    assert error_of(load_resources, root) == "templates/inc.j2:2: unexpected '}'"


def test_given_keys_are_not_derived(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                            "    keys: [/tags/instance/, /tags/instance/]\n",
                   {"a.j2": '{% for t in ls("/tags/instance/") %}'
                            '{{ getv("/tags/instance/" ~ t) }}{% endfor %}'})
    assert resource.keys == ("/meta-data/tags/instance/",)


def test_underivable_resource_error_points_at_the_resource(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "{{ getv(k) }}"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:1: key of getv() is not a literal; list the keys under keys: in "
        "conf.d/app.yaml:2 (a directory key such as /meta-data/tags/instance/ covers "
        "everything below it)")


def test_includes_imports_and_extends_are_followed(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n", {
        "a.j2": '{% extends "base.j2" %}{% block b %}{% include "inc.j2" %}{% endblock %}',
        "base.j2": '{{ getv("/ami-id") }}{% block b %}{% endblock %}'
                   '{% import "lib/m.j2" as m with context %}'
                   '{% from "lib/n.j2" import f with context %}',
        "inc.j2": '{{ getv("/instance-id") }}{% include ["nope.j2", "alt.j2"] %}'
                  '{% include "missing.j2" ignore missing %}{% include "a.j2" %}',
        "alt.j2": '{{ getv("/mac") }}',
        "lib/m.j2": '{% macro x() %}{{ getv("/hostname") }}{% endmacro %}',
        "lib/n.j2": '{% macro f() %}{{ getv("/local-ipv4") }}{% endmacro %}',
    })
    assert resource.keys == ("/meta-data/ami-id", "/meta-data/hostname",
                             "/meta-data/instance-id", "/meta-data/local-ipv4", "/meta-data/mac")
    root = os.path.dirname(os.path.dirname(resource.src))
    assert template_closure(os.path.join(root, "templates"), "a.j2") == (
        "a.j2", "base.j2", "inc.j2", "lib/m.j2", "lib/n.j2", "alt.j2")
    assert resource.closure == template_closure(os.path.join(root, "templates"), "a.j2")


def test_resource_with_listed_keys_still_carries_its_closure(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n    keys: [/x]\n", {
        "a.j2": "{% include 'b.j2' %}", "b.j2": "{% include 'c.j2' %}", "c.j2": "z"})
    assert (resource.keys, resource.closure) == (("/meta-data/x",), ("a.j2", "b.j2", "c.j2"))


def test_missing_include_names_the_including_line(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "x\n\n{% include 'nope.j2' %}\n"})
    assert error_of(load_resources, root) == (
        f"templates/a.j2:3: template 'nope.j2' does not exist; looked in {root}/templates")


def test_import_without_context_cannot_reach_the_functions(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "\n{% import 'm.j2' as m %}{{ m.x() }}",
                    "templates/m.j2": "{% macro x() %}{{ getv('/x') }}{% endmacro %}"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:2: 'm.j2' is imported without context, so its getv() cannot see the "
        "metadata; write {% import 'm.j2' as ... with context %}")


def test_import_without_context_of_a_plain_macro_file_is_fine(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n", {
        "a.j2": "{% import 'm.j2' as m %}{{ m.x(getv('/x')) }}",
        "m.j2": "{% macro x(v) %}[{{ v }}]{% endmacro %}"})
    assert resource.keys == ("/meta-data/x",)


def test_each_template_is_parsed_once(confdir: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n" + "".join(
        f"  - src: a.j2\n    dest: /etc/{i}\n" for i in range(5)),
        "templates/a.j2": "{{ getv('/x') }}{% include 'i.j2' %}", "templates/i.j2": ""})
    seen = []
    real = config_templates.scan_template
    monkeypatch.setattr(config_templates, "scan_template",
                        lambda env, src, name: seen.append(name) or real(env, src, name))
    assert len(load_resources(root)) == 5
    assert seen == ["a.j2", "i.j2"]
