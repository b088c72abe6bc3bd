"""migrate.confdir: the recursive conf.d walk, flat output names, nothing skipped silently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict

import yaml

from imdsrender.migrate import MARKER, find_markers, migrate_confdir

RESOURCE = '[template]\nsrc = "{src}"\ndest = "/etc/{dest}"\nkeys = ["/meta-data/instance-id"]\n'


def _confdir(tmp_path: Path, files: Dict[str, str]) -> Path:
    src = tmp_path / "confd"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


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
