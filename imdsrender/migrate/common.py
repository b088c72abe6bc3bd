"""What every part of the migrator shares: markers, errors, the report, keys.

confd reads every key relative to a prefix and guessed directories from the
answers; imdsrender wants full IMDS paths and decides directories up front.
The folding rules live here so the template translator and the resource
converter agree on them.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Tuple

from ..errors import UsageError
from ..keys import ROOTS, glob_match

# Referenced where an untranslated expression stood: undefined on purpose, so
# StrictUndefined stops the render instead of silently writing a gap.
PLACEHOLDER = "imdsrender_migrate_untranslated"

# IMDS paths that are directories although confd users list them without the
# trailing "/" (confd guessed directory-ness from newlines in the body; we
# must decide up front).  Matched segment by segment; "*" is one segment.
_KNOWN_DIRS = (
    "/meta-data", "/meta-data/block-device-mapping", "/meta-data/events",
    "/meta-data/events/maintenance", "/meta-data/events/recommendations",
    "/meta-data/iam", "/meta-data/iam/security-credentials",
    "/meta-data/identity-credentials", "/meta-data/identity-credentials/ec2",
    "/meta-data/identity-credentials/ec2/security-credentials", "/meta-data/metrics",
    "/meta-data/network", "/meta-data/network/interfaces",
    "/meta-data/network/interfaces/macs", "/meta-data/network/interfaces/macs/*",
    "/meta-data/network/interfaces/macs/*/ipv4-associations", "/meta-data/placement",
    "/meta-data/public-keys", "/meta-data/public-keys/*", "/meta-data/services",
    "/meta-data/spot", "/meta-data/tags", "/meta-data/tags/instance", "/dynamic",
    "/dynamic/instance-identity", "/dynamic/fws",
)

class MigrationError(UsageError):
    """The migration cannot start or read its input (exit 2)."""


@dataclass(frozen=True)
class MigrationReport:
    """What ``migrate_confdir`` wrote and what it could not translate."""

    written: Tuple[str, ...]  # paths relative to OUT
    problems: Tuple[str, ...]  # "conf.d/x.toml:LINE: ..." / "templates/x.tmpl:LINE: ..."



def fold_prefix(global_prefix: str = "", resource_prefix: str = "") -> str:
    """confd's effective prefix: global and resource prefix concatenated.

    This is the confd 0.40 (the imds backend's) rule; "/" means no prefix.
    """
    parts = [p.strip("/") for p in (global_prefix or "", resource_prefix or "")]
    joined = "/".join(p for p in parts if p)
    return "/" + joined


def full_key(prefix: str, key: str) -> str:
    """The IMDS path a confd key names under *prefix*.

    confd joins prefix and key (``path.Join``); a bare path means
    ``/meta-data/...`` (as imdsrender's keys do).  A trailing ``/`` is kept:
    it is what makes an imdsrender key a directory.  Glob characters pass
    through untouched, so patterns use this too.
    """
    trailing = key.endswith("/") and key.strip("/") != ""
    joined = posixpath.normpath("/" + prefix.strip("/") + "/" + key.strip("/"))
    joined = "/" + joined.lstrip("/")
    if joined.startswith("/latest/") or joined == "/latest":
        joined = joined[len("/latest"):] or "/"
    if joined != "/" and not any(joined == r or joined.startswith(r + "/") for r in ROOTS):
        joined = "/meta-data" + joined
    elif joined == "/":
        joined = "/meta-data"
    if trailing and joined != "/user-data":
        joined += "/"
    return joined


def is_known_dir(path: str) -> bool:
    return any(glob_match(pattern, path.rstrip("/")) for pattern in _KNOWN_DIRS)


class Untranslatable(Exception):
    """A construct with no safe Jinja translation (the message says which)."""
