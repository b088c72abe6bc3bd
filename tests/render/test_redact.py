"""Redaction of credentials values in messages (imdsrender.render.redact), exactly.

The rule: a run of 8 or more characters shared with a credentials value
(case-insensitive; the whole value when it is shorter, from 4 characters)
becomes one ``<redacted>`` per contiguous hidden stretch; JSON credentials
contribute each string or number field on its own.
"""

from __future__ import annotations

import pytest

from imdsrender.render.redact import redact, secret_strings

KEY = "wJalrXUtnFEMI/K7MDENG"


def test_a_non_json_value_is_its_own_only_secret() -> None:
    assert list(secret_strings("plain-secret")) == ["plain-secret"]


def test_json_credentials_list_every_string_and_number_field() -> None:
    raw = '{"Code": "Success", "Keys": ["AKIAEXAMPLE", {"Deep": 12345}], "N": 1.5, ' \
          '"On": true, "None": null}'
    assert list(secret_strings(raw)) == [raw, "Success", "AKIAEXAMPLE", "12345", "1.5"]


def test_a_json_scalar_lists_itself_twice_and_nothing_else() -> None:
    assert list(secret_strings('"abc"')) == ['"abc"', "abc"]
    assert list(secret_strings("true")) == ["true"]


@pytest.mark.parametrize("text, secrets, expected", [
    ("", [KEY], ""),
    ("nothing shared", [KEY], "nothing shared"),
    # an 8-character run shared with the secret is hidden, in any case
    (f"key={KEY} end", [KEY], "key=<redacted> end"),
    (f"key={KEY.upper()[:8]}!", [KEY], "key=<redacted>!"),
    (f"{KEY}", [KEY], "<redacted>"),  # hidden from the first character
    # 7 shared characters are not a secret's part
    (f"x{KEY[:7]}x", [KEY], f"x{KEY[:7]}x"),
    # short values are hidden whole, from 4 characters on
    ("pin 4821 ok", ["4821"], "pin <redacted> ok"),
    ("pin 482 ok", ["482"], "pin 482 ok"),
    ("code abcdefg!", ["abcdefg"], "code <redacted>!"),
    # two stretches apart stay two; touching stretches are one
    ("4821-4821", ["4821"], "<redacted>-<redacted>"),
    ("48214821", ["4821"], "<redacted>"),
    # a stretch at the very start of a message that goes on
    ("4821 ok", ["4821"], "<redacted> ok"),
    # a too-short value is skipped, the values after it still count
    ("x 4821 y", ["ab", "4821"], "x <redacted> y"),
    # every secret counts, whatever its length group
    ("a 4821 b wJalrXUt c", ["4821", KEY], "a <redacted> b <redacted> c"),
])
def test_redact_hides_every_shared_stretch_once(text: str, secrets: list, expected: str) -> None:
    assert redact(text, secrets) == expected
