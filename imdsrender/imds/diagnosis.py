"""What probe observations mean: each check's verdict, likely cause and fix.

Pure functions from :class:`~.probe.Observation` (and the environment) to
:class:`Check` values; no sockets, so every bad day of IMDS maps to its
advice in one readable place and is unit-testable without a server.  The
causes are the ones SDK users meet most (hop limit, HttpEndpoint disabled,
IMDSv1 only, tags not enabled, no role, throttling).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

from .probe import CONNECT_TIMEOUT, REFUSED, RESET, TIMEOUT, Observation

OK, WARN, FAIL = "ok", "warn", "fail"
# The exit code a failed check asks for (DESIGN.md): IMDS unusable, keys missing.
EXIT_UNAVAILABLE, EXIT_MISSING, EXIT_CONFIG = 3, 1, 2

MODIFY = "aws ec2 modify-instance-metadata-options --instance-id {instance}"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
SLOW_SECONDS = 0.1  # the real IMDS answers in a few ms; 100 ms means a loaded host


@dataclass(frozen=True)
class Check:
    """One line of doctor's report; *exit_code* is what a failure makes doctor exit with."""

    name: str
    level: str
    summary: str
    cause: str = ""
    fix: str = ""
    exit_code: int = 0


def _ms(seen: Observation) -> str:
    return f"{seen.seconds * 1000:.1f} ms"


def _modify(flag: str, instance: str) -> str:
    return MODIFY.format(instance=instance) + " " + flag


def environment(environ: Mapping[str, str]) -> List[Check]:
    """The off switch and proxy variables."""
    checks = []
    if environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true":
        checks.append(Check("environment", FAIL, "AWS_EC2_METADATA_DISABLED=true: imdsrender "
                            "will not contact IMDS (network checks skipped)",
                            "the SDKs' off switch is set in this environment",
                            "unset AWS_EC2_METADATA_DISABLED", EXIT_UNAVAILABLE))
    else:
        checks.append(Check("environment", OK, "AWS_EC2_METADATA_DISABLED not set"))
    found = sorted({k for k in environ if k.upper() in PROXY_VARIABLES and environ[k]})
    if found:
        checks.append(Check("proxy", WARN, ", ".join(found) + " set; imdsrender ignores proxy "
                            "variables and talks to IMDS directly",
                            "other IMDS clients (SDKs, the aws CLI) may send IMDS requests "
                            "through the proxy, which IMDS refuses (403) or cannot see",
                            "add 169.254.169.254 and fd00:ec2::254 to NO_PROXY"))
    return checks


def endpoint(url: str, origin: str, mode: str, mode_origin: str) -> Check:
    """Where requests go and which flag, variable or setting chose it."""
    return Check("endpoint", OK, f"{url} (from {origin}); mode {mode} (from {mode_origin})")


def tcp(seen: Observation, where: str) -> Check:
    if seen.ok:
        return Check("tcp", OK, f"connected to {where} in {_ms(seen)}")
    if seen.outcome == REFUSED:
        cause = ("nothing listens there: not an EC2 instance, a container network without "
                 "a route to IMDS, or a firewall REJECT rule")
        fix = ("run on the instance (or a container with --network host); check "
               "`ip route get 169.254.169.254` and iptables; or set --endpoint / IMDS_ENDPOINT")
    elif seen.outcome == CONNECT_TIMEOUT:
        cause = "packets are dropped: a firewall DROP rule or no route from this network"
        fix = "allow TCP to 169.254.169.254:80 (iptables, security software, container network)"
    else:
        cause, fix = "the address cannot be reached from here", "check --endpoint / IMDS_ENDPOINT"
    return Check("tcp", FAIL, f"cannot connect to {where}: {seen.detail} ({_ms(seen)})",
                 cause, fix, EXIT_UNAVAILABLE)


