"""The IMDSv2 session token: what a PUT answer means, and when to renew it.

:class:`TokenManager` holds the token and renews it before it runs out;
:func:`read_token_answer` turns the PUT's answer into a token and its
granted lifetime, or into the error DESIGN.md names for that status.
Sending the PUT is the client's job (the one network choke point); this
module never touches the network.  Standard library only.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Mapping, Optional, Tuple

from ..quantities import ascii_int
from ..source import SourceUnavailable
from .endpoint import ImdsConfigError
from .wire import MAX_TTL, MIN_TTL, TTL_HEADER

log = logging.getLogger(__name__)

# The hint of every refusal that is IMDS (or something in front of it)
# misbehaving: a redirect, an unexpected status, an unusable token.
TOKEN_REFUSED_HINT = ("IMDS or something in front of it is misbehaving; check --endpoint "
                      "and any proxy in the way, then try again later")

# A token and the seconds it may be used for (None: IMDSv1 fallback).
Grant = Tuple[Optional[str], float]


class TokenManager:
    """Holds the IMDSv2 token and renews it before it runs out.

    The lifetime counted is the one IMDS granted, from when the PUT was
    sent, on a monotonic clock.  A token is not used once less than
    min(60 s, TTL/2) remains: a request must not arrive with a token that
    expires in flight.  The lock makes renewal single-flight: threads that
    find the token stale wait for the one renewal instead of each sending a
    PUT.  A fresh token is read without the lock (one tuple, replaced whole),
    so the per-request path takes no lock.
    """

    def __init__(self, fetch: Callable[[], Grant], clock: Callable[[], float]) -> None:
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        # (token, usable until, fetched at all): swapped as one object, never edited.
        self._state: Tuple[Optional[str], float, bool] = (None, float("-inf"), False)

    def get(self) -> Optional[str]:
        """The current token (None in IMDSv1 fallback mode), renewed if stale."""
        token, usable_until, fetched = self._state
        if fetched and self._clock() < usable_until:
            return token
        with self._lock:
            token, usable_until, fetched = self._state
            if not fetched or self._clock() >= usable_until:
                sent = self._clock()
                token, ttl = self._fetch()
                self._state = (token, sent + ttl - min(60.0, ttl / 2), True)
            return token

    def invalidate(self, token: Optional[str]) -> None:
        """Forget *token* after a 401, unless another thread already renewed it."""
        with self._lock:
            if self._state[0] == token:
                self._state = (token, float("-inf"), False)


def read_token_answer(status: int, body: bytes, headers: Mapping[str, str], *,
                      requested_ttl: int, allow_imdsv1: bool, endpoint: str) -> Grant:
    """The token and lifetime from the PUT's answer, or the error for *status*.

    400 is our own mistake (exit 2); 403/404/405 mean IMDSv2 is off (exit 3
    unless IMDSv1 is allowed); anything else, a redirect included, is IMDS
    misbehaving (exit 3, one hint).
    """
    if status == 200:
        return usable_token(body, endpoint), granted_ttl(headers, requested_ttl)
    if status == 400:
        raise ImdsConfigError("imds.token_ttl",
                              f"IMDS rejected the token request (400) for a TTL of {requested_ttl}",
                              f"use a TTL from {MIN_TTL} to {MAX_TTL}")
    if status in (403, 404, 405) and allow_imdsv1:
        log.warning("IMDSv2 unavailable (HTTP %s); falling back to IMDSv1 "
                    "because allow_imdsv1 is set", status)
        return None, float("inf")
    if status in (403, 404, 405):
        raise SourceUnavailable(endpoint, f"IMDSv2 token request refused (HTTP {status})",
                                "enable IMDSv2 on the instance, or set imds.allow_imdsv1: true")
    if 300 <= status < 400:
        raise SourceUnavailable(endpoint, f"token request redirected (HTTP {status}); "
                                "redirect refused", TOKEN_REFUSED_HINT)
    raise SourceUnavailable(endpoint, f"token request answered HTTP {status}",
                            TOKEN_REFUSED_HINT)


def usable_token(body: bytes, endpoint: str) -> str:
    """The token, if it can safely travel in a header.

    Empty, non-ASCII or whitespace-holding answers are refused: sent on,
    they would be a 401 per key at best and a header injection at worst.
    """
    token = body.strip()
    if not token or not token.isascii() or any(c <= 32 or c == 127 for c in token):
        raise SourceUnavailable(endpoint, "the token request answered 200 with an unusable token",
                                TOKEN_REFUSED_HINT)
    return token.decode("ascii")


def granted_ttl(headers: Mapping[str, str], requested: int) -> float:
    """The TTL IMDS granted (header), else the one asked for."""
    granted = ascii_int(headers.get(TTL_HEADER))
    return float(granted) if granted else float(requested)
