"""migrate.resources and migrate.keyuse: keys as confd's prefixes, dest, missing keys."""

from __future__ import annotations

from typing import List, Optional

import pytest

from imdsrender.migrate import convert_resource, fold_prefix, full_key
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


@pytest.mark.parametrize("global_prefix, resource_prefix, expected", [
    ("", "", "/"), ("/production", "", "/production"), ("", "app/", "/app"),
    ("production", "/myapp", "/production/myapp"),
])
def test_prefixes_concatenate(global_prefix: str, resource_prefix: str, expected: str) -> None:
    assert fold_prefix(global_prefix, resource_prefix) == expected


@pytest.mark.parametrize("prefix, key, expected", [
    ("/", "/meta-data/instance-id", "/meta-data/instance-id"),
    ("/", "/instance-id", "/meta-data/instance-id"),
    ("/", "/latest/dynamic/instance-identity/document", "/dynamic/instance-identity/document"),
    ("/meta-data", "/tags/instance/", "/meta-data/tags/instance/"),
    ("/meta-data/placement", "region", "/meta-data/placement/region"),
    ("/", "/user-data", "/user-data"),
])
def test_full_key(prefix: str, key: str, expected: str) -> None:
    assert full_key(prefix, key) == expected


def test_resource_fields_translate() -> None:
    doc = {"template": {
        "src": "app.conf.tmpl", "dest": "/etc/app.conf", "prefix": "app",
        "keys": ["/a", "/dir/"], "mode": "0600", "uid": 1000, "gid": 1001,
        "check_cmd": "/usr/sbin/app -t -c {{.src}}",
        "reload_cmd": "cp {{ .src }} /backup && systemctl reload app # {{.dest}}",
        "check_cmd_timeout": 15, "reload_cmd_timeout": "2m",
    }}
    entry, problems = convert_resource(doc, "conf.d/app.toml", "/meta-data")
    assert problems == ()
    assert entry == {
        "src": "app.conf.j2", "dest": "/etc/app.conf",
        "keys": ["/meta-data/app/a", "/meta-data/app/dir/"],
        "mode": "0600", "owner": 1000, "group": 1001,
        "check_cmd": "/usr/sbin/app -t -c {{ src }}",
        "reload_cmd": "cp {{ src }} /backup && systemctl reload app # {{ dest }}",
        "check_timeout": "15s", "reload_timeout": "120s",
    }


def test_directory_keys_are_recognised_from_the_template_and_known_paths() -> None:
    doc = {"template": {"src": "t.tmpl", "dest": "/x", "keys": [
        "/meta-data/tags/instance", "/meta-data/foo", "/meta-data/bar", "/meta-data/placement",
        "/meta-data/instance-id"]}}
    used = [("/meta-data/foo/*", "glob", 3), ("/meta-data/bar/baz", "leaf", 4),
            ("/meta-data/instance-id", "leaf", 5)]
    entry, problems = convert_resource(doc, "conf.d/t.toml", template_keys=used,
                                       template_name="templates/t.tmpl")
    assert problems == ()
    assert entry["keys"] == ["/meta-data/tags/instance/", "/meta-data/foo/", "/meta-data/bar/",
                             "/meta-data/placement/", "/meta-data/instance-id"]


def test_template_key_outside_keys_is_reported() -> None:
    doc = {"template": {"src": "t.tmpl", "dest": "/x", "keys": ["/meta-data/a"]}}
    _, problems = convert_resource(doc, "conf.d/t.toml", template_keys=[
        ("/meta-data/a", "leaf", 1), ("/meta-data/b", "leaf", 7)], template_name="templates/t.tmpl")
    assert problems == ("templates/t.tmpl:7: key /meta-data/b is not in the keys of "
                        "conf.d/t.toml; add it there (confd could not read it either)",)


def test_resource_problems_name_file_and_line() -> None:
    text = ('[template]\nsrc = "t.tmpl"\ndest = "/x"\nkeys = ["/a"]\nmode = "644"\n'
            'output_format = "json"\nreload_cmd = "{{.src}} {{getenv \\"X\\"}}"\n'
            '[backend]\nbackend = "vault"\n')
    doc = {"template": {"src": "t.tmpl", "dest": "/x", "keys": ["/a"], "mode": "644",
                        "output_format": "json", "reload_cmd": '{{.src}} {{getenv "X"}}'},
           "backend": {"backend": "vault"}}
    entry, problems = convert_resource(doc, "conf.d/t.toml", text=text)
    assert problems == (
        "conf.d/t.toml:8: [backend] is not translated (imdsrender reads IMDS only)",
        "conf.d/t.toml:6: field 'output_format' has no imdsrender equivalent; not translated",
        "conf.d/t.toml:5: mode '644' is decimal to confd (= 01204); write \"0644\" if octal "
        "was meant",
        "conf.d/t.toml:7: untranslated {{getenv \"X\"}} in command (only {{.src}}, {{.dest}} "
        "are supported)",
    )
    assert "mode" not in entry
    assert entry["reload_cmd"] == '{{ src }} {{getenv "X"}}'


@pytest.mark.parametrize("confd, ours", [
    (15, "15s"), ("2m", "120s"), ("1m30s", "90s"), ("1.5s", "1500ms"), ("1s500ms", "1500ms"),
    ("2s500000us", "2500ms"), ("1h", "3600s"),
    ("300", None), ("", None), ("soon", None), (-5, None), ("-5s", None), (True, None),
])
def test_command_timeouts_read_go_durations(confd: object, ours: Optional[str]) -> None:
    doc = {"template": {"src": "t.tmpl", "dest": "/x", "check_cmd_timeout": confd}}
    entry, problems = convert_resource(doc, "conf.d/t.toml")
    if ours is None:
        assert problems == (f"conf.d/t.toml: check_cmd_timeout {confd!r} is not a duration",)
        assert "check_timeout" not in entry
    else:
        assert problems == ()
        assert entry["check_timeout"] == ours
