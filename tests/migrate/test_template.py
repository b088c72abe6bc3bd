"""imdsrender.migrate: confd Go templates -> Jinja2, and the converted corpus rendered.

The expected outputs below are written by hand from confd's documented
semantics (Go text/template, confd's template functions, confd 0.40's
prefix rules), not produced by our own code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Dict, List

import jinja2
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from imdsrender.config import ImdsSettings, load_resources
from imdsrender.emulator import Emulator
from imdsrender.fetch import Plan, fetch
from imdsrender.imds.client import ImdsClient
from imdsrender.migrate import (
    MARKER,
    convert_template,
    migrate_confdir,
)
from imdsrender.render import make_environment, render

CORPUS = Path(__file__).parent.parent / "data" / "confd"

FIXTURE: Dict[str, str] = {
    "/meta-data/instance-id": "i-0abc",
    "/meta-data/instance-type": "t3.micro",
    "/meta-data/ami-id": "ami-0123",
    "/meta-data/local-ipv4": "10.0.1.23",
    "/meta-data/mac": "0a:1b:2c:3d:4e:5f",
    "/meta-data/security-groups": "web\ndefault",
    "/meta-data/tags/instance/Name": "web-1",
    "/meta-data/tags/instance/Environment": "production",
    "/meta-data/tags/instance/Team": "Platform",
    "/meta-data/placement/availability-zone": "us-east-1a",
    "/meta-data/placement/region": "us-east-1",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/local-ipv4s": "10.0.1.23\n10.0.1.24",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/subnet-id": "subnet-aaa",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/vpc-id": "vpc-111",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/local-ipv4s": "10.0.2.45",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/subnet-id": "subnet-bbb",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/vpc-id": "vpc-111",
    "/dynamic/instance-identity/document": (
        '{"region": "us-east-1", "accountId": "123456789012", "devpayProductCodes": null,'
        ' "marketplaceProductCodes": ["abc"], "instanceType": "t3.micro"}'),
}

# What confd renders from FIXTURE, worked out by hand.
EXPECTED_MAIN: Dict[str, str] = {
    "/etc/app/instance.conf": (
        "# Instance Configuration\n"
        "instance_id=i-0abc\n"
        "instance_type=t3.micro\n"
        "ami_id=ami-0123\n"
        "name=web-1\n"
        "environment=production\n"
        "availability_zone=us-east-1a\n"
        "local_ip=10.0.1.23\n"),
    "/etc/app/region.conf": (
        "region=us-east-1\n"
        "az=us-east-1a\n"
        "endpoint=https://api.us-east-1.amazonaws.com\n"),
    # gets is sorted by key, getvs by value (byte order: "P" < "p" < "w");
    # "{{- range" eats the newline after the first loop, "{{- end}}" the one
    # ending each getvs iteration.
    "/etc/app/tags.conf": (
        "\n"
        "Environment=production\n"
        "Name=web-1\n"
        "Team=Platform\n"
        "\nvalue[0]=Platform"
        "\nvalue[1]=production"
        "\nvalue[2]=web-1"
        "\nowner=nobody\n"
        "name=WEB-1\n"
        "env=prod\n"
        "team=platform\n"
        "keys=/meta-data/tags/instance/Environment;/meta-data/tags/instance/Name;"
        "/meta-data/tags/instance/Team;\n"),
    "/etc/app/network.conf": (
        "primary=0a:1b:2c:3d:4e:5f\n"
        "interface 0a:1b:2c:3d:4e:5f {\n"
        "  first_ip=10.0.1.23\n"
        "  all_ips=10.0.1.23,10.0.1.24\n"
        "  subnet=SN-AAA\n"
        "  primary=true\n"
        "}\n"
        "interface 0a:1b:2c:3d:4e:60 {\n"
        "  first_ip=10.0.2.45\n"
        "  all_ips=10.0.2.45\n"
        "  subnet=SN-BBB\n"
        "}\n"
        "files=local-ipv4s,subnet-id,vpc-id\n"
        "parent=/meta-data/network/interfaces/macs/x\n"
        "sg=web default\n"),
    "/etc/app/identity.conf": (
        "\n"
        "region=us-east-1\n"
        "account=123456789012\n"
        "instanceType=t3.micro;region=us-east-1;\n"
        "codes=abc\n"
        "encoded=d2ViLTE=\n"
        "decoded=web-1\n"
        "shell: ${#arr[@]} {% not jinja %} {#x}\n"
        "{{literal}}\n"),
}

# Global prefix /meta-data (confd.toml) + resource prefix "placement"; .Key
# in gets is relative to the prefix.
EXPECTED_PREFIXED: Dict[str, str] = {
    "/etc/app/placement.conf": "region=us-east-1\naz=us-east-1a\n",
    "/etc/app/tags.conf": (
        "/tags/instance/Environment=production\n"
        "/tags/instance/Name=web-1\n"
        "/tags/instance/Team=Platform\n"
        "production;web-1;Platform;\n"),
}


def _convert(text: str, prefix: str = "/") -> str:
    out, problems = convert_template(text, "templates/t.tmpl", prefix=prefix)
    assert problems == ()
    return out


# ------------------------------------------------------------ templates: exact


@pytest.mark.parametrize("go, jinja", [
    ('{{getv "/meta-data/instance-id"}}', '{{ getv("/meta-data/instance-id") }}'),
    ('{{ getv "/instance-id" }}', '{{ getv("/meta-data/instance-id") }}'),
    ('{{getv "/k" "dflt"}}', '{{ getv("/meta-data/k", "dflt") }}'),
    ('{{if exists "/k"}}a{{else}}b{{end}}',
     '{% if exists("/meta-data/k") %}a{% else %}b{% endif %}'),
    ('{{if exists "/a"}}a{{else if exists "/b"}}b{{end}}',
     '{% if exists("/meta-data/a") %}a{% elif exists("/meta-data/b") %}b{% endif %}'),
    ('{{range gets "/p/*"}}{{.Key}} {{.Value}}{{end}}',
     '{% for kv in gets("/meta-data/p/*") %}{{ kv.key }} {{ kv.value }}{% endfor %}'),
    ('{{range getvs "/p/*"}}{{.}}{{end}}',
     '{% for value in getvs("/meta-data/p/*") %}{{ value }}{% endfor %}'),
    ('{{range $i, $v := getvs "/p/*"}}{{$i}}:{{$v}}{{end}}',
     '{% for v in getvs("/meta-data/p/*") %}{% set i = loop.index0 %}{{ i }}:{{ v }}{% endfor %}'),
    ('{{range $i, $v := getvs "/p/*"}}{{$v}}{{end}}',
     '{% for v in getvs("/meta-data/p/*") %}{{ v }}{% endfor %}'),
    ('{{range $d := lsdir "/services"}}{{$d}}{{end}}',
     '{% for d in lsdir("/meta-data/services/") %}{{ d }}{% endfor %}'),
    ('{{range ls "/tags/instance"}}{{.}}{{else}}none{{end}}',
     '{% for value in ls("/meta-data/tags/instance/") %}{{ value }}{% else %}none{% endfor %}'),
    ('{{$x := getv "/a"}}{{$x}}', '{% set x = getv("/meta-data/a") %}{{ x }}'),
    ('a {{- getv "/a" -}} b', 'a{{- getv("/meta-data/a") -}}b'),
    ('{{- if exists "/a" -}}\n x \n{{- end -}}',
     '{%- if exists("/meta-data/a") -%}x{%- endif -%}'),
    ('{{getv "/k" | toUpper}}', '{{ getv("/meta-data/k") | upper }}'),
    ('{{toLower (getv "/k")}}', '{{ getv("/meta-data/k") | lower }}'),
    ('{{join (split (getv "/k") ",") ";"}}',
     '{{ getv("/meta-data/k").split(",") | join(";") }}'),
    ('{{base "/a/b/c"}}',
     '{{ "/a/b/c".rstrip("/").split("/") | last or ("/" if "/a/b/c" else ".") }}'),
    ('{{dir "/a/b/c"}}', '{{ ("/a/b/c".rsplit("/", 1)[0] or "/") if "/" in "/a/b/c" else "." }}'),
    ('{{$d := json (getv "/doc")}}{{$d.region}}',
     '{% set d = getv("/meta-data/doc") | fromjson %}{{ "<no value>" if d.region is undefined '
     'or d.region is none else ("true" if d.region else "false") if d.region is boolean '
     'else d.region }}'),
    ('{{base64Decode (getv "/k")}}{{getv "/k" | base64Encode}}',
     '{{ getv("/meta-data/k") | b64decode }}{{ getv("/meta-data/k") | b64encode }}'),
    ('{{replace (getv "/k") "-" "_" -1}}', '{{ getv("/meta-data/k") | replace("-", "_") }}'),
    ('{{replace (getv "/k") "-" "_" 1}}', '{{ getv("/meta-data/k") | replace("-", "_", 1) }}'),
    ('{{if contains (getv "/k") "x"}}y{{end}}',
     '{% if "x" in getv("/meta-data/k") %}y{% endif %}'),
    ('{{printf "%s:%d" (getv "/h") 80}}', '{{ "%s:%d" | format(getv("/meta-data/h"), 80) }}'),
    ('{{printf "%v" (getv "/h")}}', '{{ "%s" | format(getv("/meta-data/h")) }}'),
    ('{{index (split (getv "/k") ":") 1}}', '{{ getv("/meta-data/k").split(":")[1] }}'),
    ('{{exists "/k"}}', '{{ "true" if exists("/meta-data/k") else "false" }}'),
    ('{{/* note */}}x{{- /* trimmed */ -}} y', '{# note #}x{#- trimmed -#}y'),
    ('{{"{{"}}', '{{ "{{" }}'),
    ('${#a} {%x%} {{"x"}}', '${{ "{" }}#a} {{ "{" }}%x%} {{ "x" }}'),
    ('a\r\nb', 'a{{ "\\r" }}\nb'),
    ('x\u00a0{{- "y"}}', 'x{{ "\\xa0" }}{{- "y" }}'),  # Go keeps NBSP, Jinja's "-" would not
    ('{\r', '{{ "{" }}{{ "\\r" }}'),
    ('{{010}} {{0x1F}} {{1e3}} {{-.5}}', '{{ 8 }} {{ 31 }} {{ 1000 }} {{ -0.5 }}'),
])
def test_construct_translates_exactly(go: str, jinja: str) -> None:
    assert _convert(go) == jinja


_PIECES = ['{{', '}}', '{{- ', ' -}}', 'getv ', '"/k"', '`r`', '(', ')', '|', '$x', ':=', '=',
           '.', '.Key', 'range ', 'if ', 'else', 'end', 'with ', ' ', '\n', 'x', '{%', '{#',
           '/*', '*/', ',', 'gets ', 'printf ', '"%s"', '1', 'json ', 'index ', '\r', 'eq ',
           '{', '}', '#', '%', '\u00a0', '"\\q"', '-.1', 'define ', 'template ', 'block ',
           '"d"', 'print ', 'or ', 'and ', 'getenv ', 'exists ', 'ls ', '$x.f', 'lookupIP ']


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_any_input_converts_and_clean_output_is_valid_jinja(pieces: List[str]) -> None:
    out, problems = convert_template("".join(pieces), "templates/t.tmpl")
    if not problems:
        jinja2.Environment().parse(out)


def test_prefix_is_folded_into_literal_and_computed_keys() -> None:
    go = ('{{getv "/region"}}{{range gets "/tags/*"}}{{.Key}}{{end}}'
          '{{getv (printf "/tags/%s" "Name")}}')
    assert _convert(go, prefix="/meta-data/placement") == (
        '{{ getv("/meta-data/placement/region") }}'
        '{% for kv in gets("/meta-data/placement/tags/*") %}{{ kv.key[20:] }}{% endfor %}'
        '{{ getv("/meta-data/placement" ~ ("/tags/%s" | format("Name"))) }}')


@pytest.mark.parametrize("prefix, sliced", [
    ("/meta-data", 10), ("/production", 21), ("/meta-data/app", 14), ("/", None)])
def test_key_is_sliced_to_what_confds_store_holds(prefix: str, sliced: object) -> None:
    """confd strips the prefix's IMDS path (/production is /meta-data/production)."""
    out = _convert('{{range gets "/a/*"}}{{.Key}}{{end}}', prefix=prefix)
    key = "kv.key" if sliced is None else f"kv.key[{sliced}:]"
    assert out.endswith(f"{{{{ {key} }}}}{{% endfor %}}")


