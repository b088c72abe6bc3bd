"""Settings: imdsrender.yaml read into :class:`~imdsrender.model.Settings`."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Dict, Optional
from urllib.parse import urlsplit

from yaml.nodes import Node

from ..errors import ConfigError
from ..imds.wire import MAX_TTL, MIN_TTL
from ..model import MAX_CONCURRENCY, MAX_RETRIES, ImdsSettings, Settings
from .yamldoc import Doc, compose

log = logging.getLogger(__name__)

_SETTINGS_FIELDS = ("imds", "cache_ttl", "concurrency", "state_dir")
_IMDS_FIELDS = ("endpoint", "endpoint_mode", "token_ttl", "timeout", "retries",
                "boot_wait", "run_timeout", "allow_imdsv1", "max_listing_entries", "max_requests")


def load_settings(path: Optional[str], *, required: bool = False) -> Settings:
    """Settings from imdsrender.yaml; the defaults when there is none.

    The file is optional in a confdir, but a file named with ``--config``
    (*required*) must exist: a typo there must not silently mean defaults.
    """
    if path is None:
        return Settings()
    if not os.path.exists(path):
        if required:
            raise ConfigError(path, "no such file", "check the --config path")
        log.debug("no settings file at %s; using defaults", path)
        return Settings()
    root = compose(path, path)
    if root is None:
        return Settings()
    doc = Doc(path)
    fields = doc.fields(root, _SETTINGS_FIELDS, "the settings file")
    imds = _imds_settings(doc, fields["imds"]) if "imds" in fields else ImdsSettings()
    return Settings(
        imds=imds,
        cache_ttl=doc.duration(fields["cache_ttl"], "cache_ttl")
        if "cache_ttl" in fields else Settings.cache_ttl,
        concurrency=doc.integer(fields["concurrency"], "concurrency", 1, MAX_CONCURRENCY)
        if "concurrency" in fields else Settings.concurrency,
        state_dir=doc.string(fields["state_dir"], "state_dir")
        if "state_dir" in fields else Settings.state_dir,
    )


def _imds_settings(doc: Doc, node: Node) -> ImdsSettings:
    fields = doc.fields(node, _IMDS_FIELDS, "imds")
    parsers: Dict[str, Callable[[Node], Any]] = {
        "endpoint": lambda n: _endpoint(doc, n),
        "endpoint_mode": lambda n: _endpoint_mode(doc, n),
        "token_ttl": lambda n: doc.integer(n, "token_ttl", MIN_TTL, MAX_TTL),
        "timeout": lambda n: doc.duration(n, "timeout"),
        "retries": lambda n: doc.integer(n, "retries", 0, MAX_RETRIES),
        "boot_wait": lambda n: doc.duration(n, "boot_wait"),
        "run_timeout": lambda n: doc.duration(n, "run_timeout"),
        "allow_imdsv1": lambda n: doc.boolean(n, "allow_imdsv1"),
        "max_listing_entries": lambda n: doc.integer(n, "max_listing_entries", 1),
        "max_requests": lambda n: doc.integer(n, "max_requests", 1),
    }
    return ImdsSettings(**{name: parsers[name](n) for name, n in fields.items()})


def _endpoint(doc: Doc, node: Node) -> str:
    url = doc.string(node, "endpoint").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(doc.at(node), f"endpoint {url!r} is not an http:// URL",
                          "write e.g. http://169.254.169.254")
    return url.rstrip("/")


def _endpoint_mode(doc: Doc, node: Node) -> str:
    mode = doc.string(node, "endpoint_mode").strip().lower()
    if mode not in ("ipv4", "ipv6"):
        raise ConfigError(doc.at(node), f"endpoint_mode must be ipv4 or ipv6, not {mode!r}")
    return mode
