"""Helpers shared by the write tests (fixtures are in conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import List

from imdsrender.model import Resource

NOBODY = 65534
SECRET = "AKIAEXAMPLESECRET"


def make(dest: Path, **fields: object) -> Resource:
    base = Resource(origin="conf.d/app.yaml:3", src="/etc/imdsrender/templates/app.conf.j2",
                    template="app.conf.j2", dest=str(dest), keys=("/meta-data/instance-id",))
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def listing(directory: Path) -> List[str]:
    return sorted(os.listdir(directory))


def lines_of(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def alive(pid: int) -> bool:
    """True while *pid* runs; a zombie (no reaping init in containers) counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_gone(pid: int) -> bool:
    """Bounded wait for a killed process to disappear (SIGKILL is not synchronous)."""
    for _ in range(100):
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False
