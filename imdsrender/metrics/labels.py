"""Bounded Prometheus labels: a path category, an error reason, a retry reason.

IMDS requests are labelled with the operation (token/get/list) and a path
*category* (meta-data, dynamic, user-data, token, other), never the path
itself: paths carry role names and would make cardinality unbounded.
Resources are labelled by ``dest``, which the configuration bounds.  Retry
reasons and error reasons are mapped to a small fixed set.
"""

from __future__ import annotations

from typing import Optional

from ..quantities import ascii_int


def path_category(path: str) -> str:
    """meta-data / dynamic / user-data / token / other: a bounded label for a URL path."""
    parts = path.lstrip("/").split("/")
    if parts and parts[0] == "latest":
        parts = parts[1:]
    head = parts[0] if parts else ""
    if head == "api" and len(parts) > 1 and parts[1] == "token":
        return "token"
    return head if head in ("meta-data", "dynamic", "user-data") else "other"


def error_reason(operation: str, status: Optional[int]) -> Optional[str]:
    """Why an attempt counts as an IMDS error, or None when it does not.

    A 404 on get/list is a key this instance does not have (an optional tag,
    no public IP): normal, so not an error.  On the token PUT it means
    IMDSv2 is off, which is.
    """
    if status is None:
        return "no_answer"
    if 200 <= status < 300:
        return None
    if status == 404:
        return "not_found" if operation == "token" else None
    named = {401: "unauthorized", 403: "forbidden", 429: "throttled"}
    if status in named:
        return named[status]
    if 300 <= status < 400:
        return "redirect"
    return "server_error" if status >= 500 else "client_error"


_RETRY_PREFIXES = (
    ("connect timed out", "connect_timeout"),
    ("read timed out", "read_timeout"),
    ("connection failed", "connection_failed"),
    ("connection error", "connection_error"),
    ("short body", "short_body"),
    ("body not complete", "deadline"),
)


def retry_reason(reason: str) -> str:
    """Map the client's free-text retry reason to a bounded label.

    "HTTP 503" -> "http_503" (only 429 and 5xx are retried, so this is
    bounded), "connection failed: [Errno 111] ..." -> "connection_failed".
    """
    if reason.startswith("HTTP ") and ascii_int(reason[5:]) is not None:
        return "http_" + reason[5:].strip()
    for prefix, label in _RETRY_PREFIXES:
        if reason.startswith(prefix):
            return label
    return "other"
