"""IMDSv2 session tokens as the real service issues and checks them.

A token is 56 base64 characters, valid for the TTL the PUT asked for
(1..21600 s, else 400), capped by ``max_ttl`` (the ``token-expiry``
scenario grants short ones).  Expired and unknown tokens are refused alike
(401); revocation forgets every token (what an instance stop/start does).
"""

from __future__ import annotations

import base64
import secrets
import threading
from typing import Callable, Dict, Optional

from ..imds.wire import MAX_TTL
from ..quantities import ascii_int

_PURGE_AT = 10000       # tokens kept before expired ones are swept


def parse_ttl(raw: Optional[str]) -> Optional[int]:
    """A TTL header value the real service accepts (1..21600), else None."""
    if raw is None:
        return None
    ttl = ascii_int(raw)
    return ttl if ttl is not None and 1 <= ttl <= MAX_TTL else None


class TokenStore:
    """Issued tokens and their expiry on *clock*; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._expiry: Dict[str, float] = {}

    def issue(self, ttl: int) -> str:
        """A new token valid for *ttl* seconds."""
        token = base64.b64encode(secrets.token_bytes(42)).decode("ascii")
        now = self._clock()
        with self._lock:
            if len(self._expiry) >= _PURGE_AT:
                self._expiry = {t: e for t, e in self._expiry.items() if e > now}
            self._expiry[token] = now + ttl
        return token

    def remaining(self, token: str) -> Optional[int]:
        """Whole seconds *token* has left; None when unknown or expired."""
        with self._lock:
            expiry = self._expiry.get(token)
        now = self._clock()
        if expiry is None or now >= expiry:
            return None
        return int(expiry - now)

    def revoke(self) -> None:
        with self._lock:
            self._expiry.clear()
