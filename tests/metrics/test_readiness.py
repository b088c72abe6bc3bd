"""/ready follows the polls too: a poll stuck past its deadline, or a failed last poll, is 503."""

from __future__ import annotations

import json
from typing import List

from imdsrender.errors import Error
from imdsrender.metrics import Metrics, StatusServer
from imdsrender.model import Outcome
from tests.metrics.helpers import Switch, get


def test_ready_turns_503_while_a_poll_is_stuck_and_after_a_failed_poll() -> None:
    now: List[float] = [100.0]
    metrics = Metrics(clock=lambda: now[0])
    server = StatusServer("127.0.0.1:0", metrics, Switch(), min_interval=0.0).start()
    try:
        assert get(server, "/ready")[0] == 200  # IMDS up, no poll yet
        metrics.run_started(5.0)
        now[0] += 4.0
        assert get(server, "/ready")[0] == 200  # running, within its deadline
        now[0] += 2.5
        assert get(server, "/ready")[:3:2] == (503, b"not ready: poll running for 6s, "
                                                    b"past its 5s deadline\n")
        status, _, body = get(server, "/ready/detailed")
        report = json.loads(body)
        assert status == 503 and report["healthy"] is False
        assert report["message"] == "poll running for 6s, past its 5s deadline"
        assert get(server, "/health")[0] == 200  # liveness: the process answers

        metrics.run_finished([], 6.5, error=Error("/meta-data/x", "no answer"))
        assert get(server, "/ready")[:3:2] == (503, b"not ready: last poll error: "
                                                    b"/meta-data/x: no answer\n")
        metrics.run_started(5.0)
        metrics.run_finished([Outcome("/etc/a", "failed")], 0.1)
        assert get(server, "/ready")[0] == 200  # one failed resource is not a failed poll
        metrics.run_started(5.0)
        metrics.run_finished([Outcome("/etc/a", "written")], 0.1)
        assert get(server, "/ready")[0] == 200
    finally:
        server.stop()


def test_the_cli_gives_each_poll_a_deadline() -> None:
    """Interval mode passes a deadline derived from its settings to the recorder."""
    from imdsrender.cli.interval import poll_deadline
    from imdsrender.cli.pipeline import Job
    from imdsrender.model import ImdsSettings, Resource, Settings

    settings = Settings(imds=ImdsSettings(boot_wait=10.0, retries=2, timeout=1.0))
    resource = Resource(origin="r", src="s", template="t", dest="/d", keys=(), closure=(),
                        mode=0o644, check_cmd="true", check_timeout=30.0)
    assert poll_deadline(Job(settings, (resource,), ""), 60.0) == 60 + 10 + 3 * 1 + 30
