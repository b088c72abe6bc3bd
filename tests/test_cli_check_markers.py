"""``check`` fails while migrate-confd's untranslated markers remain in the templates."""

from __future__ import annotations

import shutil
from pathlib import Path

from imdsrender.markers import MARKER, find_markers
from tests.helpers import ROOT, ConfDir, run_cli

CORPUS = ROOT / "tests" / "data" / "confd" / "main"


def test_find_markers_gives_1_based_lines() -> None:
    assert find_markers(f"a\n{{# {MARKER}: x #}}\nb\n  {MARKER}\n") == [2, 4]
    assert find_markers("imdsrender-migrate: translated\n") == []


def test_marker_in_a_template_fails_check_naming_file_and_line(confdir: ConfDir) -> None:
    confdir.resource("a.conf.j2", "x = 1\n{# " + MARKER + ": {{template \"y\"}} #}\n")
    result = run_cli("check", "--confdir", confdir.path)
    assert result.returncode == 1, result.stderr
    assert "templates/a.conf.j2:2: a migrate-confd untranslated marker remains" in result.stderr
    assert "resources OK" not in result.stdout


def test_marker_in_an_included_template_is_found(confdir: ConfDir) -> None:
    (confdir.path_obj / "templates" / "part.j2").write_text(f"\n\n{{# {MARKER}: z #}}\n")
    confdir.resource("a.conf.j2", "{% include 'part.j2' %}\n")
    result = run_cli("check", "--confdir", confdir.path)
    assert result.returncode == 1
    assert "templates/part.j2:3:" in result.stderr


def test_migrated_confdir_with_an_untranslated_spot_fails_check(tmp_path: Path) -> None:
    src = tmp_path / "confd"
    shutil.copytree(CORPUS, src)
    template = src / "templates" / "instance.tmpl"
    template.write_text(template.read_text() + '{{lookupIP "db.internal"}}\n')
    out = tmp_path / "out"
    assert run_cli("migrate-confd", str(src), str(out)).returncode == 1
    result = run_cli("check", "--confdir", str(out))
    assert result.returncode == 1
    assert "templates/instance.j2:" in result.stderr and "untranslated marker" in result.stderr
