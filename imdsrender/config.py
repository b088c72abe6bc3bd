"""Settings (imdsrender.yaml) and template resources (conf.d/*.yaml).

Parsing is pure apart from reading the files; every error names the file,
the line where known, and the field, in one line (ConfigError, exit 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Tuple

from . import UsageError

MiB = 1024 * 1024


class ConfigError(UsageError):
    """A mistake in a config file, a template or a flag: exit 2."""


@dataclass(frozen=True)
class ImdsSettings:
    """What the IMDS client needs; see DESIGN.md "IMDS client rules"."""

    endpoint: Optional[str] = None  # None: resolved from the environment / mode
    endpoint_mode: str = "ipv4"
    token_ttl: int = 21600
    timeout: float = 1.0
    retries: int = 3
    boot_wait: float = 60.0
    allow_imdsv1: bool = False
    max_leaf_bytes: int = 1 * MiB
    max_run_bytes: int = 16 * MiB
    max_depth: int = 16


@dataclass(frozen=True)
class Settings:
    imds: ImdsSettings = field(default_factory=ImdsSettings)
    cache_ttl: float = 60.0
    concurrency: int = 8


@dataclass(frozen=True)
class Resource:
    """One template resource, validated and with every default resolved."""

    origin: str  # "conf.d/app.yaml:3" - where it was declared, for messages
    src: str  # absolute path of the template file
    template: str  # name of the template relative to templates/
    dest: str
    keys: Tuple[str, ...]  # normalised keys (given or derived)
    mode: int = 0o644
    owner: Optional[int] = None  # uid
    group: Optional[int] = None  # gid
    check_cmd: Optional[str] = None
    reload_cmd: Optional[str] = None
    check_timeout: float = 30.0
    reload_timeout: float = 60.0
