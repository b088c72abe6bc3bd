"""migrate.confdir: the recursive conf.d walk, flat output names, nothing skipped silently."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

from imdsrender.errors import UsageError
from imdsrender.migrate import (
    MARKER,
    MigrationError,
    MigrationReport,
    find_markers,
    migrate_confdir,
)

CORPUS = Path(__file__).parent.parent / "data" / "confd"
RESOURCE = '[template]\nsrc = "{src}"\ndest = "/etc/{dest}"\nkeys = ["/meta-data/instance-id"]\n'


def test_nested_conf_d_is_walked_recursively_with_flat_unique_names(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {
        "conf.d/top.toml": RESOURCE.format(src="a.tmpl", dest="top"),
        "conf.d/web/nginx.toml": RESOURCE.format(src="a.tmpl", dest="nginx"),
        "conf.d/web/deep/er/x.toml": RESOURCE.format(src="a.tmpl", dest="x"),
        "conf.d/web-nginx.toml": RESOURCE.format(src="a.tmpl", dest="clash"),
        "conf.d/web/README": "not a resource",
        "templates/a.tmpl": '{{getv "/meta-data/instance-id"}}\n',
    })
    out = tmp_path / "out"
    report = migrate_confdir(str(src), str(out))
    assert report.problems == ()
    assert report.written == ("conf.d/top.yaml", "conf.d/web-deep-er-x.yaml",
                              "conf.d/web-nginx-2.yaml", "conf.d/web-nginx.yaml",
                              "templates/a.j2")
    dests = {p.name: yaml.safe_load(p.read_text())["templates"][0]["dest"]
             for p in (out / "conf.d").iterdir()}
    assert dests == {"top.yaml": "/etc/top", "web-deep-er-x.yaml": "/etc/x",
                     "web-nginx.yaml": "/etc/clash", "web-nginx-2.yaml": "/etc/nginx"}
    assert "# Converted from conf.d/web/deep/er/x.toml" in \
        (out / "conf.d" / "web-deep-er-x.yaml").read_text()


def test_toml_entries_that_are_not_read_are_reported(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {
        "conf.d/ok.toml": RESOURCE.format(src="a.tmpl", dest="ok"),
        "templates/a.tmpl": "x\n",
        "elsewhere/linked/l.toml": RESOURCE.format(src="a.tmpl", dest="l"),
    })
    os.symlink(src / "elsewhere" / "linked", src / "conf.d" / "linked")
    os.symlink(src / "gone.toml", src / "conf.d" / "dangling.toml")
    report = migrate_confdir(str(src), str(tmp_path / "out"))
    assert report.problems == (
        "conf.d/linked: a link to a directory; not followed (confd does not follow it either)",
        "conf.d/dangling.toml: not a regular file; not converted",
    )
    assert report.written == ("conf.d/ok.yaml", "templates/a.j2")


def test_markers_are_found_by_line() -> None:
    text = f"a\n{{# {MARKER}: x #}}{{{{ y }}}}\nb\n{{# {MARKER}: z #}}\n"
    assert find_markers(text) == [2, 4]
    assert find_markers("clean {{ getv('/x') }}\n") == []


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / "confd"
    shutil.copytree(CORPUS / name, dst)
    return dst


def _confdir(tmp_path: Path, files: Dict[str, str]) -> Path:
    src = tmp_path / "confd"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


def test_untranslatable_construct_reports_file_line_and_the_rest_is_written(
        tmp_path: Path) -> None:
    src = _confdir(tmp_path, {
        "conf.d/good.toml": '[template]\nsrc = "good.tmpl"\ndest = "/etc/good"\nkeys = ["/a"]\n',
        "templates/good.tmpl": 'a={{getv "/a"}}\n',
        "conf.d/bad.toml": ('[template]\nsrc = "bad.tmpl"\ndest = "/etc/bad"\nkeys = ["/a"]\n'
                            'min_reload_interval = "30s"\n'),
        "templates/bad.tmpl": 'a={{getv "/a"}}\nhost={{lookupIP "db"}}\nz={{getv "/a"}}\n',
    })
    out = tmp_path / "out"
    report = migrate_confdir(str(src), str(out))
    assert report == MigrationReport(
        written=("conf.d/bad.yaml", "conf.d/good.yaml", "templates/bad.j2", "templates/good.j2"),
        problems=(
            "templates/bad.tmpl:2: untranslated {{lookupIP \"db\"}}: function 'lookupIP' "
            "has no imdsrender equivalent; resolving names at render time is not supported; "
            "let the service resolve the name, or put the address in a tag",
            "conf.d/bad.toml:5: field 'min_reload_interval' has no imdsrender equivalent; "
            "not translated",
        ))
    bad = (out / "templates" / "bad.j2").read_text()
    assert bad.startswith('a={{ getv("/meta-data/a") }}\nhost={# imdsrender-migrate: ')
    assert bad.endswith('{{ imdsrender_migrate_untranslated }}\nz={{ getv("/meta-data/a") }}\n')
    assert (out / "templates" / "good.j2").read_text() == 'a={{ getv("/meta-data/a") }}\n'


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(CORPUS / "main"), str(out))
    assert str(exc.value) == (f"{out}: exists and is not empty; name a new directory, "
                              "or pass --force to overwrite files in it")
    assert exc.value.exit_code == 2
    assert sorted(os.listdir(out)) == ["keep.txt"]
    report = migrate_confdir(str(CORPUS / "main"), str(out), force=True)
    assert report.problems == ()
    assert (out / "keep.txt").read_text() == "mine"
    assert (out / "conf.d" / "instance.yaml").is_file()


def test_existing_empty_directory_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert migrate_confdir(str(CORPUS / "main"), str(out)).written


@pytest.mark.parametrize("where", [".", "conf.d", "new/inside"])
def test_never_in_place(where: str, tmp_path: Path) -> None:
    src = _copy("main", tmp_path)
    before = sorted(str(p) for p in src.rglob("*"))
    out = src / where
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(src), str(out), force=True)
    assert str(exc.value) == (f"{out}: is the confd confdir or inside it; migration never "
                              "works in place; name a new directory")
    assert sorted(str(p) for p in src.rglob("*")) == before


def test_source_must_be_a_confd_confdir(tmp_path: Path) -> None:
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(tmp_path), str(tmp_path / "out"))
    assert str(exc.value) == (f"{tmp_path}: not a confd confdir (no conf.d/ directory); name "
                              "the directory holding conf.d/ and templates/, e.g. /etc/confd")
    assert isinstance(exc.value, UsageError)


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {"conf.d/x.toml": '[template]\nsrc = "a"\ndest = \n'})
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(src), str(tmp_path / "out"))
    assert str(exc.value).startswith("conf.d/x.toml:3: invalid TOML: ")
    assert not (tmp_path / "out").exists()


def test_invalid_confd_toml_names_file_and_line(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {"confd.toml": 'prefix = "/a"\nprefix = "/b"\n',
                              "conf.d/x.toml": '[template]\n'})
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(src), str(tmp_path / "out"))
    assert str(exc.value).startswith("confd.toml:2: invalid TOML: ")


def test_missing_toml_library_names_the_extra(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(MigrationError) as exc:
        migrate_confdir(str(CORPUS / "main"), str(tmp_path / "out"))
    assert str(exc.value) == ("migrate-confd: reading TOML needs Python 3.11+ or the tomli "
                              "package; pip install 'imdsrender[migrate]'")


def test_missing_template_is_reported_and_the_resource_still_written(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {
        "conf.d/x.toml": '[template]\nsrc = "gone.tmpl"\ndest = "/etc/x"\nkeys = ["/a"]\n'})
    report = migrate_confdir(str(src), str(tmp_path / "out"))
    assert report.problems == ("templates/gone.tmpl: cannot read: No such file or directory",)
    assert report.written == ("conf.d/x.yaml",)


def test_same_template_under_two_prefixes_gives_two_outputs(tmp_path: Path) -> None:
    src = _confdir(tmp_path, {
        "conf.d/a.toml": ('[template]\nprefix = "/meta-data/placement"\nsrc = "v.tmpl"\n'
                          'dest = "/etc/a"\nkeys = ["/region"]\n'),
        "conf.d/b.toml": ('[template]\nprefix = "/meta-data/tags/instance"\nsrc = "v.tmpl"\n'
                          'dest = "/etc/b"\nkeys = ["/region"]\n'),
        "templates/v.tmpl": '{{getv "/region"}}\n',
    })
    out = tmp_path / "out"
    report = migrate_confdir(str(src), str(out))
    assert report.problems == ()
    assert (out / "templates" / "v.j2").read_text() == \
        '{{ getv("/meta-data/placement/region") }}\n'
    assert (out / "templates" / "v-2.j2").read_text() == \
        '{{ getv("/meta-data/tags/instance/region") }}\n'
    b: List[dict] = yaml.safe_load((out / "conf.d" / "b.yaml").read_text())["templates"]
    assert b[0]["src"] == "v-2.j2"