def test_variable_assigned_in_a_loop_becomes_a_namespace() -> None:
    """Jinja's set does not leave a for loop; Go's assignment does."""
    go = ('{{$n := "none"}}{{range getvs "/p/*"}}{{$n = .}}{{end}}last={{$n}}')
    assert _convert(go) == (
        '{% set n = namespace(v="none") %}{% for value in getvs("/meta-data/p/*") %}'
        '{% set n.v = value %}{% endfor %}last={{ n.v }}')


def test_variable_declared_in_if_does_not_clobber_outer_one() -> None:
    """Go scopes := to the if block; Jinja's if is no scope, so it gets a new name."""
    go = '{{$x := "a"}}{{if true}}{{$x := "b"}}{{$x}}{{end}}{{$x}}'
    assert _convert(go) == ('{% set x = "a" %}{% if true %}{% set x_1 = "b" %}{{ x_1 }}'
                            '{% endif %}{{ x }}')


def test_nested_ranges_rebind_dot_and_keep_outer_variables() -> None:
    go = ('{{range $dir := lsdir "/svc"}}{{range gets (printf "/svc/%s/*" $dir)}}'
          '{{$dir}}/{{.Value}}{{end}}{{end}}')
    assert _convert(go) == (
        '{% for dir in lsdir("/meta-data/svc/") %}'
        '{% for kv in gets("/svc/%s/*" | format(dir)) %}{{ dir }}/{{ kv.value }}{% endfor %}'
        '{% endfor %}')


