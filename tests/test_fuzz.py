"""Property-based fuzzing (hypothesis) of everything that parses outside input.

Keys, listings (arbitrary bytes), durations, Retry-After values, settings and
resource files (arbitrary YAML documents and arbitrary text), fixtures, and
the template functions over arbitrary metadata values.  The contract under
test: a clean one-line error of the documented kind, or a valid result;
never any other exception.

Profiles and seed
-----------------
``HYPOTHESIS_PROFILE=ci`` (the default) runs 150 examples a test with the
fixed seed below, so CI is reproducible; the seed and profile are printed at
the start of the run.  A longer local run::

    HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py           # 5,000 examples, random seed
    HYPOTHESIS_PROFILE=long HYPOTHESIS_SEED=123 pytest tests/test_fuzz.py

The long profile picks a fresh seed each run unless HYPOTHESIS_SEED is set,
and prints it, so a failure found there can be replayed exactly.
"""

from __future__ import annotations

import base64
import json
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st

from imdsrender.config import (
    ImdsSettings,
    Resource,
    Settings,
    load_resources,
    load_settings,
)
from imdsrender.errors import Error, UsageError
from imdsrender.fetch import Snapshot
from imdsrender.fixture import FixtureError, parse_fixture
from imdsrender.imds.policy import parse_retry_after
from imdsrender.keys import PUBLIC_KEYS, InvalidKey, normalize_key, parse_listing
from imdsrender.quantities import parse_duration
from imdsrender.render import RenderError, make_environment, render

CI_SEED = 20241129
settings.register_profile("ci", max_examples=150, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5000, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if os.environ.get("HYPOTHESIS_SEED"):
    SEED = int(os.environ["HYPOTHESIS_SEED"])
else:
    SEED = CI_SEED if PROFILE == "ci" else random.SystemRandom().randrange(2 ** 32)


def fuzz(test: Callable[..., None]) -> Callable[..., None]:
    """This module's profile and seed, without changing other modules' settings."""
    return settings(settings.get_profile(PROFILE))(seed(SEED)(test))


def test_print_seed(capsys: pytest.CaptureFixture) -> None:
    """Shown in CI output: what to set to replay this run."""
    with capsys.disabled():
        print(f"\nhypothesis: HYPOTHESIS_PROFILE={PROFILE} HYPOTHESIS_SEED={SEED} "
              f"max_examples={settings.get_profile(PROFILE).max_examples}")


ROOTS = ("/meta-data", "/dynamic", "/user-data")
HOSTILE = set("?#%")

# --------------------------------------------------------------------- keys


@fuzz
@given(st.text())
@example("/latest/meta-data/../x")
@example("/latest")
@example("//meta-data//x//")
def test_normalize_key_is_canonical_or_refused(key: str) -> None:
    try:
        path = normalize_key(key)
    except InvalidKey as exc:
        assert exc.exit_code == 2
        return
    assert any(path == r or path.startswith(r + "/") for r in ROOTS), path
    assert normalize_key(path) == path  # idempotent
    assert "//" not in path
    parts = [p for p in path.split("/") if p]
    assert all(p not in (".", "..") and not HOSTILE & set(p) for p in parts), path
    assert path.endswith("/") == (key.strip().endswith("/") and path != "/user-data")


@fuzz
@given(st.text(alphabet=st.characters(blacklist_characters="/?#%", blacklist_categories=["Cs"]),
               min_size=1).filter(lambda s: s.strip() not in ("", ".", "..")))
def test_latest_prefix_and_bare_keys_are_the_same_key(name: str) -> None:
    name = name.strip()
    assert normalize_key("/latest/meta-data/" + name) == normalize_key("/meta-data/" + name)
    assert normalize_key("/" + name) == normalize_key("/meta-data/" + name) \
        or name in ("meta-data", "dynamic", "user-data")


# ----------------------------------------------------------------- listings


@fuzz
@given(st.binary(max_size=400), st.sampled_from(["/meta-data/", PUBLIC_KEYS,
                                                 "/meta-data/tags/instance/"]))
@example(b"a\r\n\r\na\n..\n.\n/x\na/b/\n0=key\n=x\n", PUBLIC_KEYS)
@example(b"\xff\xfe\x00\n\x7f", "/meta-data/")
def test_listing_parsing_over_arbitrary_bytes(body: bytes, directory: str) -> None:
    children, skipped = parse_listing(directory, body)
    assert len(set(children)) == len(children)
    for child in children:
        assert child.startswith(directory)
        name = child[len(directory):]
        bare = name[:-1] if name.endswith("/") else name
        assert bare not in ("", ".", "..") and "/" not in bare
        assert not HOSTILE & set(bare) and all(ord(c) >= 32 for c in bare)
        assert "\r" not in name and name == name.strip()
    # the cleaned listing is a fixed point: parsing it again changes nothing
    again = "\n".join(c[len(directory):] for c in children)
    assert parse_listing(directory, again.encode("utf-8", "surrogateescape"))[0] == children


@fuzz
@given(st.lists(st.text(alphabet="abcXYZ09-_.:=", min_size=1, max_size=8), max_size=8))
def test_listing_entries_keep_their_kind(names: List[str]) -> None:
    """Sub-directories end in '/', leaves do not, whatever the entry's content."""
    entries = [n + "/" if i % 2 else n for i, n in enumerate(names)]
    children, _ = parse_listing("/meta-data/tags/instance/", "\n".join(entries).encode())
    for child in children:
        name = child[len("/meta-data/tags/instance/"):]
        assert name in entries  # never rewritten ('=' only matters under public-keys/)


# ---------------------------------------------------------------- durations


@fuzz
@given(st.one_of(st.text(max_size=30),
                 st.text(alphabet="0123456789.mshd -+e", max_size=20),
                 st.integers(), st.floats(), st.booleans(), st.none()))
@example(10 ** 400)
@example("1m30s")
@example("9" * 400)
@example("-5s")
def test_duration_is_seconds_or_a_config_error(value: Any) -> None:
    try:
        seconds = parse_duration(value, "--flag")
    except UsageError as exc:
        assert str(exc).startswith("--flag: ")
        return
    assert isinstance(seconds, float) and math.isfinite(seconds) and seconds >= 0


def test_huge_integer_duration_is_a_config_error() -> None:
    with pytest.raises(UsageError):
        parse_duration(10 ** 400, "imdsrender.yaml:2")
    _load_settings_text("imds:\n  timeout: 1" + "0" * 400 + "\n")


@fuzz
@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["ms", "s", "m", "h"])),
                min_size=1, max_size=4))
