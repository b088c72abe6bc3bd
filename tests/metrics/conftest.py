"""Fixtures of the metrics tests: a status server with a switchable health check."""

from __future__ import annotations

import pytest

from imdsrender.metrics import Metrics, StatusServer
from tests.metrics.helpers import Switch


@pytest.fixture
def served():
    metrics = Metrics()
    switch = Switch()
    server = StatusServer("127.0.0.1:0", metrics, switch, min_interval=0.0,
                          wall=lambda: 1714552262.25).start()
    yield server, metrics, switch
    server.stop()
