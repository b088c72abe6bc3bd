"""Helpers shared by the metrics tests."""

from __future__ import annotations

import http.client
from typing import Dict, Optional, Tuple

from imdsrender.metrics import (
    Metrics,
    StatusServer,
)
from imdsrender.model import Resource
from tests.helpers import MetricKey, parse_metrics

SECRET_PATH = "/latest/meta-data/iam/security-credentials/web-role"


def scrape(metrics: Metrics) -> Dict[MetricKey, float]:
    return parse_metrics(metrics.exposition().decode())


class FakeSource:
    """A Source answering from a dict (missing keys: NotFound)."""

    def __init__(self, values: Dict[str, bytes]) -> None:
        self.values = values

    def get(self, path: str) -> bytes:
        from imdsrender.source import NotFound

        if path not in self.values:
            raise NotFound(path, "not found (404)")
        return self.values[path]


def resource(dest: str, check: Optional[str] = None, reload: Optional[str] = None) -> Resource:
    return Resource(origin="conf.d/t.yaml:1", src="/t/t.j2", template="t.j2", dest=dest,
                    keys=(), check_cmd=check, reload_cmd=reload)


class Switch:
    """A health check whose answer the test flips."""

    def __init__(self) -> None:
        self.up = True
        self.calls = 0

    def __call__(self) -> Tuple[bool, str]:
        self.calls += 1
        return (True, "IMDS issued a token") if self.up else (False, "IMDS down")


def get(server: StatusServer, path: str, host: str = "127.0.0.1") -> Tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(host, server.port, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read()
    finally:
        conn.close()