def test_range_over_a_json_map_is_sorted_by_key() -> None:
    go = '{{range $k, $v := json (getv "/d")}}{{$k}}={{$v}} {{end}}'
    assert _convert(go) == ('{% for k, v in (getv("/meta-data/d") | fromjson) | dictsort(true) %}'
                            '{{ k }}={{ "<no value>" if v is none else ("true" if v else '
                            '"false") if v is boolean else v }} {% endfor %}')


@pytest.mark.parametrize("go, why", [
    ('{{lookupIP "db.internal"}}', "function 'lookupIP' has no imdsrender equivalent; "
     "resolving names at render time is not supported; let the service resolve the name, "
     "or put the address in a tag"),
    ('{{datetime}}', "function 'datetime' has no imdsrender equivalent; output must depend on "
     "metadata only (a timestamp rewrites the file on every run); drop it"),
    ('{{hashToIPv4 "x"}}', "function 'hashToIPv4' has no imdsrender equivalent; not a confd "
     "function (a fork's or plugin's own, e.g. calico's hashToIPv4); rewrite the spot with "
     "Jinja expressions and filters"),
    ('{{break}}', "{{break}} is not supported"),
    ('{{.}}', "confd's template data ('.' outside range/with) is empty"),
    ('{{printf "%q" (getv "/k")}}', "printf verb other than %s %d %v %f %%"),
    ('{{range gets "/p/*"}}{{.}}{{end}}', "printing a kv value (Go's formatting of it differs)"),
])
def test_untranslatable_construct_is_marked_and_reported(go: str, why: str) -> None:
    out, problems = convert_template("line one\n" + go + "\ntail {{getv \"/k\"}}\n",
                                     "templates/t.tmpl")
    assert len(problems) == 1
    assert problems[0].startswith("templates/t.tmpl:2: untranslated ")
    assert problems[0].endswith(": " + why)
    assert f"{{# {MARKER}: " in out
    assert "imdsrender_migrate_untranslated" in out  # fails loudly if rendered as is
    assert out.startswith("line one\n")
    assert out.endswith('\ntail {{ getv("/meta-data/k") }}\n')  # the rest still translated


