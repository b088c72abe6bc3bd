"""errors.py: the one what/hint shape (Problem) and the error kinds it becomes."""

from __future__ import annotations

from imdsrender.errors import ConfigError, Error, Problem, UsageError


def test_problem_becomes_an_error_at_a_place() -> None:
    problem = Problem("key /x is missing", "give getv() a default")
    error = problem.at("templates/a.j2:3")
    assert type(error) is Error
    assert str(error) == "templates/a.j2:3: key /x is missing; give getv() a default"


def test_problem_keeps_its_hint_and_falls_back_to_the_callers() -> None:
    assert str(Problem("bad", "own hint").at("f:1", ConfigError, hint="other")) == \
        "f:1: bad; own hint"
    error = Problem("not a literal").at("f:2", ConfigError, hint="list the keys")
    assert isinstance(error, ConfigError) and error.exit_code == 2
    assert str(error) == "f:2: not a literal; list the keys"
    assert str(Problem("bare").at("f:3")) == "f:3: bare"


def test_config_error_is_a_usage_error() -> None:
    assert issubclass(ConfigError, UsageError) and ConfigError.exit_code == 2
