"""imds.diagnosis: observations -> verdict, cause, fix (pure, no sockets)."""

from __future__ import annotations

from imdsrender.imds import diagnosis as dx
from imdsrender.imds.probe import ANSWERED, TIMEOUT, Observation


def answered(status: int, body: bytes = b"") -> Observation:
    return Observation(ANSWERED, 0.001, status=status, body=body)


def test_proxy_variables_warn_and_empty_ones_do_not() -> None:
    checks = dx.environment({"https_proxy": "http://p:3128", "HTTP_PROXY": "", "PATH": "/bin"})
    assert [(c.name, c.level) for c in checks] == [("environment", "ok"), ("proxy", "warn")]
    assert checks[1].summary.startswith("https_proxy set")


def test_put_timeout_is_the_hop_limit_only_when_a_get_answers() -> None:
    timeout = Observation(TIMEOUT, 1.0, detail="connected, sent PUT, no answer within 1 s")
    hop = dx.token(timeout, answered(401), False, "i-1", 21600)[0]
    assert "hop limit" in hop.cause and hop.fix.endswith("--http-put-response-hop-limit 2")
    assert "--instance-id i-1" in hop.fix and hop.exit_code == 3
    slow = dx.token(timeout, Observation(TIMEOUT, 1.0), False, "i-1", 21600)[0]
    assert "hop limit" not in slow.cause


def test_iam_never_shows_more_than_role_names() -> None:
    assert dx.iam(answered(200, b"web-role\n"), "i-1").summary == "role attached: web-role"
    assert "no role attached" in dx.iam(answered(200, b""), "i-1").summary


def test_exit_code_prefers_unusable_imds_over_config_over_missing_keys() -> None:
    missing = dx.Check("keys", dx.FAIL, "", exit_code=1)
    config = dx.Check("confdir", dx.FAIL, "", exit_code=2)
    dead = dx.Check("tcp", dx.FAIL, "", exit_code=3)
    warned = dx.Check("tags", dx.WARN, "", exit_code=3)  # a warning never sets the exit code
    assert dx.exit_code([missing, config, dead]) == 3
    assert dx.exit_code([missing, config]) == 2
    assert dx.exit_code([missing, warned]) == 1
    assert dx.exit_code([warned]) == 0