def test_define_becomes_a_macro_written_first_and_template_calls_it() -> None:
    """Go may call a template before its {{define}}; Jinja needs the macro first."""
    out = _convert('{{template "row" "a"}}\n{{define "row"}}<{{.}}>{{end}}b')
    assert out == ('{% macro tpl_row(dot) %}<{{ dot }}>{% endmacro %}'
                   '{{ tpl_row("a") }}\nb')


def test_template_never_defined_is_reported() -> None:
    _, problems = convert_template('a\n{{template "nope"}}', "templates/t.tmpl")
    assert problems == ("templates/t.tmpl:2: template 'nope' is never defined",)


def test_unclosed_block_is_reported_and_closed() -> None:
    out, problems = convert_template('x\n{{if exists "/k"}}y', "templates/t.tmpl")
    assert problems == ("templates/t.tmpl:2: if block is never closed with {{end}}",)
    assert out == 'x\n{% if exists("/meta-data/k") %}y{% endif %}'


def test_unparsable_template_is_reported_with_line() -> None:
    _, problems = convert_template('a\nb {{getv "/k"', "templates/t.tmpl")
    assert problems == ("templates/t.tmpl:2: cannot parse: unclosed action",)


# ------------------------------------------------------------ the confdir


def _render_all(out: Path, dest_root: Path, emulator: Emulator) -> Dict[str, str]:
    """Load the converted confdir as imdsrender would and render every resource."""
    resources = load_resources(str(out), dest_root=str(dest_root))
    client = ImdsClient(ImdsSettings(), endpoint=emulator.url)
    snapshot = fetch(Plan.of(r.keys for r in resources), client)
    env = make_environment(str(out / "templates"))
    rendered = {}
    for resource in resources:
        dest = "/" + os.path.relpath(resource.dest, dest_root)
        rendered[dest] = render(env, resource, snapshot).content.decode("utf-8")
    return rendered


