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

from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from tests.differential import (
    FIXTURE,
    build_go_renderer,
    confd_store,
    go_render,
    migrate_and_render,
)

pytestmark = pytest.mark.tools


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    binary = build_go_renderer(tmp_path_factory.mktemp("gotemplate"))
    if binary is None:
        pytest.skip("the Go toolchain (`go`) is not installed; CI installs Debian's golang-go")
    return binary


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


def _check(go_binary: str, cases: Sequence[Case]) -> None:
    stores = [confd_store(FIXTURE, prefix) for _, _, prefix in cases]
    go = go_render(go_binary, [(t, s) for (t, _, _), s in zip(cases, stores)])
    for (template, keys, prefix), want in zip(cases, go):
        assert want.err == "", f"Go failed on {template!r}: {want.err}"
        ours = migrate_and_render(template, FIXTURE, keys=keys, prefix=prefix)
        assert ours.problems == (), template
        assert ours.out == want.out, template


@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_migrated_template_renders_what_go_renders(go_binary: str, case: Case) -> None:
    _check(go_binary, [case])
