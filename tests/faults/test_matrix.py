"""Runs every row of the fault matrix (scenarios.py) through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import assert_scenario, keepalive_duplicates, run_scenario
from .scenarios import S, Scenario


def _param(scenario: Scenario) -> object:
    marks = [pytest.mark.slow] if scenario.slow else []
    if scenario.bug:
        marks.append(pytest.mark.xfail(strict=True, reason=f"bug: {scenario.bug}"))
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.parametrize("scenario", [_param(s) for s in S])
def test_fault_scenario(scenario: Scenario, tmp_path: Path) -> None:
    ctx, result, confdir = run_scenario(scenario, tmp_path)
    assert_scenario(scenario, ctx, result, confdir)


def test_keepalive_sends_each_request_once() -> None:
    """After an error answer, a kept-alive connection still carries each request once.

    With urllib3 1.26, http.client's read1() never closed a fully read
    response, so every later request on the connection failed and was sent
    again (fixed in imds/client.py; this guards it, and the floors run uses 1.26).
    """
    assert keepalive_duplicates() == 0


def test_matrix_has_at_least_30_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nfault matrix: {len(S)} scenarios (plus the interval-mode and keep-alive tests)")
    assert len(S) >= 30
