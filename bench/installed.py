"""imdsrender as users run it: a wheel installed in a fresh venv, byte-code compiled.

The .deb and .rpm install the wheel and compile its byte-code at install
time; an editable install instead finds modules through a path hook, and
with ``PYTHONDONTWRITEBYTECODE`` set (as in CI and dev shells) recompiles
every module of the working tree on every start.  Neither is what runs on
an instance, so the start-up and CPU figures come from this installation.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Installation:
    """A fresh venv holding the wheel built from this tree."""

    venv: str

    @property
    def python(self) -> str:
        return os.path.join(self.venv, "bin", "python")

    @property
    def cli(self) -> List[str]:
        """The console script, as users and the systemd units start it."""
        return [os.path.join(self.venv, "bin", "imdsrender")]

    @property
    def site_packages(self) -> str:
        (found,) = glob.glob(os.path.join(self.venv, "lib", "python3*", "site-packages"))
        return found

    def env(self) -> Dict[str, str]:
        """The environment of measured processes.

        ``PYTHONDONTWRITEBYTECODE=1`` and no ``PYTHONPYCACHEPREFIX``: every
        process reads exactly the byte-code compiled at install time and
        writes none, so run 1 and run 100 cost the same, as on an instance.
        """
        env = dict(os.environ)
        for name in ("IMDS_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                     "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "AWS_EC2_METADATA_DISABLED",
                     "PYTHONPYCACHEPREFIX", "PYTHONPATH", "PYTHONSTARTUP"):
            env.pop(name, None)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env


def install(root: str, log: Callable[[str], None]) -> Installation:
    """Build the wheel from this tree and install it, compiled, into ``root/venv``."""
    wheels, venv = os.path.join(root, "wheels"), os.path.join(root, "venv")
    log("installed: building the wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, str(REPO)])
    (wheel,) = glob.glob(os.path.join(wheels, "imdsrender-*.whl"))
    log("installed: creating a fresh venv and installing the wheel")
    _run([sys.executable, "-m", "venv", venv])
    installation = Installation(venv)
    _run([installation.python, "-m", "pip", "install", "-q", wheel])
    # pip compiles by default; compile again explicitly (a no-op when it did) so
    # the figures never depend on that default or on PYTHONDONTWRITEBYTECODE.
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    _run([installation.python, "-m", "compileall", "-q", installation.site_packages], env=env)
    _check_compiled(installation)
    return installation


def _check_compiled(installation: Installation) -> None:
    """Fail loudly when imdsrender's byte-code is missing (the figures would be wrong)."""
    package = os.path.join(installation.site_packages, "imdsrender")
    for source in glob.glob(os.path.join(package, "**", "*.py"), recursive=True):
        directory, name = os.path.split(source)
        tag = sys.implementation.cache_tag
        compiled = os.path.join(directory, "__pycache__", f"{name[:-3]}.{tag}.pyc")
        if not os.path.isfile(compiled):
            raise RuntimeError(f"bench: {compiled} missing after install")


def _run(command: List[str], env: Optional[Dict[str, str]] = None) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