def test_duration_sums_its_parts(parts: List[Tuple[int, str]]) -> None:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    text = "".join(f"{n}{u}" for n, u in parts)
    expected = sum(n * units[u] for n, u in parts)
    assert parse_duration(text, "x") == pytest.approx(expected)


@fuzz
@given(st.one_of(st.text(max_size=40), st.text(alphabet="0123456789 -+,:GMTSunMonDec",
                                               max_size=40)))
@example("Wed, 21 Oct 2015 07:28:00 GMT")
@example("-1")
@example("\u00b2")
def test_retry_after_is_seconds_or_no_advice(value: str) -> None:
    wait = parse_retry_after(value, now=1_700_000_000.0)
    assert wait is None or (math.isfinite(wait) and wait >= 0)


@pytest.mark.parametrize("value", ["\u00b2", " \u00b9\u00b3 "])
def test_retry_after_unicode_digit_is_no_advice(value: str) -> None:
    assert parse_retry_after(value, now=1_700_000_000.0) is None


# ------------------------------------------------------------ config files

YAML_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                         st.text(max_size=20), st.sampled_from(
                             ["1s", "0s", "-1s", "0640", "root", "0", "http://127.0.0.1:9",
                              "ipv6", "21600", "a.j2", "/tmp/x", "yes", "~"]))
YAML_VALUES = st.recursive(YAML_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.text(max_size=10), st.integers(), st.booleans()), inner,
                    max_size=4)), max_leaves=12)
IMDS_DOC = st.dictionaries(st.sampled_from(sorted(ImdsSettings.__dataclass_fields__)
                                           + ["bogus"]), YAML_VALUES, max_size=5)
SETTINGS_DOC = st.one_of(YAML_VALUES, st.fixed_dictionaries({}, optional={
    "imds": st.one_of(IMDS_DOC, YAML_VALUES), "cache_ttl": YAML_VALUES,
    "concurrency": YAML_VALUES}))
RESOURCE_FIELDS = ("src", "dest", "keys", "mode", "owner", "group", "check_cmd",
                   "reload_cmd", "check_timeout", "reload_timeout")
RESOURCE_DOC = st.fixed_dictionaries(
    {"src": st.one_of(st.just("a.j2"), YAML_VALUES),
     "dest": st.one_of(st.just("/tmp/imdsrender-fuzz/a"), YAML_VALUES)},
    optional={**{name: YAML_VALUES for name in RESOURCE_FIELDS[2:]},
              "keys": st.one_of(YAML_VALUES, st.lists(st.one_of(
                  st.text(max_size=15), st.sampled_from(["/instance-id", "/tags/instance/",
                                                         "/meta-data/../x"])), max_size=3))})
