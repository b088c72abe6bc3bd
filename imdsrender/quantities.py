"""Numbers and durations as users write them in flags, settings and headers.

The ground floor: standard library only, so the CLI's flag parsing, the
settings loader, the IMDS transport and the confd migrator all accept and
refuse the same spellings without importing one another.
"""

from __future__ import annotations

import math
import re

from .errors import UsageError

# ASCII digits only: \d alone takes "٣" (Arabic three) and float() reads it as 3.
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)", re.ASCII)
_PLAIN_SECONDS = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_HINT = "write e.g. 500ms, 30s, 2m, 1h or plain seconds"
MAX_DIGITS = 18  # below int()'s 4300-digit limit, above any length, TTL or count we read


def ascii_int(text: str | None) -> int | None:
    """A non-negative integer written in ASCII digits, else None.

    Every number read from a header, a flag or a config string goes through
    here: str.isdigit() alone accepts '\u00b2' and other digits that int()
    then refuses with a ValueError.  More than :data:`MAX_DIGITS` digits
    is None too: int() refuses 4,300 digits with a ValueError, and no
    header we read means anything that large.
    """
    text = (text or "").strip()
    if len(text) > MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def is_ascii_digits(text: str | None) -> bool:
    """Whether *text* is ASCII digits (of any length): a number, maybe too large to read."""
    text = (text or "").strip()
    return text.isascii() and text.isdigit()


def parse_duration(value: object, where: str) -> float:
    """Seconds from ``500ms``, ``30s``, ``2m``, ``1h`` (or ``1m30s``), a number or ``"300"``.

    Shared by the config files and the CLI flags, so both accept and refuse
    the same spellings; *where* is the file:line or the flag to blame.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(where, f"invalid duration {value!r}", _DURATION_HINT)
    try:
        seconds = _duration_text(value.strip(), where) if isinstance(value, str) else float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if math.isnan(seconds) or math.isinf(seconds):
        raise UsageError(where, f"invalid duration {value!r}", _DURATION_HINT)
    if seconds < 0:
        raise UsageError(where, f"negative duration {value!r}", "durations must be >= 0")
    return seconds


def _duration_text(text: str, where: str) -> float:
    sign = -1.0 if text.startswith("-") else 1.0  # so "-5s" says "negative", not "invalid"
    body = text[1:] if sign < 0 else text
    try:
        seconds = float(body) if _PLAIN_SECONDS.fullmatch(body) else _units(body)
    except ValueError:
        raise UsageError(where, f"invalid duration {text!r}", _DURATION_HINT) from None
    return sign * seconds


def _units(text: str) -> float:
    """Go-style sums of number+unit parts; ValueError when anything else is left."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
