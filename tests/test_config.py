"""config.py: settings, resources, key derivation; every error one exact line."""

from __future__ import annotations

import logging
import os
import textwrap
from pathlib import Path
from typing import Callable, Dict, Iterator

import pytest
import yaml

from imdsrender import config
from imdsrender.config import (
    ConfigError,
    ImdsSettings,
    Settings,
    derive_keys,
    load_resources,
    load_settings,
    template_closure,
    yamldoc,
)
from imdsrender.config import templates as config_templates
from imdsrender.errors import UsageError

Build = Callable[..., str]


@pytest.fixture(params=["C", "pure"])
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the YAML tests with libyaml's loader and with the pure-Python one."""
    if request.param == "pure":
        monkeypatch.setattr(yamldoc, "_LOADER", yaml.SafeLoader)
    elif not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML built without libyaml")
    yield request.param


@pytest.fixture
def confdir(tmp_path: Path, loader: str) -> Build:
    """build({"conf.d/app.yaml": "...", "templates/x.j2": "..."}) -> confdir path."""

    def build(files: Dict[str, str]) -> str:
        (tmp_path / "conf.d").mkdir(exist_ok=True)
        (tmp_path / "templates").mkdir(exist_ok=True)
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return str(tmp_path)

    return build


def error_of(func: Callable[..., object], *args: object, **kwargs: object) -> str:
    with pytest.raises(UsageError) as info:
        func(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def one(build: Build, resource_yaml: str, templates: Dict[str, str]) -> config.Resource:
    files = {"conf.d/app.yaml": resource_yaml}
    files.update({f"templates/{k}": v for k, v in templates.items()})
    (resource,) = load_resources(build(files))
    return resource


# ----------------------------------------------------------------- settings

def test_settings_defaults_without_a_file(tmp_path: Path) -> None:
    assert load_settings(None) == Settings()
    assert load_settings(str(tmp_path / "absent.yaml")) == Settings()


def test_settings_required_file_must_exist(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")
    assert error_of(load_settings, path, required=True) == (
        f"{path}: no such file; check the --config path")


def write(tmp_path: Path, text: str, name: str = "imdsrender.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def test_settings_every_field(tmp_path: Path, loader: str) -> None:
    path = write(tmp_path, """\
        imds:
          endpoint: http://127.0.0.1:1338/
          endpoint_mode: IPv6
          token_ttl: 300
          timeout: 500ms
          retries: 0
          boot_wait: 2m
          allow_imdsv1: true
        cache_ttl: 30s
        concurrency: 4
        """)
    assert load_settings(path) == Settings(
        imds=ImdsSettings(endpoint="http://127.0.0.1:1338", endpoint_mode="ipv6",
                          token_ttl=300, timeout=0.5, retries=0, boot_wait=120.0,
                          allow_imdsv1=True),
        cache_ttl=30.0, concurrency=4)


def test_settings_empty_file_and_empty_values_are_defaults(tmp_path: Path, loader: str) -> None:
    assert load_settings(write(tmp_path, "")) == Settings()
    assert load_settings(write(tmp_path, "imds:\ncache_ttl:\n")) == Settings()


@pytest.mark.parametrize("text,message", [
    ("cache_tl: 5s\n", "1: unknown field 'cache_tl' (did you mean 'cache_ttl'?)"),
    ("imds:\n  retires: 2\n", "2: unknown field 'retires' (did you mean 'retries'?)"),
    ("zzz: 1\n", "1: unknown field 'zzz'; known fields: imds, cache_ttl, concurrency"),
    ("imds:\n  token_ttl: 0\n", "2: token_ttl must be 1..21600, not 0"),
    ("imds:\n  token_ttl: 21601\n", "2: token_ttl must be 1..21600, not 21601"),
    ("imds:\n  token_ttl: '60'\n", "2: token_ttl must be a whole number, not a string"),
    ("imds:\n  retries: -1\n", "2: retries must be >= 0, not -1"),
    ("imds:\n  retries: true\n", "2: retries must be a whole number, not a boolean"),
    ("concurrency: 0\n", "1: concurrency must be 1..256, not 0"),
    ("concurrency: 4000000\n", "1: concurrency must be 1..256, not 4000000"),
    ("imds:\n  endpoint_mode: ipv5\n", "2: endpoint_mode must be ipv4 or ipv6, not 'ipv5'"),
    ("imds:\n  endpoint: 169.254.169.254\n",
     "2: endpoint '169.254.169.254' is not an http:// URL; write e.g. http://169.254.169.254"),
    ("imds:\n  timeout: 0s\n", "2: timeout must be more than 0"),
    ("imds:\n  boot_wait: 1 minute\n",
     "2: invalid duration '1 minute'; write e.g. 500ms, 30s, 2m, 1h or plain seconds"),
    ("cache_ttl: -1s\n", "1: negative duration '-1s'; durations must be >= 0"),
    ("imds:\n  allow_imdsv1: maybe\n", "2: allow_imdsv1 must be true or false, not a string"),
    ("imds: 3\n", "1: imds must be a mapping, not a number"),
    ("- a\n", "1: the settings file must be a mapping, not a list"),
    ("concurrency: 2\nconcurrency: 3\n", "2: field 'concurrency' is given twice"),
])
def test_settings_errors_name_file_line_and_field(tmp_path: Path, loader: str, text: str,
                                                  message: str) -> None:
    path = write(tmp_path, text)
    assert error_of(load_settings, path) == f"{path}:{message}"


def test_settings_yaml_syntax_error_has_the_line(tmp_path: Path, loader: str) -> None:
    path = write(tmp_path, "imds:\n  retries: 3\n  timeout: [1s\n\nconcurrency: 2\n")
    message = error_of(load_settings, path)
    assert message.startswith(f"{path}:5: invalid YAML: ")


def test_settings_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "imdsrender.yaml"
    path.write_bytes(b"cache_ttl: 5s\n# \xff\n")
    assert error_of(load_settings, str(path)) == (
        f"{path}:2: not valid UTF-8 (byte 17 of the file); save the file as UTF-8")


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


# ------------------------------------------------------------ derived keys

@pytest.mark.parametrize("call,key", [
    ('getv("/meta-data/instance-id")', "/meta-data/instance-id"),
    ("getv('/instance-id', 'none')", "/meta-data/instance-id"),
    ('getv(key="/latest/meta-data/ami-id")', "/meta-data/ami-id"),
    ('exists("/meta-data/public-ipv4")', "/meta-data/public-ipv4"),
    ('exists("/user-data")', "/user-data"),
    ('getvs("/meta-data/tags/instance/*")', "/meta-data/tags/instance/"),
    ('gets("/tags/instance/Env*")', "/meta-data/tags/instance/"),
    ('getvs("/meta-data/network/interfaces/macs/*/local-ipv4s")',
     "/meta-data/network/interfaces/macs/"),
    ('gets("/meta-data/placement/region")', "/meta-data/placement/region"),
    ('ls("/meta-data/tags/instance")', "/meta-data/tags/instance/"),
    ('ls("/meta-data/tags/instance/")', "/meta-data/tags/instance/"),
    ('lsdir("/network/interfaces/macs")', "/meta-data/network/interfaces/macs/"),
    ('json("/dynamic/instance-identity/document")', "/dynamic/instance-identity/document"),
    ('getv("/meta-data/" ~ "instance-type")', "/meta-data/instance-type"),
    ('getv("/meta-data/" + "mac")', "/meta-data/mac"),
])
def test_derived_key_for_each_function(call: str, key: str) -> None:
    assert derive_keys("{{ " + call + " }}", "x.j2") == (key,)


def test_derived_keys_from_every_kind_of_statement() -> None:
    source = textwrap.dedent("""\
        {% if exists("/meta-data/public-ipv4") %}pub={{ getv("/meta-data/public-ipv4") }}{% endif %}
        {% for name in ls("/meta-data/tags/instance/") %}{{ name }}{% endfor %}
        {% set doc = json("/dynamic/instance-identity/document") %}
        {% macro m() %}{{ getv("/meta-data/hostname") }}{% endmacro %}
        {{ m() }}{{ getv("/placement/region") | upper }}
        {% for ls in [1] %}{{ ls }}{% endfor %}
        """)
    assert derive_keys(source, "x.j2") == (
        "/dynamic/instance-identity/document", "/meta-data/hostname",
        "/meta-data/placement/region", "/meta-data/public-ipv4", "/meta-data/tags/instance/")


def test_no_calls_no_keys() -> None:
    assert derive_keys("static {{ 1 + 1 }}\n", "x.j2") == ()


@pytest.mark.parametrize("source,line,what", [
    ('a\n\n{% for t in ls("/tags/instance/") %}{{ getv("/tags/instance/" ~ t) }}{% endfor %}',
     3, "key of getv() is not a literal"),
    ("{{ exists(k) }}", 1, "key of exists() is not a literal"),
    ("{{ getvs(p) }}", 1, "key of getvs() is not a literal"),
    ("{{ getv(*args) }}", 1, "key of getv() is not a literal"),
    ("\n{% set f = getv %}{{ f('/x') }}", 2, "getv is used other than as a direct call getv(...)"),
    ("{{ ls(['/a']) }}", 1, "key of ls() is not a string; write ls(\"...\")"),
    ("{{ getv() }}", 1, "getv() has no key argument; write getv(\"/meta-data/...\")"),
    ('{% include name %}', 1, "template name is not a literal"),
])
def test_underivable_keys_are_errors(source: str, line: int, what: str) -> None:
    message = error_of(derive_keys, source, "x.j2", origin="conf.d/app.yaml:3")
    if ";" not in what:
        what += ("; list the keys under keys: in conf.d/app.yaml:3 (a directory key such as "
                 "/meta-data/tags/instance/ covers everything below it)")
    assert message == f"templates/x.j2:{line}: {what}"


def test_invalid_literal_key() -> None:
    assert error_of(derive_keys, '{{ getv("/a/%2e%2e/b") }}', "x.j2") == (
        "templates/x.j2:1: invalid key '/a/%2e%2e/b': '%2e%2e' is not allowed in a key; "
        "write the plain metadata path, e.g. /meta-data/instance-id")


def test_pattern_without_a_directory() -> None:
    assert error_of(derive_keys, '{{ getvs("*") }}', "x.j2") == (
        "templates/x.j2:1: invalid key '*': a pattern needs a directory before its first "
        "wildcard; write e.g. /meta-data/tags/instance/*")


def test_template_syntax_error_names_template_and_line(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "ok\n{{ getv('/x') }}\n{% if %}\n"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:3: Expected an expression, got 'end of statement block'")


def test_syntax_is_checked_even_when_keys_are_given(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                                       "    keys: [/x]\n",
                    "templates/a.j2": "{% include 'inc.j2' %}",
                    "templates/inc.j2": "\n{{ getv('/x') }\n"})
    assert error_of(load_resources, root) == "templates/inc.j2:2: unexpected '}'"


def test_given_keys_are_not_derived(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n"
                            "    keys: [/tags/instance/, /tags/instance/]\n",
                   {"a.j2": '{% for t in ls("/tags/instance/") %}'
                            '{{ getv("/tags/instance/" ~ t) }}{% endfor %}'})
    assert resource.keys == ("/meta-data/tags/instance/",)


def test_underivable_resource_error_points_at_the_resource(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "{{ getv(k) }}"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:1: key of getv() is not a literal; list the keys under keys: in "
        "conf.d/app.yaml:2 (a directory key such as /meta-data/tags/instance/ covers "
        "everything below it)")


def test_includes_imports_and_extends_are_followed(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n", {
        "a.j2": '{% extends "base.j2" %}{% block b %}{% include "inc.j2" %}{% endblock %}',
        "base.j2": '{{ getv("/ami-id") }}{% block b %}{% endblock %}'
                   '{% import "lib/m.j2" as m with context %}'
                   '{% from "lib/n.j2" import f with context %}',
        "inc.j2": '{{ getv("/instance-id") }}{% include ["nope.j2", "alt.j2"] %}'
                  '{% include "missing.j2" ignore missing %}{% include "a.j2" %}',
        "alt.j2": '{{ getv("/mac") }}',
        "lib/m.j2": '{% macro x() %}{{ getv("/hostname") }}{% endmacro %}',
        "lib/n.j2": '{% macro f() %}{{ getv("/local-ipv4") }}{% endmacro %}',
    })
    assert resource.keys == ("/meta-data/ami-id", "/meta-data/hostname",
                             "/meta-data/instance-id", "/meta-data/local-ipv4", "/meta-data/mac")
    root = os.path.dirname(os.path.dirname(resource.src))
    assert template_closure(os.path.join(root, "templates"), "a.j2") == (
        "a.j2", "base.j2", "inc.j2", "lib/m.j2", "lib/n.j2", "alt.j2")
    assert resource.closure == template_closure(os.path.join(root, "templates"), "a.j2")


def test_resource_with_listed_keys_still_carries_its_closure(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n    keys: [/x]\n", {
        "a.j2": "{% include 'b.j2' %}", "b.j2": "{% include 'c.j2' %}", "c.j2": "z"})
    assert (resource.keys, resource.closure) == (("/meta-data/x",), ("a.j2", "b.j2", "c.j2"))


def test_missing_include_names_the_including_line(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "x\n\n{% include 'nope.j2' %}\n"})
    assert error_of(load_resources, root) == (
        f"templates/a.j2:3: template 'nope.j2' does not exist; looked in {root}/templates")


