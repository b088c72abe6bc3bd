"""What the real IMDS answers a well-behaved request: the emulator without faults.

Token PUT (TTL 1..21600, else 400; 403 when forwarded through a proxy),
401 without a valid token unless IMDSv1 is allowed, 405 for other methods,
404 for paths it does not have, ``GET /`` answering ``latest``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from ..fixture import Tree
from ..imds.wire import TOKEN_HEADER, TOKEN_PATH, TTL_HEADER
from .protocol import Answer, Request, error
from .tokens import TokenStore, parse_ttl


@dataclass(frozen=True)
class Policy:
    """The instance's metadata options as the emulator plays them."""

    allow_v1: bool
    max_ttl: int
    omit_ttl_header: bool


def answer(request: Request, tree: Tree, tokens: TokenStore, policy: Policy) -> Answer:
    """The real service's answer to *request*."""
    path = unquote(request.path)
    if path == TOKEN_PATH:
        if request.method != "PUT":
            return error(405, (("Allow", "PUT"),))
        return _issue_token(request, tokens, policy)
    if request.method not in ("GET", "HEAD"):
        return error(405, (("Allow", "GET, HEAD"),))
    remaining = _check_token(request, tokens, policy)
    if remaining is not None and remaining < 0:
        return error(401)
    body = _lookup(tree, path)
    if body is None:
        return error(404)
    headers = () if remaining is None else ((TTL_HEADER, str(remaining)),)
    return Answer(200, body, headers)


def _lookup(tree: Tree, path: str) -> Optional[bytes]:
    if path == "/":
        return b"latest"
    if path == "/latest" or path.startswith("/latest/"):
        return tree.lookup(path[len("/latest"):] or "/")
    return None


def _issue_token(request: Request, tokens: TokenStore, policy: Policy) -> Answer:
    if "x-forwarded-for" in request.lower:
        return error(403)
    ttl = parse_ttl(request.lower.get(TTL_HEADER.lower()))
    if ttl is None:
        return error(400)
    granted = min(ttl, policy.max_ttl)
    token = tokens.issue(granted)
    headers = () if policy.omit_ttl_header else ((TTL_HEADER, str(granted)),)
    return Answer(200, token.encode("ascii"), headers)


def _check_token(request: Request, tokens: TokenStore, policy: Policy) -> Optional[int]:
    """Remaining whole seconds of the request's token; None: no token; -1: refuse.

    No token is refused unless v1 is allowed; a bad token always is.
    """
    token = request.lower.get(TOKEN_HEADER.lower())
    if token is None:
        return None if policy.allow_v1 else -1
    remaining = tokens.remaining(token)
    return -1 if remaining is None else remaining
