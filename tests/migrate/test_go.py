"""Migrated templates against Go itself: the same bytes, or a reported spot.

Every case is a confd template resource; it is rendered by Go's own
text/template with confd's function map (tests/gotemplate) and, after
``migrate_confdir``, by imdsrender.  Outputs must match byte for byte, and
a case the migrator calls clean must have no problem lines.  The cases are
written from the constructs of issue 18 and from patterns common in public
confd templates (nginx/haproxy upstreams from ``ls``/``gets``, per-service
directories walked with ``lsdir`` and ``printf``-built keys, JSON documents
with optional fields, ``getenv`` with defaults).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from imdsrender.migrate import fold_prefix, migrate_confdir
from tests.migrate.differential import (
    FIXTURE,
    confd_store,
    go_render,
    migrate_and_render,
    render_confdir,
)

CORPUS = Path(__file__).parent.parent / "data" / "confd"

pytestmark = pytest.mark.tools


# (template, keys, prefix)
Case = Tuple[str, Sequence[str], str]

CASES: List[Case] = [
    ('id={{getv "/meta-data/instance-id"}}\n', ["/meta-data/instance-id"], ""),
    ('{{getv "/meta-data/nope" "dflt"}}', ["/meta-data/nope"], ""),
    ('{{range gets "/meta-data/tags/instance/*"}}{{.Key}}={{.Value}}\n{{end}}',
     ["/meta-data/tags/instance"], ""),
    ('{{range getvs "/meta-data/tags/instance/*"}}{{.}};{{end}}',
     ["/meta-data/tags/instance/"], ""),
    ('{{- range $i, $h := split (getv "/meta-data/tags/instance/Hosts") "," }}\n'
     'server s{{$i}} {{$h}} check\n{{- end}}\n', ["/meta-data/tags/instance/Hosts"], ""),
    ('{{range $mac := lsdir "/meta-data/network/interfaces/macs"}}'
     '{{$mac}} {{getv (printf "/meta-data/network/interfaces/macs/%s/subnet-id" $mac)}}\n'
     '{{end}}', ["/meta-data/network/interfaces/macs/"], ""),
    ('{{if exists "/meta-data/tags/instance/Name"}}name={{getv "/meta-data/tags/instance/Name"'
     ' | toUpper}}{{else}}anon{{end}}', ["/meta-data/tags/instance/Name"], ""),
    ('{{$d := json (getv "/dynamic/instance-identity/document")}}{{$d.region}} '
     '{{index $d "accountId"}} {{range $d.marketplaceProductCodes}}{{.}}{{end}}',
     ["/dynamic/instance-identity/document"], ""),
    ('{{range gets "/tags/instance/*"}}{{.Key}} {{base .Key}}={{.Value}}\n{{end}}',
     ["/tags/instance"], "/meta-data"),
    ('upstream app {\n{{range getvs "/upstream/*"}}    server {{.}};\n{{end}}}\n',
     ["/upstream"], "/meta-data/app"),
    ('{{$n := "none"}}{{range ls "/meta-data/tags/instance"}}{{$n = .}}{{end}}last={{$n}}',
     ["/meta-data/tags/instance/"], ""),
    ('{{ printf "%s:%d" (getv "/meta-data/local-ipv4") 8080 }} {{ replace "a-b-c" "-" "_" -1 }}'
     ' {{ contains "abc" "b" }} {{ join (split "a,b" ",") "+" }} {{ dir "/a/b/c" }}',
     ["/meta-data/local-ipv4"], ""),
]


def _check(go_binary: str, cases: Sequence[Case], reported: str = "") -> None:
    """Go and the migrated template write the same bytes; problems only as *reported*."""
    stores = [confd_store(FIXTURE, prefix) for _, _, prefix in cases]
    go = go_render(go_binary, [(t, s) for (t, _, _), s in zip(cases, stores)])
    for (template, keys, prefix), want in zip(cases, go):
        assert want.err == "", f"Go failed on {template!r}: {want.err}"
        ours = migrate_and_render(template, FIXTURE, keys=keys, prefix=prefix)
        if reported:
            assert len(ours.problems) == 1 and reported in ours.problems[0], ours.problems
        else:
            assert ours.problems == (), template
        assert ours.err == ""
        assert ours.out == want.out, template


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_migrated_template_renders_what_go_renders(go_binary: str, case: Case) -> None:
    _check(go_binary, [case])


# The constructs issue 18 found failing on real templates; each renders
# exactly what Go renders.
ISSUE_18: List[Case] = [
    # print: a space between operands when neither is a string (Go's Sprint)
    ('{{print "a" 1 2 "b" (getv "/meta-data/instance-id") 3 true}}|{{print 1 2}}|{{print}}|'
     '{{println "x" 1 2}}', ["/meta-data/instance-id"], ""),
    ('{{$d := json (getv "/meta-data/app/containers/c1")}}'
     '{{print $d.name 1 (index $d.labels 0) 2 3 $d.nope 4}}',
     ["/meta-data/app/containers/c1"], ""),
    # getenv, with and without a default (set, unset, empty)
    ('{{getenv "MIG_SET"}}|{{getenv "MIG_UNSET"}}|{{getenv "MIG_UNSET" "dflt"}}|'
     '{{getenv "MIG_EMPTY" "e"}}', [], ""),
    # define/template/block: macros; dot keeps its type (.Key relative to the prefix)
    ('{{define "server"}}    server {{.}};\n{{end}}upstream app {\n'
     '{{range getvs "/upstream/*"}}{{template "server" .}}{{end}}}\n', ["/upstream"],
     "/meta-data/app"),
    ('{{range gets "/tags/instance/*"}}{{template "kv" .}}{{end}}'
     '{{define "kv"}}{{.Key}}={{.Value}};{{end}}', ["/tags/instance"], "/meta-data"),
    ('{{block "header" "generated"}}# {{.}}\n{{end}}body{{template "header" "again"}}', [], ""),
    ('{{define "id"}}{{getv "/meta-data/instance-id"}}-{{.}}{{end}}{{template "id" "x"}}|'
     '{{range getvs "/meta-data/tags/instance/*"}}{{template "id" .}};{{end}}{{template "id"}}',
     ["/meta-data/instance-id", "/meta-data/tags/instance/"], ""),
    # with $x := ..., with ... else
    ('{{with $n := getv "/meta-data/tags/instance/Name"}}name={{$n}} dot={{.}}{{end}}|'
     '{{with $p := getv "/meta-data/nope" ""}}set {{$p}}{{else}}unset{{end}}',
     ["/meta-data/tags/instance/Name", "/meta-data/nope"], ""),
    # or/and with one argument; or as a default
    ('{{or (getv "/meta-data/nope" "") "fallback"}}|{{and "x"}}|{{or "y"}}|{{and "a" "b"}}',
     ["/meta-data/nope"], ""),
    # range ... else
    ('{{range $i, $v := split (getv "/meta-data/app/empty") ","}}[{{$v}}]{{else}}none{{end}}|'
     '{{range getvs "/meta-data/tags/instance/Nope*"}}{{.}}{{else}}empty{{end}}',
     ["/meta-data/app/empty", "/meta-data/tags/instance/"], ""),
    # index on maps and slices with several keys; missing keys are Go's zero value
    ('{{$c := json (getv "/meta-data/app/containers/c1")}}{{index $c "ports" "80/tcp"}}|'
     '{{index $c "ports" "443/tcp"}}|{{index $c.labels 1}}|'
     '{{if index $c "ports" "9/udp"}}y{{else}}n{{end}}|{{$c.nope}}',
     ["/meta-data/app/containers/c1"], ""),
    # JSON values print as Go prints them: booleans, null, missing, numbers
    ('{{$c := json (getv "/meta-data/app/containers/c1")}}{{$c.tls}} {{$c.debug}} '
     '{{$c.weight}} {{$c.note}} {{$c.nope}}|{{print $c.tls $c.note $c.nope $c.name}}|'
     '{{if $c.tls}}tls{{end}}{{if $c.debug}}debug{{end}}{{if $c.note}}note{{end}}',
     ["/meta-data/app/containers/c1"], ""),
    # range over a JSON field: a map's values by key (with $k, $v), a list's items
    ('{{$c := json (getv "/meta-data/app/containers/c1")}}'
     '{{range $k, $v := $c.ports}}{{$k}}->{{$v}};{{end}}|{{range $c.ports}}{{.}};{{end}}|'
     '{{range $i, $l := $c.labels}}{{$i}}={{$l}};{{end}}|{{range $c.labels}}{{.}}{{end}}',
     ["/meta-data/app/containers/c1"], ""),
    # a missing JSON field is false; keys as prefixes (containers read below)
    ('{{range $c := ls "/meta-data/app/containers"}}'
     '{{$d := json (getv (printf "/meta-data/app/containers/%s" $c))}}{{$d.name}}'
     '{{if $d.proxy_url}} proxy={{$d.proxy_url}}{{end}}\n{{end}}',
     ["/meta-data/app/containers"], ""),
    # keys as prefixes under a confd prefix, keys built with printf, a variable holding a path
    ('{{range $s := lsdir "/app/services"}}{{$s}}={{getv (printf "/app/services/%s/host" $s)}}'
     ':{{getv (printf "/app/services/%s/port" $s)}}\n{{end}}'
     '{{$p := "/app/upstream/web1"}}{{getv $p}}', ["/app"], "/meta-data"),
    # exists on a directory is false, as in confd
    ('{{if exists "/meta-data/tags/instance"}}dir{{else}}nodir{{end}}|'
     '{{exists "/meta-data/tags/instance/Name"}}|{{exists "/meta-data/placement"}}',
     ["/meta-data/tags/instance", "/meta-data/placement"], ""),
    # .Key under a prefix is relative to it, exactly as confd's store holds it
    ('{{range gets "/upstream/*"}}{{.Key}}={{.Value}};{{end}}', ["/upstream"], "/app"),
    # no keys at all: derived (literal and printf-built reads)
    ('{{getv "/meta-data/instance-id"}} {{range $m := lsdir "/meta-data/network/interfaces/macs"}}'
     '{{getv (printf "/meta-data/network/interfaces/macs/%s/subnet-id" $m)}} {{end}}', [], ""),
]


@pytest.mark.parametrize("case", ISSUE_18, ids=range(len(ISSUE_18)))
def test_issue_18_construct_renders_what_go_renders(go_binary: str, case: Case,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIG_SET", "from-env")
    monkeypatch.setenv("MIG_EMPTY", "")
    monkeypatch.delenv("MIG_UNSET", raising=False)
    _check(go_binary, [case])


def test_key_from_a_value_is_a_directory_key_and_reported(go_binary: str) -> None:
    """Where the template's use cannot decide, the directory form plus a report line."""
    case = ('{{range getvs "/meta-data/app/upstream/*"}}{{end}}'
            '{{$k := getv "/meta-data/app/empty" "/meta-data/app/services/api/host"}}'
            '{{getv (or $k "/meta-data/app/services/api/host")}}',
            ["/meta-data/app/upstream", "/meta-data/app/empty", "/meta-data/app/services"], "")
    _check(go_binary, [case], reported="a key built at run time may read below "
           "/meta-data/app/services; made it the directory key /meta-data/app/services/")


def test_real_world_shaped_confdir_renders_what_go_renders(
        go_binary: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A confdir written after public confd templates (nginx upstreams, haproxy backends
    from lsdir + printf keys, per-container JSON, a nested conf.d, a resource without
    keys): converted without a problem, every file is what Go writes."""
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    monkeypatch.setenv("CORPUS_HOST", "web-1.internal")
    src = CORPUS / "realworld"
    report = migrate_confdir(str(src), str(tmp_path / "out"))
    assert report.problems == ()
    ours = render_confdir(tmp_path / "out", FIXTURE, tmp_path / "root")
    resources = [tomllib.loads(p.read_text())["template"]
                 for p in sorted((src / "conf.d").rglob("*.toml"))]
    go = go_render(go_binary, [((src / "templates" / r["src"]).read_text(),
                                confd_store(FIXTURE, fold_prefix("", r.get("prefix", ""))))
                               for r in resources])
    assert [g.err for g in go] == [""] * len(resources)
    assert ours == {r["dest"]: g.out for r, g in zip(resources, go)}
    assert len(ours) == 4
