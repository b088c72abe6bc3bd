"""Tests for imdsrender.quantities: numbers and durations as users write them."""

from typing import Callable

import pytest

from imdsrender.errors import UsageError
from imdsrender.quantities import MAX_DIGITS, ascii_int, is_ascii_digits, parse_duration


def error_of(func: Callable[..., object], *args: object) -> str:
    with pytest.raises(UsageError) as info:
        func(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("text,value", [("12", 12), (" 7 ", 7), ("\u00b2", None), ("", None),
                                        (None, None), ("-1", None), ("1.0", None)])
def test_ascii_int(text: "str | None", value: "int | None") -> None:
    assert ascii_int(text) == value


def test_ascii_int_bounds_the_digits_before_int() -> None:
    """5,000 digits (past int()'s 4,300-digit limit) is None, not a ValueError."""
    assert ascii_int("9" * MAX_DIGITS) == int("9" * MAX_DIGITS)
    assert ascii_int("9" * 5000) is None
    assert ascii_int("1" + "0" * MAX_DIGITS) is None
    assert is_ascii_digits("9" * 5000) and not is_ascii_digits("\u00b2")


@pytest.mark.parametrize("text,seconds", [
    ("500ms", 0.5), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("1m30s", 90.0),
    ("1.5s", 1.5), ("300", 300.0), (" 10s ", 10.0), ("0", 0.0), (7, 7.0), (0.25, 0.25),
])
def test_parse_duration_accepts(text: object, seconds: float) -> None:
    assert parse_duration(text, "x") == seconds


@pytest.mark.parametrize("value", ["", "5 s", "5x", "s", "1.s", "abc", "1d", None, [], "nan"])
def test_parse_duration_rejects_naming_where(value: object) -> None:
    assert error_of(parse_duration, value, "--timeout") == (
        f"--timeout: invalid duration {value!r}; write e.g. 500ms, 30s, 2m, 1h or plain seconds")


def test_parse_duration_rejects_booleans() -> None:
    assert error_of(parse_duration, True, "f:1").startswith("f:1: invalid duration True")


@pytest.mark.parametrize("value", ["-5s", -1, "-0.5", -0.1])
def test_parse_duration_rejects_negative(value: object) -> None:
    assert error_of(parse_duration, value, "--boot-wait") == (
        f"--boot-wait: negative duration {value!r}; durations must be >= 0")


@pytest.mark.parametrize("text", ["\u0663", "\u0663s", "1\u0660s", "\uff15m"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    # float() reads Arabic and full-width digits; a flag or setting must not.
    assert error_of(parse_duration, text, "--timeout").startswith("--timeout: invalid duration")