@pytest.mark.parametrize("corpus, expected", [("main", EXPECTED_MAIN),
                                              ("prefixed", EXPECTED_PREFIXED)])
def test_corpus_converts_cleanly_and_renders_what_confd_renders(
        corpus: str, expected: Dict[str, str], tmp_path: Path,
        make_emulator: Callable[..., Emulator]) -> None:
    out = tmp_path / "out"
    report = migrate_confdir(str(CORPUS / corpus), str(out))
    assert report.problems == ()
    names = sorted(p.stem for p in (CORPUS / corpus / "conf.d").glob("*.toml"))
    assert [w for w in report.written if w.startswith("conf.d/")] == \
        [f"conf.d/{n}.yaml" for n in names]
    emulator = make_emulator(data=FIXTURE)
    assert _render_all(out, tmp_path / "root", emulator) == expected


def test_seed_instance_example_converts_to_the_documented_resource(tmp_path: Path) -> None:
    out = tmp_path / "out"
    migrate_confdir(str(CORPUS / "main"), str(out))
    text = (out / "conf.d" / "instance.yaml").read_text()
    assert yaml.safe_load(text) == {"templates": [{
        "src": "instance.j2", "dest": "/etc/app/instance.conf",
        "keys": ["/meta-data/instance-id", "/meta-data/instance-type", "/meta-data/ami-id",
                 "/meta-data/tags/instance/Name", "/meta-data/tags/instance/Environment",
                 "/meta-data/placement/availability-zone", "/meta-data/local-ipv4"],
        "reload_cmd": "systemctl reload app"}]}
    assert (out / "templates" / "instance.j2").read_text() == (
        "# Instance Configuration\n"
        'instance_id={{ getv("/meta-data/instance-id") }}\n'
        'instance_type={{ getv("/meta-data/instance-type") }}\n'
        'ami_id={{ getv("/meta-data/ami-id") }}\n'
        'name={{ getv("/meta-data/tags/instance/Name") }}\n'
        'environment={{ getv("/meta-data/tags/instance/Environment") }}\n'
        'availability_zone={{ getv("/meta-data/placement/availability-zone") }}\n'
        'local_ip={{ getv("/meta-data/local-ipv4") }}\n')


def test_mode_is_written_as_a_quoted_octal_string(tmp_path: Path) -> None:
    out = tmp_path / "out"
    migrate_confdir(str(CORPUS / "main"), str(out))
    text = (out / "conf.d" / "identity.yaml").read_text()
    assert "  mode: '0640'\n" in text
    assert "  check_cmd: /usr/bin/test -s {{ src }}\n" in text
