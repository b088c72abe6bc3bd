"""Runs every row of the fault matrix (scenarios.py) through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import assert_scenario, run_scenario
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


def test_matrix_has_at_least_30_scenarios() -> None:
    assert len(S) >= 30