def token(seen: Observation, v1: Optional[Observation], allow_v1: bool, instance: str,
          asked_ttl: int) -> List[Check]:
    """The token PUT; *v1* is a tokenless GET made when the PUT failed."""
    where = f"PUT /latest/api/token: {seen.detail or seen.label} ({_ms(seen)})"
    if seen.ok:
        return [Check("token", OK, f"token issued in {_ms(seen)}")] + _granted(seen, asked_ttl)
    v1_works = v1 is not None and v1.ok
    if seen.outcome == TIMEOUT and v1 is not None and v1.outcome == TIMEOUT:
        cause = "IMDS answers nothing in time, GETs neither: a loaded host or network"
        fix = "raise imds.timeout / --timeout; retry later"
    elif seen.outcome == TIMEOUT:
        cause = ("hop limit: the PUT connected and was sent but its answer never arrived "
                 "(while a GET's did); "
                 "IMDS sends it with an IP TTL of HttpPutResponseHopLimit (default 1), "
                 "which a container's extra hop drops")
        fix = _modify("--http-put-response-hop-limit 2", instance)
    elif seen.outcome == RESET:
        cause = "the connection was reset: a proxy or firewall in between, or IMDS overloaded"
        fix = "retry; look for a transparent proxy or an iptables rule on port 80"
    elif seen.status == 403 and v1 is not None and v1.status == 403:
        cause = "IMDS is turned off for this instance (HttpEndpoint=disabled)"
        fix = _modify("--http-endpoint enabled", instance)
    elif seen.status == 403:
        cause = ("IMDS refuses tokens to forwarded requests: a proxy on the way adds "
                 "X-Forwarded-For")
        fix = "send IMDS requests directly: exempt 169.254.169.254 from the proxy"
    elif seen.status == 400:
        cause = "IMDS refused the token TTL"
        fix = "set imds.token_ttl to 1..21600 seconds"
    elif seen.status in (404, 405):
        cause = ("IMDSv1 only: no token endpoint, or a firewall/proxy blocks PUT"
                 + ("; GETs without a token work" if v1_works else ""))
        fix = ("allow PUT to the endpoint so IMDSv2 works, then " +
               _modify("--http-tokens required", instance) +
               ("" if allow_v1 else "; or set imds.allow_imdsv1: true to accept IMDSv1"))
    else:
        cause, fix = f"unexpected answer {seen.label}", "retry; rerun with --log-level debug"
    if v1_works and allow_v1:
        return [Check("token", WARN, where + "; IMDSv1 fallback works (imds.allow_imdsv1)",
                      cause, fix)]
    if v1 is not None and v1.status == 401:
        where += "; IMDSv1 fallback refused (401: HttpTokens=required)"
    return [Check("token", FAIL, where, cause, fix, EXIT_UNAVAILABLE)]


def _granted(seen: Observation, asked: int) -> List[Check]:
    granted = seen.headers.get("x-aws-ec2-metadata-token-ttl-seconds", "")
    if granted.isdigit() and int(granted) < asked:
        return [Check("token-ttl", WARN, f"token granted for {granted} s, {asked} s asked",
                      "tokens expire early (or are revoked on stop/start and hibernation)",
                      "nothing to do: imdsrender takes a new token when one expires")]
    return []


def get(seen: Observation, path: str) -> Check:
    """The first metadata GET (with the token, or tokenless on the v1 fallback)."""
    if seen.ok:
        value = seen.body.decode("utf-8", "replace").strip()
        retried = f" after {seen.attempts} attempts" if seen.attempts > 1 else ""
        return Check("get", OK, f"GET {path} = {value} in {_ms(seen)}{retried}")
    cause, fix = {
        401: ("IMDS refused the token", "retry; if it persists, tokens are being revoked"),
        403: ("IMDS is turned off for this instance (HttpEndpoint=disabled)",
              _modify("--http-endpoint enabled", "<instance-id>")),
        404: ("the endpoint is not EC2 instance metadata", "check --endpoint / IMDS_ENDPOINT"),
    }.get(seen.status, ("IMDS did not answer the GET", "retry; rerun with --log-level debug"))
    return Check("get", FAIL, f"GET {path}: {seen.detail or seen.label} ({_ms(seen)})",
                 cause, fix, EXIT_UNAVAILABLE)


def ipv6(seen: Observation, url: str, instance: str) -> Check:
    if seen.ok:
        return Check("ipv6", OK, f"connected to {url} in {_ms(seen)}")
    return Check("ipv6", FAIL, f"cannot connect to {url}: {seen.detail}",
                 "the IPv6 endpoint is not enabled (Nitro instances only) or this subnet has "
                 "no IPv6", _modify("--http-protocol-ipv6 enabled", instance), EXIT_UNAVAILABLE)


