"""migrate-confd through the real CLI: exit codes and what is written.

Rendering the converted corpus byte-exact is tests/migrate/test_template.py's job.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers import ROOT, run_cli

CORPUS = ROOT / "tests" / "data" / "confd" / "main"


def test_corpus_converts_and_checks(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("migrate-confd", str(CORPUS), str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "conf.d" / "instance.yaml").is_file()
    assert (out / "templates" / "instance.j2").is_file()
    assert run_cli("check", "--confdir", str(out)).returncode == 0

    again = run_cli("migrate-confd", str(CORPUS), str(out))
    assert again.returncode == 2  # never overwrites without --force
    assert "--force" in again.stderr
    assert run_cli("migrate-confd", str(CORPUS), str(out), "--force").returncode == 0


def test_untranslatable_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    src = tmp_path / "confd"
    shutil.copytree(CORPUS, src)
    template = src / "templates" / "instance.tmpl"
    template.write_text(template.read_text() + '{{lookupSRV "db" "tcp" "x"}}\n')
    out = tmp_path / "out"
    result = run_cli("migrate-confd", str(src), str(out))
    assert result.returncode == 1
    assert "templates/instance.tmpl:" in result.stderr and "untranslated" in result.stderr
    assert (out / "templates" / "instance.j2").is_file()
    assert (out / "templates" / "region.j2").is_file()


def test_refuses_to_migrate_in_place(tmp_path: Path) -> None:
    src = tmp_path / "confd"
    shutil.copytree(CORPUS, src)
    result = run_cli("migrate-confd", str(src), str(src / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_template_with_only_supported_constructs_exits_0(tmp_path: Path) -> None:
    src = tmp_path / "confd"
    (src / "conf.d").mkdir(parents=True)
    (src / "templates").mkdir()
    (src / "conf.d" / "web.toml").write_text(
        '[template]\nsrc = "web.tmpl"\ndest = "/etc/web.conf"\nprefix = "/meta-data"\n'
        'keys = ["/tags/instance", "/network/interfaces/macs"]\n')
    (src / "templates" / "web.tmpl").write_text(
        '{{define "row"}}{{.Key}}={{.Value}}\n{{end}}'
        '{{range gets "/tags/instance/*"}}{{template "row" .}}{{end}}'
        '{{with $n := getv "/tags/instance/Name" ""}}name={{$n}}{{else}}anonymous{{end}}\n'
        '{{print "port" 80 443}} {{or (getenv "PORT") "8080"}}\n'
        '{{range $m := lsdir "/network/interfaces/macs"}}'
        '{{getv (printf "/network/interfaces/macs/%s/subnet-id" $m)}}\n{{end}}')
    out = tmp_path / "out"
    result = run_cli("migrate-confd", str(src), str(out))
    assert result.returncode == 0, result.stderr
    assert "imdsrender:" not in result.stderr.replace("imdsrender: INFO", "")
    assert run_cli("check", "--confdir", str(out)).returncode == 0
