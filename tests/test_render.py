"""render.py: exact bytes out of templates, exact one-line errors with template:line."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Iterable, Mapping, Optional, Tuple

import jinja2
import pytest

from imdsrender.config import ConfigError, Resource, derive_keys, template_closure
from imdsrender.errors import Error
from imdsrender.fetch import FetchFailed, Snapshot
from imdsrender.render import (
    Pair,
    Rendered,
    RenderError,
    check_templates,
    make_environment,
    render,
)

ORIGIN = "conf.d/app.yaml:2"

SEED_TEMPLATE = """\
# Instance Configuration
instance_id={{ getv("/meta-data/instance-id") }}
instance_type={{ getv("/meta-data/instance-type") }}
ami_id={{ getv("/meta-data/ami-id") }}
name={{ getv("/meta-data/tags/instance/Name") }}
environment={{ getv("/meta-data/tags/instance/Environment") }}
availability_zone={{ getv("/meta-data/placement/availability-zone") }}
local_ip={{ getv("/meta-data/local-ipv4") }}
"""

SEED_KEYS = (
    "/meta-data/instance-id",
    "/meta-data/instance-type",
    "/meta-data/ami-id",
    "/meta-data/tags/instance/Name",
    "/meta-data/tags/instance/Environment",
    "/meta-data/placement/availability-zone",
    "/meta-data/local-ipv4",
)

SEED_VALUES = {
    "/meta-data/instance-id": b"i-1234567890abcdef0",
    "/meta-data/instance-type": b"t3.micro",
    "/meta-data/ami-id": b"ami-0abcdef1234567890",
    "/meta-data/tags/instance/Name": b"web-1",
    "/meta-data/tags/instance/Environment": b"production",
    "/meta-data/placement/availability-zone": b"us-east-1a",
    "/meta-data/local-ipv4": b"10.0.1.23",
}


class Templates:
    """A templates/ directory in tmp_path plus the environment over it."""

    def __init__(self, root: Path, files: Mapping[str, str]) -> None:
        self.dir = root / "templates"
        for name, text in files.items():
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        self.dir.mkdir(exist_ok=True)
        self.env = make_environment(str(self.dir))

    def resource(self, name: str, keys: Optional[Iterable[str]] = None,
                 closure: Tuple[str, ...] = ()) -> Resource:
        """A Resource for *name*; keys derived like config does when not given."""
        if keys is None:
            source = (self.dir / name).read_text()
            derived = derive_keys(source, name, origin=ORIGIN, templates_dir=str(self.dir))
        else:
            derived = tuple(keys)
        return Resource(origin=ORIGIN, src=str(self.dir / name), template=name,
                        dest="/etc/app/out", keys=derived, closure=closure)

    def render(self, name: str, snapshot: Snapshot, keys: Optional[Iterable[str]] = None
               ) -> Rendered:
        return render(self.env, self.resource(name, keys), snapshot)

    def error(self, name: str, snapshot: Snapshot, keys: Optional[Iterable[str]] = None) -> str:
        with pytest.raises(RenderError) as info:
            self.render(name, snapshot, keys)
        assert "\n" not in str(info.value)
        return str(info.value)


def snap(values: Mapping[str, bytes] = (), listings: Mapping[str, Tuple[str, ...]] = (),
         errors: Mapping[str, str] = (), requested: Tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(values=dict(values), listings=dict(listings), errors=dict(errors),
                    requested=requested)


def one_template(tmp_path: Path, text: str, name: str = "t.j2", **extra: str) -> Templates:
    return Templates(tmp_path, {name: text, **extra})


# -------------------------------------------------------------------- seed

def test_seed_instance_example_renders_byte_exact(tmp_path: Path) -> None:
    templates = one_template(tmp_path, SEED_TEMPLATE, name="instance.tmpl")
    resource = templates.resource("instance.tmpl", SEED_KEYS)
    out = render(templates.env, resource, snap(SEED_VALUES, requested=SEED_KEYS))
    assert out == Rendered(content=(
        b"# Instance Configuration\n"
        b"instance_id=i-1234567890abcdef0\n"
        b"instance_type=t3.micro\n"
        b"ami_id=ami-0abcdef1234567890\n"
        b"name=web-1\n"
        b"environment=production\n"
        b"availability_zone=us-east-1a\n"
        b"local_ip=10.0.1.23\n"), sensitive=False)


def test_seed_example_derives_the_seed_keys(tmp_path: Path) -> None:
    templates = one_template(tmp_path, SEED_TEMPLATE)
    assert templates.resource("t.j2").keys == tuple(sorted(SEED_KEYS))
    assert templates.render("t.j2", snap(SEED_VALUES)).content.startswith(b"# Instance")


# ------------------------------------------------------------------ values

def test_multi_line_values_and_trailing_newlines_are_kept(tmp_path: Path) -> None:
    templates = one_template(tmp_path, 'a={{ getv("/meta-data/local-ipv4s") }}|\n\n')
    value = b"10.0.0.1\n10.0.0.2\r\n\n"
    out = templates.render("t.j2", snap({"/meta-data/local-ipv4s": value}))
    assert out.content == b"a=10.0.0.1\n10.0.0.2\r\n\n|\n\n"


def test_binary_values_round_trip_exactly(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/user-data") }}')
    data = bytes(range(256)) + b"\xc3\x28\xe2\x82\xac\xed\xa0\x80"
    assert templates.render("t.j2", snap({"/user-data": data})).content == data


def test_template_text_is_utf8(tmp_path: Path) -> None:
    templates = one_template(tmp_path, 'é {{ getv("/x") }} €\n')
    assert templates.render("t.j2", snap({"/meta-data/x": "ü".encode()})).content == (
        "é ü €\n".encode())


def test_keys_are_normalised_in_calls(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{{ getv("/instance-id") }} {{ getv("/latest/meta-data/instance-id") }} '
                  '{{ getv("meta-data/instance-id") }}')
    out = templates.render("t.j2", snap({"/meta-data/instance-id": b"i-1"}),
                           keys=["/meta-data/instance-id"])
    assert out.content == b"i-1 i-1 i-1"


def test_default_only_when_absent(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '[{{ getv("/a", "dflt") }}][{{ getv("/b", "dflt") }}][{{ getv("/c", none) }}]')
    out = templates.render("t.j2", snap({"/meta-data/a": b""}))
    assert out.content == b"[][dflt][None]"


def test_missing_without_default_names_key_and_template_line(tmp_path: Path) -> None:
    templates = one_template(tmp_path, 'a\nb={{ getv("/meta-data/tags/instance/Name") }}\n')
    assert templates.error("t.j2", snap()) == (
        "templates/t.j2:2: key /meta-data/tags/instance/Name is missing (IMDS has no such "
        "path); give getv() a default, or test it with exists() first")


def test_getv_on_a_directory(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/tags/instance") }}')
    snapshot = snap(listings={"/meta-data/tags/instance/": ()})
    assert templates.error("t.j2", snapshot, keys=["/meta-data/tags/instance/"]) == (
        "templates/t.j2:1: key /meta-data/tags/instance is a directory; "
        "use ls(), getvs() or gets() on it")
    templates = one_template(tmp_path, '{{ getv("/tags/instance/") }}')
    assert templates.error("t.j2", snapshot, keys=["/meta-data/tags/instance/"]) == (
        "templates/t.j2:1: key /meta-data/tags/instance/ is a directory; "
        "use ls(), getvs() or gets() on it")


def test_key_outside_the_resource_keys_is_refused_even_if_fetched(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '\n\n{{ getv("/meta-data/ami-id") }}')
    snapshot = snap({"/meta-data/ami-id": b"ami-1", "/meta-data/instance-id": b"i-1"})
    assert templates.error("t.j2", snapshot, keys=["/meta-data/instance-id"]) == (
        "templates/t.j2:3: key /meta-data/ami-id is not in keys: of conf.d/app.yaml:2; add it")


def test_key_under_a_directory_key_is_allowed(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/tags/instance/Name") }}')
    out = templates.render("t.j2", snap({"/meta-data/tags/instance/Name": b"web"}),
                           keys=["/meta-data/tags/instance/"])
    assert out.content == b"web"


def test_key_not_in_the_fetch_plan(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/x", "d") }}')
    assert templates.error("t.j2", snap(requested=("/meta-data/y",))) == (
        "templates/t.j2:1: key /meta-data/x was not fetched in this run; "
        "the fetch plan must include every resource's keys")


def test_fetch_errors_name_key_and_template(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/x", "never used") }}')
    snapshot = snap(errors={"/meta-data/x": "HTTP 500 after 3 retries"})
    assert templates.error("t.j2", snapshot) == (
        "templates/t.j2:1: key /meta-data/x could not be fetched (/meta-data/x: HTTP 500 "
        "after 3 retries); see the earlier log lines for the IMDS error")
    assert issubclass(RenderError, Error) and RenderError.exit_code == 1
    assert not issubclass(RenderError, FetchFailed)


def test_fetch_error_of_a_directory_reaches_ls_and_getvs(tmp_path: Path) -> None:
    snapshot = snap(errors={"/meta-data/tags/instance/": "connection reset"})
    for call in ('ls("/tags/instance/")', 'getvs("/tags/instance/*")'):
        templates = one_template(tmp_path, "{{ " + call + " }}")
        assert templates.error("t.j2", snapshot).startswith(
            "templates/t.j2:1: key /meta-data/tags/instance/ could not be fetched (")


# --------------------------------------------------------------- functions

TAGS = {
    "/meta-data/tags/instance/Name": b"web-1",
    "/meta-data/tags/instance/Environment": b"prod",
    "/meta-data/tags/instance/Team": b"ops",
}
TAG_LISTINGS = {"/meta-data/tags/instance/": tuple(sorted(TAGS))}
MACS = {
    "/meta-data/network/interfaces/macs/": (
        "/meta-data/network/interfaces/macs/0e:02/", "/meta-data/network/interfaces/macs/0e:01/",
        "/meta-data/network/interfaces/macs/readme"),
    "/meta-data/network/interfaces/macs/0e:01/": (
        "/meta-data/network/interfaces/macs/0e:01/local-ipv4s",),
    "/meta-data/network/interfaces/macs/0e:02/": (
        "/meta-data/network/interfaces/macs/0e:02/local-ipv4s",),
}
MAC_VALUES = {
    "/meta-data/network/interfaces/macs/0e:01/local-ipv4s": b"10.0.0.1",
    "/meta-data/network/interfaces/macs/0e:02/local-ipv4s": b"10.0.0.9\n10.0.0.2",
    "/meta-data/network/interfaces/macs/readme": b"x",
}


def test_exists(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{{ exists("/a") }} {{ exists("/b") }} {{ exists("/tags/instance/") }} '
                  '{{ exists("/empty") }}')
    out = templates.render("t.j2", snap({"/meta-data/a": b"1", "/meta-data/empty": b""},
                                        TAG_LISTINGS))
    assert out.content == b"True False True True"


def test_getvs_are_sorted_values(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getvs("/tags/instance/*") | join(",") }}|'
                                       '{{ getvs("/tags/instance/N*") }}|'
                                       '{{ getvs("/tags/instance/Nope*") }}')
    out = templates.render("t.j2", snap(TAGS, TAG_LISTINGS))
    assert out.content == b"ops,prod,web-1|['web-1']|[]"


def test_gets_are_pairs_sorted_by_key(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, "{% for p in gets('/tags/instance/*') %}{{ p.key }}={{ p.value }};"
                  "{{ p.Key[25:] }}={{ p.Value }}\n{% endfor %}")
    out = templates.render("t.j2", snap(TAGS, TAG_LISTINGS))
    assert out.content == (b"/meta-data/tags/instance/Environment=prod;Environment=prod\n"
                           b"/meta-data/tags/instance/Name=web-1;Name=web-1\n"
                           b"/meta-data/tags/instance/Team=ops;Team=ops\n")
    assert Pair("k", "v").Key == "k" and Pair("k", "v").Value == "v"


def test_glob_across_directories(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{{ getvs("/network/interfaces/macs/*/local-ipv4s") | join(" ") }}')
    out = templates.render("t.j2", snap(MAC_VALUES, MACS))
    assert out.content == b"10.0.0.1 10.0.0.9\n10.0.0.2"


def test_ls_and_lsdir(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{{ ls("/network/interfaces/macs") }}{{ lsdir("/network/interfaces/macs/") }}'
                  '{{ ls("/tags/instance/") }}{{ lsdir("/tags/instance") }}')
    keys = ["/meta-data/network/interfaces/macs/", "/meta-data/tags/instance/"]
    out = templates.render("t.j2", snap({}, {**MACS, **TAG_LISTINGS}), keys=keys)
    assert out.content == (b"['0e:01', '0e:02', 'readme']['0e:01', '0e:02']"
                           b"['Environment', 'Name', 'Team'][]")


def test_ls_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ ls("/tags/instance/") }}{{ lsdir("/tags/instance/") }}')
    assert templates.render("t.j2", snap()).content == b"[][]"


def test_json(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{% set d = json("/dynamic/instance-identity/document") %}'
                  '{{ d.region }} {{ d["accountId"] }} {{ json("/nope", {}) }}')
    doc = b'{\n  "region" : "eu-west-1",\n  "accountId" : "123456789012"\n}'
    out = templates.render("t.j2", snap({"/dynamic/instance-identity/document": doc}))
    assert out.content == b"eu-west-1 123456789012 {}"


def test_json_errors_name_the_key(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '\n{{ json("/meta-data/iam/info") }}')
    assert templates.error("t.j2", snap({"/meta-data/iam/info": b"{oops"})) == (
        "templates/t.j2:2: key /meta-data/iam/info is not valid JSON (Expecting property name "
        "enclosed in double quotes at line 1 column 2)")
    assert templates.error("t.j2", snap()) == (
        "templates/t.j2:2: key /meta-data/iam/info is missing (IMDS has no such path); "
        "give json() a default, or test it with exists() first")


def test_filters(tmp_path: Path) -> None:
    templates = one_template(
        tmp_path, '{{ (getv("/x") | fromjson).a }} {{ getv("/b") | b64decode }} '
                  '{{ "hé" | b64encode }} {{ getv("/u") | b64encode | b64decode }}')
    raw = b"\xff\xfebin"
    out = templates.render("t.j2", snap({
        "/meta-data/x": b'{"a": [1, 2]}',
        "/meta-data/b": base64.encodebytes(b"multi\nline secret " * 5),
        "/meta-data/u": raw}))
    assert out.content == (b"[1, 2] " + b"multi\nline secret " * 5 + b" aMOp " + raw)


@pytest.mark.parametrize("text,what", [
    ('{{ "{x" | fromjson }}', "fromjson: not valid JSON (Expecting property name enclosed in "
                              "double quotes at line 1 column 2)"),
    ('{{ "a$b" | b64decode }}', "b64decode: not valid base64 ("),
    ('{{ "abc" | b64decode }}', "b64decode: not valid base64 (Incorrect padding)"),
])
def test_filter_errors(tmp_path: Path, text: str, what: str) -> None:
    templates = one_template(tmp_path, "\n" + text)
    assert templates.error("t.j2", snap()).startswith(f"templates/t.j2:2: {what}")


# --------------------------------------------------------------- sensitive

@pytest.mark.parametrize("text,sensitive", [
    ('{{ json("/meta-data/iam/security-credentials/app").Token }}', True),
    ('{{ getvs("/meta-data/iam/security-credentials/*") }}', True),
    ('{{ getv("/meta-data/identity-credentials/ec2/info", "") }}', True),
    ('{{ ls("/meta-data/iam/security-credentials/") }}', True),
    ('{{ getv("/meta-data/iam/info", "") }}', False),
    ('{% if false %}{{ getv("/meta-data/iam/security-credentials/app") }}{% endif %}', False),
])
def test_sensitive_when_a_credentials_path_is_read(tmp_path: Path, text: str,
                                                   sensitive: bool) -> None:
    templates = one_template(tmp_path, text)
    creds = {"/meta-data/iam/security-credentials/app": b'{"Token": "secret"}'}
    listings = {"/meta-data/iam/security-credentials/": tuple(creds)}
    out = templates.render("t.j2", snap(creds, listings))
    assert out.sensitive is sensitive


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


def test_environment_settings(tmp_path: Path) -> None:
    templates = one_template(tmp_path, "<{{ '<&>' }}>\n")
    env = templates.env
    assert env.undefined is jinja2.StrictUndefined
    assert env.keep_trailing_newline and not env.autoescape
    assert templates.render("t.j2", snap(), keys=()).content == b"<<&>>\n"
    assert env.get_template("t.j2") is env.get_template("t.j2")  # compiled once


def test_renders_are_independent(tmp_path: Path) -> None:
    templates = one_template(tmp_path, '{{ getv("/a") }}')
    first = templates.render("t.j2", snap({"/meta-data/a": b"1"}))
    second = templates.render("t.j2", snap({"/meta-data/a": b"2"}))
    assert (first.content, second.content) == (b"1", b"2")


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

