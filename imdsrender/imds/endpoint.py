"""Where IMDS is: endpoint resolution, and the off switch.

DESIGN.md "IMDS client rules": ``--endpoint`` > ``IMDS_ENDPOINT`` >
``AWS_EC2_METADATA_SERVICE_ENDPOINT`` > ``imds.endpoint`` > the mode
(``AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`` or ``imds.endpoint_mode``).
:func:`locate_endpoint` also says which of those won, so a log line or an
error can name it.  Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Optional

from ..errors import UsageError
from ..model import ImdsSettings
from .wire import IPV4_ENDPOINT, IPV6_ENDPOINT

MODE_ENDPOINTS = {"ipv4": IPV4_ENDPOINT, "ipv6": IPV6_ENDPOINT}


class ImdsConfigError(UsageError):
    """IMDS settings or IMDS itself say our own request is malformed: exit 2."""


@dataclass(frozen=True)
class Endpoint:
    """The base URL to talk to and where that value came from.

    ``origin`` is one of ``--endpoint``, an environment variable's name,
    ``imds.endpoint``, or ``imds.endpoint_mode`` / the mode variable.
    """

    url: str
    origin: str


def metadata_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """``AWS_EC2_METADATA_DISABLED=true``: the SDKs' off switch, honoured too."""
    return environ.get("AWS_EC2_METADATA_DISABLED", "").strip().lower() == "true"


def locate_endpoint(settings: ImdsSettings, flag: Optional[str] = None,
                    environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The endpoint by precedence, with the name of the place that set it."""
    for origin, candidate in (("--endpoint", flag),
                              ("IMDS_ENDPOINT", environ.get("IMDS_ENDPOINT")),
                              ("AWS_EC2_METADATA_SERVICE_ENDPOINT",
                               environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT")),
                              ("imds.endpoint", settings.endpoint)):
        if candidate:
            return Endpoint(candidate.rstrip("/"), origin)
    mode_origin = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
    mode = environ.get(mode_origin)
    if not mode:
        mode_origin, mode = "imds.endpoint_mode", settings.endpoint_mode
    url = MODE_ENDPOINTS.get(mode.strip().lower())
    if url is None:
        raise ImdsConfigError(mode_origin, f"unknown endpoint mode {mode!r}", "use ipv4 or ipv6")
    return Endpoint(url, mode_origin)


def resolve_endpoint(settings: ImdsSettings, flag: Optional[str] = None,
                     environ: Mapping[str, str] = os.environ) -> str:
    """Just the URL of :func:`locate_endpoint`."""
    return locate_endpoint(settings, flag, environ).url
