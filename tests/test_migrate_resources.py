"""migrate.resources and migrate.keyuse: keys as confd's prefixes, dest, missing keys."""

from __future__ import annotations

from typing import List

import pytest

from imdsrender.migrate import convert_resource
from imdsrender.migrate.keyuse import Use, derive_keys, exists_on_directories, key_form
from imdsrender.render import getenv


def test_resource_without_keys_is_accepted_and_keys_left_to_imdsrender() -> None:
    doc = {"template": {"src": "t.tmpl", "dest": "/etc/x"}}
    entry, problems = convert_resource(doc, "conf.d/t.toml", template_keys=[
        ("/meta-data/instance-id", "leaf", 1)])
    assert problems == ()
    assert "keys" not in entry  # imdsrender derives literal keys itself


def test_resource_without_keys_gets_them_derived_when_keys_are_built_at_run_time() -> None:
    doc = {"template": {"src": "t.tmpl", "dest": "/etc/x"}}
    uses: List[Use] = [("/meta-data/instance-id", "leaf", 1),
                       ("/meta-data/network/interfaces/macs/", "dir", 2),
                       ("/meta-data/network/interfaces/macs/", "prefix", 3),
                       ("/meta-data/tags/instance/*", "glob", 4)]
    entry, problems = convert_resource(doc, "conf.d/t.toml", template_keys=uses)
    assert problems == ()
    assert entry["keys"] == ["/meta-data/instance-id", "/meta-data/network/interfaces/macs/",
                             "/meta-data/tags/instance/"]


def test_relative_dest_is_reported() -> None:
    text = '[template]\nsrc = "t.tmpl"\ndest = "app.conf"\n'
    doc = {"template": {"src": "t.tmpl", "dest": "app.conf"}}
    entry, problems = convert_resource(doc, "conf.d/t.toml", text=text)
    assert problems == ("conf.d/t.toml:3: dest 'app.conf' is relative (confd resolved it "
                        "against its working directory); write the absolute path",)
    assert entry["dest"] == "app.conf"


@pytest.mark.parametrize("uses, directory, undecided", [
    ([("/meta-data/app/x", "leaf", 1)], True, False),  # read below
    ([("/meta-data/app", "leaf", 1)], False, False),  # read exactly
    ([("/meta-data/app/", "prefix", 1)], True, False),  # printf "/app/%s"
    ([("/meta-data/ap", "prefix", 1)], True, True),  # printf "/ap%s": might be below
    ([("/meta-data", "unknown", 1)], True, True),  # a key from a value
    ([("/meta-data/other/", "prefix", 1)], False, False),
    ([("/meta-data/app", "exists", 1)], False, False),  # exists alone decides nothing
])
def test_key_form_follows_the_templates_use(uses: List[Use], directory: bool,
                                            undecided: bool) -> None:
    form = key_form("/meta-data/app", uses)
    assert (form.directory, form.undecided) == (directory, undecided)


def test_exists_is_false_only_on_directories() -> None:
    uses: List[Use] = [("/meta-data/tags/instance", "exists", 1), ("/meta-data/app", "exists", 2),
                       ("/meta-data/app/x", "leaf", 3), ("/meta-data/k", "exists", 4),
                       ("/meta-data/d", "exists", 5)]
    assert exists_on_directories(uses, ["/meta-data/d/"]) == frozenset({
        "/meta-data/tags/instance", "/meta-data/app", "/meta-data/d"})


def test_derived_keys_fold_what_a_directory_covers() -> None:
    assert derive_keys([("/meta-data/a/b", "leaf", 1), ("/meta-data/a/", "dir", 2),
                        ("/meta-data/c", "leaf", 3)]) == ["/meta-data/a/", "/meta-data/c"]


def test_getenv_reads_the_environment_with_confds_default_rule(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMDSRENDER_T_SET", "v")
    monkeypatch.setenv("IMDSRENDER_T_EMPTY", "")
    monkeypatch.delenv("IMDSRENDER_T_UNSET", raising=False)
    assert getenv("IMDSRENDER_T_SET", "d") == "v"
    assert getenv("IMDSRENDER_T_EMPTY", "d") == "d"  # confd: empty means unset
    assert getenv("IMDSRENDER_T_UNSET") == ""
