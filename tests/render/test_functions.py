"""render.functions and render.filters: exact bytes out of templates."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from imdsrender.errors import Error
from imdsrender.fetch import FetchFailed
from imdsrender.render import (
    Pair,
    Rendered,
    RenderError,
    render,
)
from tests.render.support import (
    SEED_KEYS,
    SEED_TEMPLATE,
    SEED_VALUES,
    one_template,
    snap,
)

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
