"""HTTP on the wire for the emulator: parse a request head, format an answer.

A small parser of our own: http.server's goes through the email package and
costs more than the rest of an answer.  Answers look like the real service's:
``Server: EC2ws``, ``Accept-Ranges: none`` and its XHTML error pages.
"""

from __future__ import annotations

import email.utils
import http
import io
from dataclasses import dataclass, replace
from typing import Dict, Mapping, Optional, Tuple

from ..quantities import ascii_int

_MAX_LINE = 65536
_MAX_HEADERS = 100
_MAX_REQUEST_BODY = 1 << 20
_ERROR_PAGE = """<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{code} - {phrase}</title>
 </head>
 <body>
  <h1>{code} - {phrase}</h1>
 </body>
</html>
"""


@dataclass(frozen=True)
class Request:
    """One parsed request head."""

    method: str
    target: str
    version: str
    headers: Dict[str, str]     # as sent
    lower: Dict[str, str]       # lower-cased names

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def wants_close(self) -> bool:
        connection = self.lower.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection != "keep-alive"
        return connection == "close"


@dataclass(frozen=True)
class Answer:
    """Status, body and headers of one response, before framing."""

    status: int
    body: bytes = b""
    headers: Tuple[Tuple[str, str], ...] = ()
    content_type: str = "text/plain"

    def with_headers(self, extra: Mapping[str, str]) -> Answer:
        """Extra headers replace same-named ones (case-insensitively)."""
        names = {k.lower() for k in extra}
        kept = tuple((k, v) for k, v in self.headers if k.lower() not in names)
        return replace(self, headers=kept + tuple(extra.items()))


class BadRequest(Exception):
    """A request head we refuse to parse; ``status`` is the answer to send."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def error(status: int, headers: Tuple[Tuple[str, str], ...] = ()) -> Answer:
    """The real service's XHTML error page for *status*."""
    return Answer(status, error_page(status), headers, "text/html")


def error_page(status: int) -> bytes:
    return _ERROR_PAGE.format(code=status, phrase=phrase(status)).encode("ascii")


def phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def read_request(rfile: io.BufferedIOBase) -> Optional[Request]:
    """Parse one request head (and drain its body); None at end of stream.

    A head cut off by end of stream (a client that gave up, or the server's
    deadline closing a half-sent request) is no request: not answered, not
    counted.
    """
    line = rfile.readline(_MAX_LINE + 1)
    if line in (b"\r\n", b"\n"):        # tolerate one stray CRLF between requests
        line = rfile.readline(_MAX_LINE + 1)
    if not line:
        return None
    if len(line) > _MAX_LINE:
        raise BadRequest(414)
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400)
    headers: Dict[str, str] = {}
    lower: Dict[str, str] = {}
    for _ in range(_MAX_HEADERS + 1):
        raw = rfile.readline(_MAX_LINE + 1)
        if not raw:                     # cut off before the blank line: never complete
            return None
        if raw in (b"\r\n", b"\n"):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name.strip():
            raise BadRequest(400)
        headers[name.strip()] = value.strip()
        lower[name.strip().lower()] = value.strip()
    else:
        raise BadRequest(431)
    _drain_body(rfile, lower)
    return Request(parts[0].upper(), parts[1], parts[2], headers, lower)


def _drain_body(rfile: io.BufferedIOBase, lower: Mapping[str, str]) -> None:
    """Read a request body we ignore so the next request on the connection parses."""
    if "transfer-encoding" in lower:
        raise BadRequest(411)
    length = ascii_int(lower.get("content-length", "0") or "0")
    if length is None:
        raise BadRequest(400)
    if length > _MAX_REQUEST_BODY:
        raise BadRequest(413)
    if length:
        rfile.read(length)


def head(answer: Answer, *, length: int, close: bool, http10: bool) -> bytes:
    """Status line and headers, ending with the blank line."""
    version = "HTTP/1.0" if http10 else "HTTP/1.1"
    lines = [f"{version} {answer.status} {phrase(answer.status)}"]
    names = {k.lower() for k, _ in answer.headers}
    defaults = (
        ("Content-Type", answer.content_type),
        ("Accept-Ranges", "none"),
        ("Content-Length", str(length)),
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Server", "EC2ws"),
        ("Connection", "close" if close else "keep-alive"),
    )
    lines.extend(f"{name}: {value}" for name, value in defaults if name.lower() not in names)
    lines.extend(f"{name}: {value}" for name, value in answer.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
