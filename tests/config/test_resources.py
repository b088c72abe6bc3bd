"""config.resources (and yamldoc through it): conf.d files; every error one exact line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from imdsrender import config
from imdsrender.config import (
    ConfigError,
    load_resources,
)
from imdsrender.errors import UsageError
from tests.config.support import Build, error_of, one

# ---------------------------------------------------------------- resources

SEED = """\
templates:
  - src: instance.j2
    dest: /etc/app/instance.conf
    keys:
      - /meta-data/instance-id
      - /latest/meta-data/ami-id
      - /local-ipv4
    mode: "0640"
    owner: root
    group: "0"
    check_cmd: /usr/sbin/app --check {{ src }}
    reload_cmd: systemctl reload app
    check_timeout: 5s
    reload_timeout: 2m
"""


def test_resource_every_field(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": SEED, "templates/instance.j2": "x\n"})
    assert load_resources(root) == (config.Resource(
        origin="conf.d/app.yaml:2",
        src=os.path.join(root, "templates", "instance.j2"),
        template="instance.j2",
        dest="/etc/app/instance.conf",
        keys=("/meta-data/ami-id", "/meta-data/instance-id", "/meta-data/local-ipv4"),
        mode=0o640, owner=0, group=0,
        check_cmd="/usr/sbin/app --check {{ src }}",
        reload_cmd="systemctl reload app",
        check_timeout=5.0, reload_timeout=120.0,
        closure=("instance.j2",),
    ),)


def test_resource_defaults(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n", {"a.j2": "static\n"})
    assert (resource.keys, resource.mode, resource.owner, resource.group, resource.check_cmd,
            resource.reload_cmd, resource.check_timeout, resource.reload_timeout) == (
        (), 0o644, None, None, None, None, 30.0, 60.0)


def test_origin_is_the_line_of_each_list_item(confdir: Build) -> None:
    root = confdir({
        "conf.d/app.yaml": """\
            # two resources
            templates:

              - src: a.j2
                dest: /etc/a
              - dest: /etc/b
                src: sub/b.j2
            """,
        "templates/a.j2": "a", "templates/sub/b.j2": "b"})
    first, second = load_resources(root)
    assert (first.origin, second.origin) == ("conf.d/app.yaml:4", "conf.d/app.yaml:6")
    assert second.template == "sub/b.j2"
    assert second.src == os.path.join(root, "templates", "sub", "b.j2")


def test_files_are_read_in_name_order_and_yml_is_ignored_with_a_warning(
        confdir: Build, caplog: pytest.LogCaptureFixture) -> None:
    entry = "templates:\n  - src: a.j2\n    dest: /etc/{}\n"
    root = confdir({"conf.d/b.yaml": entry.format("b"), "conf.d/a.yaml": entry.format("a"),
                    "conf.d/10-c.yaml": entry.format("c"), "conf.d/d.yml": entry.format("d"),
                    "conf.d/.hidden.yaml": entry.format("h"), "conf.d/empty.yaml": "",
                    "templates/a.j2": ""})
    with caplog.at_level(logging.WARNING, logger="imdsrender.config"):
        dests = [r.dest for r in load_resources(root)]
    assert dests == ["/etc/c", "/etc/a", "/etc/b"]
    assert "d.yml: ignored; resource files must end in .yaml" in caplog.text


def test_missing_confd_directory(tmp_path: Path) -> None:
    assert error_of(load_resources, str(tmp_path)) == (
        f"{tmp_path}/conf.d: no such directory; create it with one or more *.yaml resource files")


@pytest.mark.parametrize("raw", ['"0640"', "0640", "640", "'640'", '"0o640"', "0o640"])
def test_mode_is_the_raw_text_read_as_octal(confdir: Build, raw: str) -> None:
    resource = one(confdir, f"templates:\n  - src: a.j2\n    dest: /etc/a\n    mode: {raw}\n",
                   {"a.j2": ""})
    assert resource.mode == 0o640


@pytest.mark.parametrize("raw,mode", [("'2750'", 0o2750), ("'07777 '", 0o7777), ("0", 0),
                                      ("'00640'", 0o640)])
def test_mode_with_special_bits_and_spaces(confdir: Build, raw: str, mode: int) -> None:
    resource = one(confdir, f"templates:\n  - src: a.j2\n    dest: /etc/a\n    mode: {raw}\n",
                   {"a.j2": ""})
    assert resource.mode == mode


@pytest.mark.parametrize("raw,shown", [("'0800'", "'0800'"), ("rw-r--r--", "'rw-r--r--'"),
                                       ("0x1a4", "'0x1a4'"), ("[1]", "'a list'"),
                                       ("'12345'", "'12345'"), ("'0o'", "'0o'")])
def test_bad_mode(confdir: Build, raw: str, shown: str) -> None:
    root = confdir({"conf.d/app.yaml": f"templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       f"    mode: {raw}\n", "templates/a.j2": ""})
    assert error_of(load_resources, root) == (
        f"conf.d/app.yaml:4: mode {shown} is not an octal file mode; "
        "write it quoted, e.g. mode: \"0640\"")


def test_credentials_default_to_0600(confdir: Build) -> None:
    derived = one(confdir, "templates:\n  - src: c.j2\n    dest: /etc/c\n",
                  {"c.j2": '{{ json("/meta-data/iam/security-credentials/app")["Token"] }}'})
    assert (derived.keys, derived.mode) == (("/meta-data/iam/security-credentials/app",), 0o600)


@pytest.mark.parametrize("key", [
    "/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
    "/meta-data/iam/", "/iam/security-credentials/",
])
def test_given_keys_containing_credentials_default_to_0600(confdir: Build, key: str) -> None:
    resource = one(confdir, f"templates:\n  - src: c.j2\n    dest: /etc/c\n    keys: [{key}]\n",
                   {"c.j2": ""})
    assert resource.mode == 0o600


def test_explicit_mode_wins_over_the_credentials_default(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: c.j2\n    dest: /etc/c\n    mode: '0640'\n",
                   {"c.j2": '{{ getv("/meta-data/iam/security-credentials/app") }}'})
    assert resource.mode == 0o640


def test_iam_info_is_not_credentials(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: c.j2\n    dest: /etc/c\n",
                   {"c.j2": '{{ json("/meta-data/iam/info")["InstanceProfileArn"] }}'})
    assert resource.mode == 0o644


def test_owner_and_group_by_name_and_number(confdir: Build) -> None:
    import grp
    import pwd
    user = pwd.getpwuid(os.getuid())
    group = grp.getgrgid(os.getgid())
    resource = one(confdir, f"templates:\n  - src: a.j2\n    dest: /etc/a\n"
                            f"    owner: {user.pw_name}\n    group: {group.gr_name}\n",
                   {"a.j2": ""})
    assert (resource.owner, resource.group) == (user.pw_uid, group.gr_gid)
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                            "    owner: 1234\n    group: '4321'\n", {"a.j2": ""})
    assert (resource.owner, resource.group) == (1234, 4321)


@pytest.mark.parametrize("field,value,message", [
    ("owner", "no-such-user-xyz",
     "unknown user 'no-such-user-xyz'; create the user first or give a number"),
    ("group", "no-such-group-xyz",
     "unknown group 'no-such-group-xyz'; create the group first or give a number"),
    ("owner", "-1", "owner -1 is out of range; ids go from 0 to 4294967294"),
    ("group", "4294967295", "group 4294967295 is out of range; ids go from 0 to 4294967294"),
    ("group", "[a]", "group must be a name or a number, not a list"),
])
def test_bad_owner_and_group(confdir: Build, field: str, value: str, message: str) -> None:
    root = confdir({"conf.d/app.yaml": f"templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       f"    {field}: {value}\n", "templates/a.j2": ""})
    assert error_of(load_resources, root) == f"conf.d/app.yaml:4: {message}"


def test_unknown_field_suggests_the_closest(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": """\
        templates:
          - src: a.j2
            dest: /etc/a
            mode: "0640"
            owner: root
            check_cmd: /bin/true
            reload_cmnd: systemctl reload app
        """, "templates/a.j2": ""})
    assert error_of(load_resources, root) == (
        "conf.d/app.yaml:7: unknown field 'reload_cmnd' (did you mean 'reload_cmd'?)")


@pytest.mark.parametrize("field,message", [
    ("uid: 0", "unknown field 'uid' (did you mean 'owner'?)"),
    ("gid: 0", "unknown field 'gid' (did you mean 'group'?)"),
    ("prefix: /x", "unknown field 'prefix'; known fields: src, dest, keys, mode, owner, group, "
                   "check_cmd, reload_cmd, check_timeout, reload_timeout"),
])
def test_confd_fields_get_pointed_to_ours(confdir: Build, field: str, message: str) -> None:
    root = confdir({"conf.d/app.yaml": f"templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       f"    {field}\n", "templates/a.j2": ""})
    assert error_of(load_resources, root) == f"conf.d/app.yaml:4: {message}"


@pytest.mark.parametrize("text,message", [
    ("template:\n  src: a.j2\n",
     "1: unknown field 'template' (did you mean 'templates'?)"),
    ("{}\n", "1: missing field 'templates'; list the resources under templates:"),
    ("templates:\n  src: a.j2\n", "2: templates must be a list of resources, not a mapping; "
                                  "start each resource with '- src: ...'"),
    ("templates:\n  - a.j2\n", "2: a template resource must be a mapping, not a string"),
    ("templates:\n  - dest: /etc/a\n",
     "2: missing field 'src'; name the template, relative to templates/"),
    ("templates:\n  - src: a.j2\n",
     "2: missing field 'dest'; name the absolute path of the file to write"),
    ("templates:\n  - src: a.j2\n    dest: etc/a\n",
     "3: dest 'etc/a' must be an absolute file path; write e.g. dest: /etc/app/app.conf"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a/\n",
     "3: dest '/etc/a/' must be an absolute file path; write e.g. dest: /etc/app/app.conf"),
    ("templates:\n  - src: 5\n    dest: /etc/a\n", "2: src must be a string, not a number"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    src: b.j2\n",
     "4: field 'src' is given twice"),
    ("templates:\n  - src: /etc/a.j2\n    dest: /etc/a\n",
     "2: src '/etc/a.j2' must be a path inside templates/; "
     "write it relative to templates/, e.g. src: app.conf.j2"),
    ("templates:\n  - src: ../a.j2\n    dest: /etc/a\n",
     "2: src '../a.j2' must be a path inside templates/; "
     "write it relative to templates/, e.g. src: app.conf.j2"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    keys: /meta-data/x\n",
     "4: keys must be a list, not a string; write one '- /meta-data/...' line per key"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    keys:\n      - /ok\n      - [x]\n",
     "6: a key must be a string, not a list"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    keys:\n      - /ok\n      - /a/../b\n",
     "6: invalid key '/a/../b': '..' is not allowed in a key; "
     "write the plain metadata path, e.g. /meta-data/instance-id"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    check_timeout: soon\n",
     "4: invalid duration 'soon'; write e.g. 500ms, 30s, 2m, 1h or plain seconds"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    reload_cmd: [a, b]\n",
     "4: reload_cmd must be a string, not a list"),
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n    check_cmd: !!binary aGk=\n",
     "4: check_cmd must be a string, not bytes"),
])
def test_resource_errors(confdir: Build, text: str, message: str) -> None:
    root = confdir({"conf.d/app.yaml": text, "templates/a.j2": "", "templates/b.j2": ""})
    assert error_of(load_resources, root) == f"conf.d/app.yaml:{message}"


def test_missing_template(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - dest: /etc/a\n    src: nope.j2\n"})
    assert error_of(load_resources, root) == (
        f"conf.d/app.yaml:3: template 'nope.j2' does not exist; looked in {root}/templates")


@pytest.mark.parametrize("text,line", [
    ("templates:\n  - src: a.j2\n    dest: /etc/a\n   mode: '0640'\n", 4),
    ("templates:\n  - src: a.j2\n    dest: [/etc/a\n", 4),
    ("templates:\n  - src: 'a.j2\n    dest: /etc/a\n", 4),
    ("templates:\n\t- src: a.j2\n", 2),
    ("templates: *nope\n", 1),
    ("---\ntemplates: []\n---\ntemplates: []\n", 3),
])
def test_yaml_syntax_errors_name_the_line(confdir: Build, text: str, line: int) -> None:
    root = confdir({"conf.d/app.yaml": text, "templates/a.j2": ""})
    assert error_of(load_resources, root).startswith(f"conf.d/app.yaml:{line}: invalid YAML: ")


def test_yaml_syntax_error_message(confdir: Build, loader: str) -> None:
    problem = {"C": "did not find expected '-' indicator",
               "pure": "expected <block end>, but found '<block mapping start>'"}[loader]
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       "   mode: '0640'\n", "templates/a.j2": ""})
    assert error_of(load_resources, root) == (
        f"conf.d/app.yaml:4: invalid YAML: {problem} (while parsing a block collection at line 2)")


def test_duplicate_dest_across_files(confdir: Build) -> None:
    root = confdir({
        "conf.d/a.yaml": "templates:\n  - src: a.j2\n    dest: /etc/app.conf\n",
        "conf.d/b.yaml": "templates:\n  - src: a.j2\n    dest: /etc/x\n"
                         "  - src: a.j2\n    dest: /etc//./app.conf\n",
        "templates/a.j2": ""})
    assert error_of(load_resources, root) == (
        "conf.d/b.yaml:5: dest /etc/app.conf is already written by conf.d/a.yaml:2; "
        "give each resource its own dest")


def test_dest_root_re_roots_every_dest(confdir: Build, tmp_path: Path) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/app/a.conf\n"
                                       "  - src: a.j2\n    dest: /b.conf\n",
                    "templates/a.j2": ""})
    out = str(tmp_path / "out")
    assert [r.dest for r in load_resources(root, dest_root=out)] == [
        f"{out}/etc/app/a.conf", f"{out}/b.conf"]


def test_merge_keys_share_fields(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": """\
        templates:
          - &base
            src: a.j2
            dest: /etc/a
            mode: "0640"
            reload_cmd: systemctl reload app
          - <<: *base
            dest: /etc/b
        """, "templates/a.j2": ""})
    first, second = load_resources(root)
    assert (second.dest, second.mode, second.reload_cmd, second.origin) == (
        "/etc/b", 0o640, "systemctl reload app", "conf.d/app.yaml:7")


def test_null_field_counts_as_absent(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n    owner:\n    keys:\n",
                   {"a.j2": '{{ getv("/instance-id") }}'})
    assert (resource.owner, resource.keys) == (None, ("/meta-data/instance-id",))


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError) and ConfigError.exit_code == 2