CONFD_DOC = st.one_of(YAML_VALUES, st.fixed_dictionaries(
    {"templates": st.one_of(st.lists(RESOURCE_DOC, max_size=3), YAML_VALUES)}))
YAML_TOKENS = st.lists(st.sampled_from([
    "imds:", "templates:", "\n", "  ", "- ", "src: a.j2", "dest: /tmp/x", "timeout: ",
    "keys: [", "]", "{", "}", "'", '"', ":", ",", "1s", "0o777", "~", "null", "true",
    "&a ", "*a", "<<: *a", "!!python/object:os.system ", "!tag ", "!!binary ", "? ",
    "mode: 0640", "owner: ", "\t", "#", "%YAML 1.1\n", "---\n", "...\n", "\u00b2", "\x00",
    "concurrency: ", "cache_ttl: ", "boot_wait: ", "token_ttl: "]), max_size=30).map("".join)


def _settings_ok(result: Settings) -> None:
    imds = result.imds
    assert 1 <= imds.token_ttl <= 21600 and imds.timeout > 0 and imds.retries >= 0
    assert math.isfinite(imds.boot_wait) and imds.boot_wait >= 0
    assert result.concurrency >= 1 and math.isfinite(result.cache_ttl)
    assert imds.endpoint_mode in ("ipv4", "ipv6")


def _load_settings_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "imdsrender.yaml")
        Path(path).write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            result = load_settings(path, required=True)
        except UsageError as exc:
            assert str(exc).startswith(path) and exc.exit_code == 2
            return
        _settings_ok(result)


@fuzz
@given(SETTINGS_DOC)
@example({"imds": {"timeout": 10 ** 400}, "cache_ttl": 10 ** 400})
def test_settings_from_arbitrary_yaml_documents(doc: Any) -> None:
    _load_settings_text(yaml.safe_dump(doc, allow_unicode=True))


@fuzz
@given(st.one_of(YAML_TOKENS, st.text(max_size=200)))
@example("imds: &a {timeout: 1s}\ncache_ttl: *a\n")
@example("!!python/object/apply:os.system ['true']\n")
def test_settings_from_arbitrary_text(text: str) -> None:
    _load_settings_text(text)