def tags(seen: Observation, instance: str) -> Check:
    if seen.ok:
        count = len(seen.body.split())
        return Check("tags", OK, f"instance metadata tags enabled ({count} tags)")
    if seen.status == 404:
        return Check("tags", WARN, "/meta-data/tags/instance/ 404: instance metadata tags not "
                     "enabled", "InstanceMetadataTags=disabled (the default)",
                     _modify("--instance-metadata-tags enabled", instance))
    return Check("tags", WARN, f"/meta-data/tags/instance/: {seen.detail or seen.label}")


def iam(seen: Observation, instance: str) -> Check:
    """Never shows credentials: only whether a role name is listed."""
    roles = seen.body.split() if seen.ok else []
    if roles:
        names = ", ".join(r.decode("utf-8", "replace") for r in roles)
        return Check("iam", OK, f"role attached: {names}")
    if seen.ok or seen.status == 404:
        return Check("iam", WARN, "/meta-data/iam/security-credentials/ "
                     + ("empty" if seen.ok else "404") + ": no role attached",
                     "no instance profile is associated with this instance",
                     f"aws ec2 associate-iam-instance-profile --instance-id {instance} "
                     "--iam-instance-profile Name=PROFILE")
    return Check("iam", WARN, f"/meta-data/iam/security-credentials/: {seen.detail or seen.label}")


def keys(found: Mapping[str, Observation]) -> List[Check]:
    """Each key the templates need: present (200) or missing; never a value."""
    missing = [k for k, seen in found.items() if not seen.ok]
    if not missing:
        return [Check("keys", OK, f"all {len(found)} keys the templates need are present")]
    return [Check("keys", FAIL, f"{k}: missing ({found[k].detail or found[k].label})",
                  "the instance does not have this metadata (tags or a role not enabled?)",
                  "enable it on the instance, or guard the template with exists()",
                  EXIT_MISSING) for k in missing]


def burst(labels: Dict[str, int], seconds: Sequence[float], concurrency: int) -> List[Check]:
    """Throttling (429), flakiness (5xx, resets), revocations (401) and latency of a burst."""
    total = sum(labels.values())
    checks = []
    throttled = labels.get("429", 0)
    if throttled:
        checks.append(Check("throttling", WARN, f"{throttled} of {total} requests throttled (429)",
                            "IMDS limits requests per second per instance",
                            f"keep concurrency low (now {concurrency}; --concurrency or "
                            "concurrency: in imdsrender.yaml) and let interval mode cache"))
    else:
        checks.append(Check("throttling", OK, f"{total} requests back to back, none throttled"))
    broken = {k: v for k, v in labels.items() if k not in ("200", "429", "401")}
    if broken:
        counts = ", ".join(f"{v} x {k}" for k, v in sorted(broken.items()))
        checks.append(Check("stability", WARN, f"{counts} of {total} requests",
                            "IMDS answers errors or drops connections (flaky: host "
                            "maintenance, an overloaded proxy)",
                            "imdsrender retries these; raise imds.retries if runs fail"))
    if labels.get("401"):
        checks.append(Check("token-revoked", WARN, f"{labels['401']} of {total} requests "
                            "refused (401) with a fresh token",
                            "tokens were revoked (stop/start, hibernation) or expire early",
                            "nothing to do: imdsrender takes a new token on 401"))
    slowest = max(seconds, default=0.0)
    if slowest >= SLOW_SECONDS:
        checks.append(Check("latency", WARN, f"slowest answer {slowest * 1000:.0f} ms",
                            "a loaded host or network answers IMDS slowly",
                            "raise imds.timeout / --timeout if requests time out"))
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    """3 when IMDS is unusable, else 2 for a broken confdir, else 1 for missing keys."""
    codes = {c.exit_code for c in checks if c.level == FAIL}
    for code in (EXIT_UNAVAILABLE, EXIT_CONFIG, EXIT_MISSING):
        if code in codes:
            return code
    return 0
