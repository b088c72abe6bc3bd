"""The real IMDS's bad days, selectable by name (``--scenario NAME``).

Each scenario is what a client meets on a real instance, so ``imdsrender
doctor`` and the client's retry and token policies can be tested against it.
A scenario configures the emulator once (``setup``: data, v1, TTLs,
latency) and may hand it a one-off :class:`Fault` for any request
(``fault``).  Random choices come from a seeded generator: the same seed
gives the same bad day.

What the real service does, per scenario:

- ``hop-limit``: the token PUT's answer leaves with an IP TTL of
  ``HttpPutResponseHopLimit`` (default 1, 2 on EKS-optimised AMIs); from a
  container behind one more hop it is dropped on the way, so the client
  connects, sends the PUT and waits until its read timeout.  SDKs treat
  that timeout as "no token" (botocore returns None on ReadTimeoutError and
  falls back to v1, which ``HttpTokens=required`` then refuses with 401).
- ``imds-disabled``: ``HttpEndpoint=disabled``: every request is answered
  403 Forbidden (cloud-init's EC2 datasource reads a 403 as "HTTP endpoint
  is disabled" and stops).
- ``imdsv1-only``: a metadata server that predates IMDSv2 (EC2-compatible
  clouds, or a proxy that blocks PUT) answers the token PUT 404; GETs
  without a token work.  botocore and the Go SDK fall back to v1 on a
  403/404/405 token answer.
- ``tags-disabled``: ``InstanceMetadataTags=disabled`` (the default):
  ``tags/`` is absent from ``meta-data/`` and ``tags/instance/`` is 404.
- ``no-role``: no instance profile attached: ``iam/`` is absent and
  ``iam/security-credentials/`` is 404.
- ``throttled``: IMDS limits queries per instance; beyond the limit
  requests fail until the rate drops.  The emulator answers 429 with
  ``Retry-After`` beyond ``limit`` requests in a one-second window.
- ``slow``: a loaded host: answers arrive after a latency with jitter.
- ``flaky``: brief 500/503 answers and connection resets (host
  maintenance, an overloaded proxy).
- ``token-expiry``: tokens granted far shorter than asked and revoked from
  time to time (the real service forgets tokens on stop/start and
  hibernation); the client must take a new token on 401.
"""

from __future__ import annotations

import random
import threading
from typing import TYPE_CHECKING, Callable, Dict, Optional, TypeVar

from ..errors import UsageError
from ..imds.wire import TOKEN_PATH
from .faults import Fault

if TYPE_CHECKING:  # pragma: no cover
    from .core import Emulator

T = TypeVar("T")


class Scenario:
    """A named bad day: set the emulator up once, then maybe fault each request."""

    name = ""
    description = ""

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def setup(self, emulator: Emulator) -> None:
        """Configure the emulator (data, v1, TTLs, latency) before it serves."""

    def _draw(self, pick: Callable[[random.Random], T]) -> T:
        """One draw from the seeded generator (handler threads share it)."""
        with self._lock:
            return pick(self._random)

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        """A fault for this request, or None to answer normally."""
        return None


def _drop_subtree(emulator: Emulator, prefix: str) -> None:
    for key in [k for k in emulator.values if k.startswith(prefix)]:
        emulator.set_value(key, None)


class HopLimit(Scenario):
    name = "hop-limit"
    description = "token PUT accepted but its answer never arrives (client read timeout)"

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        return Fault(hold=True) if method == "PUT" and path == TOKEN_PATH else None


class ImdsDisabled(Scenario):
    name = "imds-disabled"
    description = "HttpEndpoint=disabled: every request answers 403 Forbidden"

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        return Fault(status=403)


class Imdsv1Only(Scenario):
    name = "imdsv1-only"
    description = "no IMDSv2: token PUT answers 404, GETs without a token work"

    def setup(self, emulator: Emulator) -> None:
        emulator.allow_v1 = True

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        return Fault(status=404) if path == TOKEN_PATH else None


class TagsDisabled(Scenario):
    name = "tags-disabled"
    description = "InstanceMetadataTags=disabled: no tags/, tags/instance/ is 404"

    def setup(self, emulator: Emulator) -> None:
        _drop_subtree(emulator, "/meta-data/tags/")


class NoRole(Scenario):
    name = "no-role"
    description = "no instance profile: no iam/, iam/security-credentials/ is 404"

    def setup(self, emulator: Emulator) -> None:
        _drop_subtree(emulator, "/meta-data/iam/")


class Throttled(Scenario):
    name = "throttled"
    description = "429 with Retry-After: 1 beyond 10 requests a second"

    def __init__(self, limit: int = 10, retry_after: int = 1, seed: int = 0) -> None:
        super().__init__(seed)
        self.limit = limit
        self.retry_after = retry_after
        self._window = 0.0
        self._count = 0

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        with self._lock:
            if now - self._window >= 1.0:
                self._window, self._count = now, 0
            self._count += 1
            over = self._count > self.limit
        if not over:
            return None
        return Fault(status=429, headers=(("Retry-After", str(self.retry_after)),))


class Slow(Scenario):
    name = "slow"
    description = "every answer 200 ms late plus up to 300 ms of seeded jitter"

    def __init__(self, latency: float = 0.2, jitter: float = 0.3, seed: int = 0) -> None:
        super().__init__(seed)
        self.latency = latency
        self.jitter = jitter

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        return Fault(delay=self.latency + self._draw(lambda r: r.uniform(0.0, self.jitter)))


class Flaky(Scenario):
    name = "flaky"
    description = "random 500/503 answers and connection resets (seeded)"

    def __init__(self, error_rate: float = 0.2, reset_rate: float = 0.1, seed: int = 0) -> None:
        super().__init__(seed)
        self.error_rate = error_rate
        self.reset_rate = reset_rate

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        roll, status = self._draw(lambda r: (r.random(), r.choice((500, 503))))
        if roll < self.error_rate:
            return Fault(status=status)
        if roll < self.error_rate + self.reset_rate:
            return Fault(reset=True)
        return None


class TokenExpiry(Scenario):
    name = "token-expiry"
    description = "tokens granted for 2 s whatever was asked, all revoked every 10 requests"

    def __init__(self, ttl: int = 2, revoke_every: int = 10, seed: int = 0) -> None:
        super().__init__(seed)
        self.ttl = ttl
        self.revoke_every = revoke_every
        self._count = 0
        self._revoke: Callable[[], None] = lambda: None

    def setup(self, emulator: Emulator) -> None:
        emulator.max_ttl = self.ttl
        self._revoke = emulator.revoke_tokens

    def fault(self, method: str, path: str, now: float) -> Optional[Fault]:
        with self._lock:
            self._count += 1
            due = self._count % self.revoke_every == 0
        if due:
            self._revoke()
        return None


_CLASSES = (HopLimit, ImdsDisabled, Imdsv1Only, TagsDisabled, NoRole, Throttled, Slow, Flaky,
            TokenExpiry)

SCENARIOS: Dict[str, str] = {cls.name: cls.description for cls in _CLASSES}
"""Every scenario name -> a one-line description (``imdsrender emulator --help``)."""


def make_scenario(name: str, seed: int = 0) -> Scenario:
    """The scenario called *name* with its default settings; UsageError if unknown."""
    for cls in _CLASSES:
        if cls.name == name:
            return cls(seed=seed)
    raise UsageError(f"--scenario {name}", "unknown scenario",
                     "choose one of " + ", ".join(SCENARIOS))
