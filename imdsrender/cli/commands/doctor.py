"""``imdsrender doctor``: why can't I reach IMDS?  Probe step by step, say why and what to do.

Only wiring and formatting: the probes are :mod:`imdsrender.imds.probe`,
what they mean is :mod:`imdsrender.imds.diagnosis`.  Each step runs only
when the one before it worked (no token, no tags check), so the first
failure is the one reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ...errors import Error
from ...imds import diagnosis as dx
from ...imds.diagnosis import Check
from ...imds.probe import Observation, Prober
from ..pipeline import load_job, settings_from

if TYPE_CHECKING:  # pragma: no cover
    from ...model import ImdsSettings

FIRST_KEY = "/meta-data/instance-id"
UNKNOWN_INSTANCE = "<instance-id>"


def run(args: argparse.Namespace) -> int:
    checks = diagnose(args)
    if args.json:
        print(json.dumps({"exit_code": dx.exit_code(checks),
                          "checks": [dataclasses.asdict(c) for c in checks]}, indent=2))
    else:
        print("\n".join(_text(c) for c in checks))
    return dx.exit_code(checks)


def _text(check: Check) -> str:
    lines = [f"{check.level:<4} {check.name}: {check.summary}"]
    lines += [f"     {label}: {text}" for label, text in (("cause", check.cause),
                                                          ("fix", check.fix)) if text]
    return "\n".join(lines)


def diagnose(args: argparse.Namespace) -> List[Check]:
    """Every check in order; network checks stop at the first one IMDS fails."""
    from ...imds.endpoint import locate_endpoint
    from ...model import ImdsSettings

    checks = dx.environment(os.environ)
    try:
        settings = settings_from(args)
    except Error as exc:  # still probe IMDS, with the default settings
        from ...model import Settings

        checks.append(Check("settings", dx.FAIL, str(exc), "the settings file does not load",
                            "fix what it names; IMDS is probed with the defaults",
                            exc.exit_code))
        settings = Settings()
    try:
        located = locate_endpoint(settings.imds, args.endpoint)
    except Error as exc:
        return checks + [Check("endpoint", dx.FAIL, str(exc), exit_code=dx.EXIT_CONFIG)]
    mode_origin = ("env AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
                   if os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") else
                   "settings imds.endpoint_mode"
                   if settings.imds.endpoint_mode != ImdsSettings.endpoint_mode else "default")
    mode = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") or settings.imds.endpoint_mode
    checks.append(dx.endpoint(located.url, _origin(located.origin), mode, mode_origin))
    keys = _confdir(args, checks)
    if any(c.level == dx.FAIL and c.exit_code == dx.EXIT_UNAVAILABLE for c in checks):
        return checks  # AWS_EC2_METADATA_DISABLED: imdsrender would not contact IMDS
    prober = Prober(located.url, settings.imds.timeout)
    token, instance = _reach(prober, settings.imds, checks)
    if token is None and not _v1_usable(checks):
        return checks
    ipv6 = args.ipv6 or (located.url if mode.strip().lower() == "ipv6" else None)
    if ipv6:
        checks.append(dx.ipv6(Prober(ipv6, settings.imds.timeout).connect(), ipv6, instance))
    checks.append(dx.tags(prober.get("/meta-data/tags/instance/", token), instance))
    checks.append(dx.iam(prober.get("/meta-data/iam/security-credentials/", token), instance))
    if keys:
        checks += dx.keys({key: prober.get(key, token) for key in keys})
    if args.burst:
        checks += dx.burst(*prober.burst(FIRST_KEY, token, args.burst), settings.concurrency)
    return checks


def _origin(origin: str) -> str:
    """``--endpoint`` -> flag, a variable -> env, ``imds.*`` -> settings."""
    if origin.startswith("--"):
        return f"flag {origin}"
    if origin.startswith("imds."):
        return f"settings {origin}" if origin == "imds.endpoint" else f"mode {origin}"
    return f"env {origin}"


def _reach(prober: Prober, imds: ImdsSettings, checks: List[Check]) -> Tuple[Optional[str], str]:
    """TCP, the token, one GET: (the token or None, the instance id for fixes)."""
    where = f"{prober.host}:{prober.port}"
    connected = prober.connect()
    checks.append(dx.tcp(connected, where))
    if not connected.ok:
        return None, UNKNOWN_INSTANCE
    ttl, allow_v1 = imds.token_ttl, imds.allow_imdsv1
    issued = prober.token(ttl)
    v1: Optional[Observation] = None
    if not issued.ok:
        v1 = prober.get(FIRST_KEY, None)
    instance = _instance(v1) if v1 is not None else UNKNOWN_INSTANCE
    checks += dx.token(issued, v1, allow_v1, instance, ttl)
    if not issued.ok:
        return None, instance
    token = issued.body.decode("ascii", "replace")
    seen = prober.get(FIRST_KEY, token)
    checks.append(dx.get(seen, FIRST_KEY))
    return (token if seen.ok else None), _instance(seen)


def _instance(seen: Observation) -> str:
    text = seen.body.decode("utf-8", "replace").strip()
    return text if seen.ok and text.startswith("i-") and text.isprintable() else UNKNOWN_INSTANCE


def _v1_usable(checks: List[Check]) -> bool:
    return any(c.name == "token" and c.level == dx.WARN for c in checks)


def _confdir(args: argparse.Namespace, checks: List[Check]) -> Dict[str, None]:
    """``check`` on the confdir; the keys its templates need (empty when none)."""
    if not os.path.isdir(os.path.join(args.confdir, "conf.d")):
        checks.append(Check("confdir", dx.WARN, f"no {args.confdir}/conf.d: template checks "
                            "skipped", fix="pass --confdir DIR"))
        return {}
    try:
        job = load_job(args)
    except Error as exc:
        checks.append(Check("confdir", dx.FAIL, str(exc), "the confdir does not pass `check`",
                            "run `imdsrender check` and fix what it names", exc.exit_code))
        return {}
    from ...keys import union
    from .check import leftover_markers

    checks += [Check("confdir", dx.FAIL, f"{where}: a migrate-confd untranslated marker "
                     "remains", fix="translate that spot by hand and delete the marker",
                     exit_code=dx.EXIT_MISSING) for where in leftover_markers(job)]
    needed = union(k for r in job.resources for k in r.keys)
    checks.append(Check("confdir", dx.OK, f"{len(job.resources)} resources OK in "
                        f"{args.confdir}, {len(needed)} keys needed"))
    return dict.fromkeys(needed)
