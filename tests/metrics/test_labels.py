"""metrics.labels: every label is bounded; paths never become labels."""

from __future__ import annotations

from typing import Optional

import pytest

from imdsrender.metrics import (
    error_reason,
    path_category,
    retry_reason,
)
from tests.metrics.helpers import SECRET_PATH

# --- labels -------------------------------------------------------------------

@pytest.mark.parametrize("path, category", [
    ("/latest/api/token", "token"),
    (SECRET_PATH, "meta-data"),
    ("/latest/meta-data/", "meta-data"),
    ("/latest/dynamic/instance-identity/document", "dynamic"),
    ("/latest/user-data", "user-data"),
    ("/meta-data/instance-id", "meta-data"),
    ("/latest/", "other"),
    ("/latest/api/other", "other"),
    ("/something/else", "other"),
    ("", "other"),
])
def test_path_category_is_bounded(path: str, category: str) -> None:
    assert path_category(path) == category


@pytest.mark.parametrize("operation, status, reason", [
    ("get", 200, None), ("get", 404, None), ("list", 404, None), ("token", 404, "not_found"),
    ("get", None, "no_answer"), ("get", 401, "unauthorized"), ("token", 403, "forbidden"),
    ("get", 429, "throttled"), ("get", 500, "server_error"), ("get", 503, "server_error"),
    ("get", 301, "redirect"), ("token", 400, "client_error"), ("token", 405, "client_error"),
])
def test_error_reason(operation: str, status: Optional[int], reason: Optional[str]) -> None:
    assert error_reason(operation, status) == reason


@pytest.mark.parametrize("text, label", [
    ("HTTP 503", "http_503"), ("HTTP 429", "http_429"),
    ("connect timed out", "connect_timeout"), ("read timed out", "read_timeout"),
    ("connection failed: [Errno 111] Connection refused", "connection_failed"),
    ("connection error: ('Connection aborted.', RemoteDisconnected())", "connection_error"),
    ("short body (3 of 19 bytes)", "short_body"),
    ("body not complete before the request deadline", "deadline"),
    ("HTTP banana", "other"), ("something new", "other"),
])
def test_retry_reason_is_bounded(text: str, label: str) -> None:
    assert retry_reason(text) == label
