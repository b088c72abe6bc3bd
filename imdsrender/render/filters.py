"""The filters templates get besides Jinja's own: fromjson, b64decode, b64encode."""

from __future__ import annotations

import base64
import binascii
import json as jsonlib
from typing import Any, Callable, Dict

from ..errors import Problem
from .quoting import FILTERS as QUOTING_FILTERS


def as_text(raw: bytes) -> str:
    """Bytes as templates see them: UTF-8, undecodable bytes kept as surrogates."""
    return raw.decode("utf-8", "surrogateescape")


def fromjson(value: Any) -> Any:
    """Parse a JSON document held in a string (or bytes)."""
    try:
        return jsonlib.loads(value)
    except (TypeError, ValueError) as exc:
        raise Problem(f"fromjson: not valid JSON ({json_reason(exc)})") from None


def b64decode(value: Any) -> str:
    """Base64 to text; whitespace (wrapped lines) is ignored, anything else invalid is not."""
    data = value if isinstance(value, bytes) else str(value).encode("ascii", "replace")
    try:
        return as_text(base64.b64decode(b"".join(data.split()), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise Problem(f"b64decode: not valid base64 ({exc})") from None


def b64encode(value: Any) -> str:
    """Text (or bytes) to base64; surrogate-escaped bytes encode as the original bytes."""
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")
    return base64.b64encode(data).decode("ascii")


def json_reason(exc: Exception) -> str:
    if isinstance(exc, jsonlib.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)


FILTERS: Dict[str, Callable[..., Any]] = {
    "fromjson": fromjson, "b64decode": b64decode, "b64encode": b64encode,
    **QUOTING_FILTERS,
}
