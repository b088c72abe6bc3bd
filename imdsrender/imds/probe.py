"""Step-by-step probes of an IMDS endpoint, for ``imdsrender doctor``.

The client (:mod:`.client`) hides how a request failed behind retries and
one error; a diagnosis needs the opposite: *where* it stopped.  A probe
connects first (refused? dropped?), then sends one request on that
connection, so "connected, sent the PUT, never answered" - the hop-limit
signature - is told apart from "nothing listens there".  Standard library
only (http.client over a socket we connect ourselves); no retries beyond
the few :meth:`Prober.steady` makes for transient answers, no proxies.
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from .wire import TOKEN_HEADER, TOKEN_PATH, TTL_HEADER

# How far a request got (Observation.outcome).
ANSWERED = "answered"  # an HTTP status came back
REFUSED = "refused"  # connect: nothing listens (RST)
CONNECT_TIMEOUT = "connect-timeout"  # connect: no answer at all (dropped)
UNREACHABLE = "unreachable"  # connect: no route, bad address
TIMEOUT = "timeout"  # connected and sent, no answer within the timeout
RESET = "reset"  # connected, then the peer closed or reset
BAD_ANSWER = "bad-answer"  # something that is not HTTP came back

_TRANSIENT_STATUSES = (500, 502, 503, 504)


@dataclass(frozen=True)
class Observation:
    """What one probe met: how far it got, the HTTP status, how long it took."""

    outcome: str
    seconds: float
    status: int = 0
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.outcome == ANSWERED and self.status == 200

    @property
    def label(self) -> str:
        """The status for an answer, else how it failed: what bursts count."""
        return str(self.status) if self.outcome == ANSWERED else self.outcome

    @property
    def transient(self) -> bool:
        return self.outcome == RESET or (self.outcome == ANSWERED
                                         and self.status in _TRANSIENT_STATUSES)


class Prober:
    """Probes one endpoint (``http://host[:port]``), every step bounded by *timeout*."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self.host = parts.hostname or ""
        self.port = parts.port or 80
        self.timeout = timeout

    def connect(self) -> Observation:
        """A TCP connect and nothing else."""
        started = time.monotonic()
        sock, failed = self._connect(started)
        if sock is not None:
            sock.close()
            return Observation(ANSWERED, time.monotonic() - started, status=200,
                               detail="connected")
        assert failed is not None
        return failed

    def request(self, method: str, path: str,
                headers: Optional[Dict[str, str]] = None) -> Observation:
        """One request on a fresh connection; how far it got, never an exception."""
        started = time.monotonic()
        sock, failed = self._connect(started)
        if sock is None:
            assert failed is not None
            return failed
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.sock = sock
        try:
            conn.request(method, path, headers=headers or {})
            resp = conn.getresponse()
            body = resp.read()
        except socket.timeout:
            return Observation(TIMEOUT, time.monotonic() - started,
                               detail=f"connected, sent {method}, no answer within "
                                      f"{self.timeout:g} s")
        except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead) \
                as exc:
            return Observation(RESET, time.monotonic() - started,
                               detail=f"connection closed mid-request: {exc.__class__.__name__}")
        except (http.client.HTTPException, OSError) as exc:
            return Observation(BAD_ANSWER, time.monotonic() - started, detail=str(exc))
        finally:
            conn.close()
        return Observation(ANSWERED, time.monotonic() - started, status=resp.status, body=body,
                           headers={k.lower(): v for k, v in resp.getheaders()})

    def steady(self, method: str, path: str, headers: Optional[Dict[str, str]] = None,
               attempts: int = 3) -> Observation:
        """:meth:`request`, again on a 5xx or a reset (up to *attempts* in all)."""
        made = 0
        while True:
            seen, made = self.request(method, path, headers), made + 1
            if not seen.transient or made >= attempts:
                return dataclasses.replace(seen, attempts=made)

    def token(self, ttl: int) -> Observation:
        """The IMDSv2 token PUT asking for *ttl* seconds."""
        return self.steady("PUT", TOKEN_PATH, {TTL_HEADER: str(ttl)})

    def get(self, key: str, token: Optional[str]) -> Observation:
        """GET ``/latest`` + *key*, with the token when there is one (else IMDSv1)."""
        return self.steady("GET", "/latest" + key, _token_headers(token))

    def burst(self, key: str, token: Optional[str],
              count: int) -> Tuple[Dict[str, int], List[float]]:
        """*count* GETs back to back (no retries): answers by label, and their seconds."""
        labels: Dict[str, int] = {}
        seconds: List[float] = []
        for _ in range(count):
            seen = self.request("GET", "/latest" + key, _token_headers(token))
            labels[seen.label] = labels.get(seen.label, 0) + 1
            seconds.append(seen.seconds)
        return labels, seconds

    def _connect(self, started: float) -> Tuple[Optional[socket.socket], Optional[Observation]]:
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout), None
        except ConnectionRefusedError:
            outcome, detail = REFUSED, "connection refused"
        except socket.timeout:
            outcome, detail = CONNECT_TIMEOUT, f"no answer to connect within {self.timeout:g} s"
        except OSError as exc:
            outcome, detail = UNREACHABLE, exc.strerror or str(exc)
        return None, Observation(outcome, time.monotonic() - started, detail=detail)


def _token_headers(token: Optional[str]) -> Dict[str, str]:
    return {TOKEN_HEADER: token} if token else {}
