"""The IMDS health probe behind ``/ready``: can we get a fresh token right now?

Lives with the transport, not with metrics: it is an IMDS question.  The
status server calls it; nothing here knows about HTTP serving.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, List, Optional, Tuple

from ..errors import Error
from ..model import ImdsSettings

HealthCheck = Callable[[], Tuple[bool, str]]  # () -> (healthy, message)


def make_health_check(settings: ImdsSettings, endpoint: Optional[str] = None,
                      data: Optional[str] = None, timeout: float = 1.0) -> HealthCheck:
    """A check that asks IMDS for a fresh token: one PUT, no retries, *timeout* bounded.

    A fresh client per check (over one shared connection pool) so the
    client's cached token cannot hide an IMDS that stopped answering.
    With ``--data`` there is no IMDS to check: always healthy.
    """
    if data:
        return lambda: (True, f"rendering from {data} (--data): no IMDS to check")
    # boot_wait is the token request's overall deadline, so it cannot be 0.
    bound = min(settings.timeout, timeout)
    quick = dataclasses.replace(settings, timeout=bound, retries=0, boot_wait=bound)
    pools: List[Any] = []

    def check() -> Tuple[bool, str]:
        from .client import ImdsClient

        if not pools:
            import urllib3

            from .deadline import deadline_pool_manager

            pools.append(deadline_pool_manager(  # a dripped answer cannot hang /health
                maxsize=1, block=False, retries=False,
                timeout=urllib3.Timeout(connect=quick.timeout, read=quick.timeout)))
        try:
            client = ImdsClient(quick, endpoint=endpoint, pool=pools[0], concurrency=1)
            token = client.current_token()
        except Error as exc:
            return False, str(exc)
        return True, ("IMDS answered (IMDSv1 fallback)" if token is None
                      else "IMDS issued a token")

    return check