def _confd_resources(text: str, template: str = "{{ getv('/instance-id') }}\n"
                     ) -> Tuple[Resource, ...]:
    """load_resources() on a confdir holding conf.d/x.yaml = *text* and templates/a.j2."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "conf.d").mkdir()
        (Path(tmp) / "templates").mkdir()
        (Path(tmp) / "templates" / "a.j2").write_text(template)
        (Path(tmp) / "conf.d" / "x.yaml").write_text(text, encoding="utf-8",
                                                     errors="surrogateescape")
        return load_resources(tmp)


def _load_confd(text: str, template: str = "{{ getv('/instance-id') }}\n") -> None:
    """Valid resources, or a ConfigError naming the file; nothing else."""
    try:
        resources = _confd_resources(text, template)
    except UsageError as exc:
        assert str(exc).startswith(("conf.d/x.yaml", "templates/a.j2"))
        assert exc.exit_code == 2, str(exc)
        return
    for resource in resources:
        assert isinstance(resource, Resource)
        assert resource.dest.startswith("/")
        assert 0 <= resource.mode <= 0o7777
        for ident in (resource.owner, resource.group):
            assert ident is None or 0 <= ident < 2 ** 32 - 1, ident


@fuzz
@given(CONFD_DOC)
@example({"templates": [{"src": "a.j2", "dest": "/tmp/x", "owner": 10 ** 20}]})
@example({"templates": [{"src": "a.j2", "dest": "/tmp/x", "group": "\u00b2"}]})
def test_resources_from_arbitrary_yaml_documents(doc: Any) -> None:
    _load_confd(yaml.safe_dump(doc, allow_unicode=True))


@pytest.mark.parametrize("owner", ["100000000000000000000", "4294967295", "\u00b2"])
def test_owner_out_of_range_is_a_config_error(owner: str) -> None:
    """os.fchown() would raise OverflowError (not OSError) on these, mid-write."""
    with pytest.raises(UsageError):
        _confd_resources(f"templates:\n  - src: a.j2\n    dest: /tmp/x\n    owner: '{owner}'\n")


@fuzz
@given(YAML_TOKENS, st.text(max_size=60))
@example("templates:\n- src: a.j2\n  dest: /tmp/x\n", "{{ getv(")
@example("templates:\n- src: a.j2\n  dest: /tmp/x\n", "{% include 'a.j2' %}")
def test_resources_from_arbitrary_text_and_templates(text: str, template: str) -> None:
    _load_confd(text, template)


@fuzz
@given(st.one_of(YAML_VALUES, st.dictionaries(st.one_of(
    st.text(max_size=20), st.sampled_from(["/meta-data/a", "/meta-data/a/", "/user-data",
                                           "/meta-data/a/b", "/latest/dynamic/x"])),
    st.one_of(YAML_SCALARS, st.fixed_dictionaries({"base64": st.text(max_size=12)})),
    max_size=5)))
def test_fixture_is_served_or_refused(doc: Any) -> None:
    try:
        values = parse_fixture(doc, "fixture.json")
    except FixtureError as exc:
        assert str(exc).startswith("fixture.json") and exc.exit_code == 2
        return
    assert all(isinstance(v, bytes) for v in values.values())


# --------------------------------------------------------- template functions

NAMES = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF,
                                       blacklist_characters="/?#%\\'\""),
                min_size=1, max_size=6).filter(lambda n: n not in (".", "..", "sub")
                                               and n == n.strip())
ROOT_DIR = "/meta-data/fz/"


@st.composite
def snapshots(draw: Any) -> Snapshot:
    """A small tree under /meta-data/fz/ with arbitrary bytes as values."""
    names = draw(st.lists(NAMES, max_size=5, unique=True))
    values = {ROOT_DIR + n: draw(st.binary(max_size=40)) for n in names}
    sub = draw(st.lists(NAMES, max_size=3, unique=True))
    for n in sub:
        values[ROOT_DIR + "sub/" + n] = draw(st.binary(max_size=20))
    listings = {ROOT_DIR: tuple(sorted(ROOT_DIR + n for n in names)
                                + ([ROOT_DIR + "sub/"] if sub else [])),
                ROOT_DIR + "sub/": tuple(sorted(ROOT_DIR + "sub/" + n for n in sub))}
    return Snapshot(values=values, listings=listings, requested=(ROOT_DIR,))


CALLS = [
    "{{ getv(ARG) }}", "{{ getv(ARG, 'dflt') }}", "{{ exists(ARG) }}", "{{ getvs(ARG) }}",
    "{{ gets(ARG) | map(attribute='value') | list }}", "{{ ls(ARG) }}", "{{ lsdir(ARG) }}",
    "{{ json(ARG) }}", "{{ json(ARG, none) }}", "{{ getv(ARG, '') | b64encode | b64decode }}",
    "{{ getv(ARG, '') | b64decode }}", "{{ getv(ARG, '') | fromjson }}",
]
ARGUMENTS = st.one_of(
    st.sampled_from([ROOT_DIR, ROOT_DIR + "*", ROOT_DIR + "sub/", ROOT_DIR + "sub/*",
                     "/fz/", "/meta-data/other", "/user-data", "../x", "", "/"]),
    st.builds(lambda n: ROOT_DIR + n, NAMES),
    st.text(max_size=12))


def _literal(value: Any) -> str:
    """A Jinja literal for a string (JSON escapes are valid Jinja string escapes)."""
    return json.dumps(value)


@fuzz
@given(snapshots(), st.sampled_from(CALLS), st.one_of(ARGUMENTS, st.integers(), st.none()))
def test_template_functions_over_arbitrary_values(snapshot: Snapshot, call: str,
                                                  argument: Any) -> None:
    text = call.replace("ARG", "none" if argument is None else _literal(argument))
    try:
        rendered = _render(text, snapshot)
    except RenderError as exc:
        assert isinstance(exc, Error) and exc.exit_code == 1
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(rendered, bytes)


@fuzz
@given(snapshots())
def test_getv_and_base64_round_trip_every_byte(snapshot: Snapshot) -> None:
    for path, value in snapshot.values.items():
        key = _literal(path)
        assert _render("{{ getv(KEY) }}".replace("KEY", key), snapshot) == value
        assert _render("{{ getv(KEY) | b64encode }}".replace("KEY", key), snapshot) == \
            base64.b64encode(value)
        assert _render("{{ getv(KEY) | b64encode | b64decode }}".replace("KEY", key),
                       snapshot) == value


def _render(text: str, snapshot: Snapshot, keys: Optional[Tuple[str, ...]] = None) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "t.j2").write_text(text)
        resource = Resource(origin="conf.d/fuzz.yaml:1", src=os.path.join(tmp, "t.j2"),
                            template="t.j2", dest="/tmp/imdsrender-fuzz/out",
                            keys=keys or (ROOT_DIR,))
        return render(make_environment(tmp), resource, snapshot).content
