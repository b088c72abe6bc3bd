"""quoting.py: every filter's output read back by the real readers, byte for byte.

The readers (tests/env_readers.py) are sh, dash and bash sourcing the file
and systemd's own env-file parser.  The boot test runs the same hostile
values under a real manager (tests/data/hostile-env/).
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Dict, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imdsrender.errors import Error
from imdsrender.render.quoting import QuotingError, env_name, envfile, shell_quote, single_line
from tests.env_readers import (
    HOSTILE,
    LIBSYSTEMD_SHARED,
    SHELLS,
    hostile,
    needs_systemd,
    raw,
    source,
    systemd_env,
)

DATA = Path(__file__).parent.parent / "data" / "hostile-env"
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

LINE_BREAKING = {"newline-override", "backslash-newline", "cr", "line-separator",
                 "paragraph-separator", "next-line"}
CONTROL = LINE_BREAKING | {"nul", "escape", "blanks", "invalid-utf8"}  # "blanks" holds a tab


def write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "file.env"
    path.write_bytes(raw(line + "\n"))
    return path


# ------------------------------------------------------------ shquote

@pytest.mark.parametrize("shell", SHELLS)
@PROPERTY
@given(value=st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_shell_quote_round_trips_any_value_through_the_shell(
        shell: str, tmp_path: Path, value: str) -> None:
    if "\0" in value:
        with pytest.raises(QuotingError):
            shell_quote(value)
        return
    path = write(tmp_path, f"X={shell_quote(value)}")
    assert source(shell, path) == {"value": raw(value)}


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("name", sorted(set(HOSTILE) - {"nul"}))
def test_shell_quote_hostile_value_is_read_back_and_runs_nothing(
        shell: str, name: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = hostile(name, marker)
    path = write(tmp_path, f"X={shell_quote(value)}")
    assert source(shell, path) == {"value": raw(value)}  # no variable but X was added
    assert not marker.exists()


def test_shell_quote_leaves_plain_words_bare_and_quotes_the_rest() -> None:
    assert shell_quote("us-east-1") == "us-east-1"
    assert shell_quote(b"10.0.1.23") == "10.0.1.23"
    assert shell_quote("") == "''"
    assert shell_quote("it's") == "'it'\\''s'"
    assert shell_quote("$(x)") == "'$(x)'"


# ------------------------------------------------------------ envfile

def envfile_text() -> st.SearchStrategy[str]:
    """Any text systemd can hold: UTF-8 without NUL (surrogates are not text)."""
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"))


@pytest.mark.parametrize("shell", SHELLS)
@PROPERTY
@given(value=envfile_text())
def test_envfile_round_trips_any_text_through_the_shell(
        shell: str, tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"X={envfile(value, multiline=True)}")
    assert source(shell, path) == {"value": raw(value)}


@pytest.mark.tools
@needs_systemd
@PROPERTY
@given(value=envfile_text(), other=envfile_text())
def test_envfile_round_trips_any_text_through_systemds_parser(
        tmp_path: Path, value: str, other: str) -> None:
    path = tmp_path / "file.env"
    path.write_bytes(raw(f"X={envfile(value, multiline=True)}\n"
                         f"Y={envfile(other, multiline=True)}\n"))
    assert systemd_env(path) == [raw(f"X={value}"), raw(f"Y={other}")]


@needs_systemd
@PROPERTY
@given(value=st.from_regex(r"[A-Za-z0-9@%+=:,./_-]+", fullmatch=True))
def test_envfile_leaves_plain_values_bare_and_both_readers_agree(tmp_path: Path,
                                                                 value: str) -> None:
    assert envfile(value) == value
    path = write(tmp_path, f"X={envfile(value)}")
    assert systemd_env(path) == [raw(f"X={value}")]
    assert source("sh", path) == {"value": raw(value)}


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - LINE_BREAKING - {"nul", "invalid-utf8"}))
def test_envfile_hostile_value_is_read_back_by_sh_and_systemd(name: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = hostile(name, marker)
    path = write(tmp_path, f"X={envfile(value)}")
    for shell in SHELLS:
        assert source(shell, path) == {"value": raw(value)}
    if LIBSYSTEMD_SHARED:
        assert systemd_env(path) == [raw(f"X={value}")]
    assert not marker.exists()


@pytest.mark.parametrize("name", sorted(LINE_BREAKING))
def test_envfile_refuses_line_breaks_unless_multiline(name: str, tmp_path: Path) -> None:
    value = HOSTILE[name]
    with pytest.raises(QuotingError) as caught:
        envfile(value)
    assert_names_problem_not_value(caught.value, "envfile", value)
    path = write(tmp_path, f"X={envfile(value, multiline=True)}")
    for shell in SHELLS:
        assert source(shell, path) == {"value": raw(value)}
    if LIBSYSTEMD_SHARED:
        assert systemd_env(path) == [raw(f"X={value}")]


@pytest.mark.parametrize("name", ["nul", "invalid-utf8"])
def test_envfile_refuses_what_systemd_cannot_hold(name: str, tmp_path: Path) -> None:
    value = HOSTILE[name]
    with pytest.raises(QuotingError) as caught:
        envfile(value, multiline=True)
    assert_names_problem_not_value(caught.value, "envfile", value)
    if LIBSYSTEMD_SHARED and name == "invalid-utf8":  # the reason: systemd drops the whole file
        assert systemd_env(write(tmp_path, f'X="{value}"')) is None


@needs_systemd
def test_shell_style_quoting_is_wrong_for_systemd(tmp_path: Path) -> None:
    """Why envfile exists: systemd reads sh's ``'\\''`` differently."""
    value = "it's"
    assert systemd_env(write(tmp_path, "X=" + shell_quote(value))) == [b"X=it''s'"]
    assert systemd_env(write(tmp_path, "X=" + envfile(value))) == [b"X=it's"]


# ------------------------------------------------------------ single_line

@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_single_line_passes_printable_lines_and_refuses_control(name: str) -> None:
    value = HOSTILE[name]
    if name not in CONTROL:
        assert single_line(value) == value
        return
    with pytest.raises(QuotingError) as caught:
        single_line(value)
    assert_names_problem_not_value(caught.value, "single_line", value)


@given(value=st.text())
def test_single_line_output_is_always_one_printable_line(value: str) -> None:
    try:
        result = single_line(value)
    except QuotingError:
        return
    assert result == value and len(result.splitlines()) <= 1
    assert not any(unicodedata.category(char) == "Cc" for char in result)


def assert_names_problem_not_value(error: Error, where: str, value: str) -> None:
    """One line, the filter and the offending character named, the value never."""
    assert isinstance(error, Error) and error.exit_code == 1
    text = str(error)
    assert text.startswith(f"{where}: value holds ") and "\n" not in text
    for secret in ("web", "attacker", "caf", "a\0b"):
        assert secret not in text


# ------------------------------------------------------------ env_name

@pytest.mark.parametrize("key, expected", [
    ("Name", "TAG_Name"),
    ("app-env", "TAG_app_env"),
    ("a.b:c@d+e=f,g h", "TAG_a_b_c_d_e_f_g_h"),
    ("9lives", "TAG_9lives"),
])
def test_env_name_maps_tag_key_punctuation_to_underscore(key: str, expected: str) -> None:
    assert env_name(key, "TAG_") == expected


@pytest.mark.parametrize("key, prefix, problem", [
    ("PATH", None, "needs a prefix"),
    ("PATH", "", "needs a prefix"),
    ("X", "1_", "needs a prefix"),
    ("X", "A-", "needs a prefix"),
    ("", "TAG_", "key is empty"),
    ("/meta-data/tags/instance/Name", "TAG_", "key holds '/'"),
    ("a\nB", "TAG_", "key holds U+000A"),
    ("é", "TAG_", "key holds U+00E9"),
    ("$(x)", "TAG_", "key holds U+0024"),
])
def test_env_name_refuses_what_is_no_safe_name(key: str, prefix: Optional[str],
                                               problem: str) -> None:
    with pytest.raises(QuotingError) as caught:
        env_name(key, prefix)
    assert str(caught.value).startswith(f"env_name: {problem}")


# ----------------------------------------------- fixture for the boot test

def hostile_env_fixture() -> Dict[str, str]:
    """The values tests/data/hostile-env/ holds; the boot test reads them through systemd."""
    return json.loads((DATA / "values.json").read_text())


def test_hostile_env_fixture_is_what_the_filters_write(tmp_path: Path) -> None:
    """hostile.env is envfile()'s output for values.json; expected.env what printenv shows."""
    values = hostile_env_fixture()
    lines = [f"{key}={envfile(value, multiline=True)}" for key, value in values.items()]
    assert (DATA / "hostile.env").read_bytes() == raw("\n".join(lines) + "\n")
    expected = b"".join(raw(f"{key}={value}") + b"\0" for key, value in values.items())
    assert (DATA / "expected.env0").read_bytes() == expected
    if LIBSYSTEMD_SHARED:
        assert systemd_env(DATA / "hostile.env") == expected.split(b"\0")[:-1]