def test_import_without_context_cannot_reach_the_functions(confdir: Build) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n  - src: a.j2\n    dest: /etc/a\n",
                    "templates/a.j2": "\n{% import 'm.j2' as m %}{{ m.x() }}",
                    "templates/m.j2": "{% macro x() %}{{ getv('/x') }}{% endmacro %}"})
    assert error_of(load_resources, root) == (
        "templates/a.j2:2: 'm.j2' is imported without context, so its getv() cannot see the "
        "metadata; write {% import 'm.j2' as ... with context %}")


def test_import_without_context_of_a_plain_macro_file_is_fine(confdir: Build) -> None:
    resource = one(confdir, "templates:\n  - src: a.j2\n    dest: /etc/a\n", {
        "a.j2": "{% import 'm.j2' as m %}{{ m.x(getv('/x')) }}",
        "m.j2": "{% macro x(v) %}[{{ v }}]{% endmacro %}"})
    assert resource.keys == ("/meta-data/x",)


def test_each_template_is_parsed_once(confdir: Build, monkeypatch: pytest.MonkeyPatch) -> None:
    root = confdir({"conf.d/app.yaml": "templates:\n" + "".join(
        f"  - src: a.j2\n    dest: /etc/{i}\n" for i in range(5)),
        "templates/a.j2": "{{ getv('/x') }}{% include 'i.j2' %}", "templates/i.j2": ""})
    seen = []
    real = config_templates.scan_template
    monkeypatch.setattr(config_templates, "scan_template",
                        lambda env, src, name: seen.append(name) or real(env, src, name))
    assert len(load_resources(root)) == 5
    assert seen == ["a.j2", "i.j2"]


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError) and ConfigError.exit_code == 2
