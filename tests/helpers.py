"""Test helpers shared by the end-to-end tests: a confdir builder and a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# Anything that forgets --endpoint talks to a closed loopback port, never to
# the real link-local IMDS address.
SAFE_ENDPOINT = "http://127.0.0.1:9"


def run_cli(*args: str, env: Optional[Dict[str, str]] = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m imdsrender ARGS`` with a clean, loopback-only environment."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "IMDS_")) and not k.lower().endswith("_proxy")}
    clean["IMDS_ENDPOINT"] = SAFE_ENDPOINT
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "imdsrender", *args], capture_output=True,
                          text=True, cwd=ROOT, env=clean, timeout=timeout)


class ConfDir:
    """A confdir under tmp_path whose resources write into tmp_path/out."""

    def __init__(self, tmp_path: Path) -> None:
        self.path_obj = tmp_path / "confdir"
        self.out = tmp_path / "out"
        (self.path_obj / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.path_obj / "templates").mkdir(exist_ok=True)
        self.resources: List[Dict[str, Any]] = []

    @property
    def path(self) -> str:
        return str(self.path_obj)

    def dest(self, name: str) -> Path:
        return self.out / name

    def flags(self, emulator: Any) -> List[str]:
        return ["--confdir", self.path, "--endpoint", emulator.url]

    def resource(self, template: str, text: str, **fields: Any) -> Dict[str, Any]:
        """Add a template and a resource rendering it to out/<template minus .j2>."""
        (self.path_obj / "templates" / template).write_text(text)
        name = template[:-3] if template.endswith(".j2") else template
        entry = {"src": template, "dest": str(self.dest(name)), **fields}
        self.resources.append(entry)
        self.write_resources()
        return entry

    def write_resources(self) -> None:
        (self.path_obj / "conf.d" / "resources.yaml").write_text(
            yaml.safe_dump({"templates": self.resources}, sort_keys=False))

    @classmethod
    def from_examples(cls, tmp_path: Path, *files: str) -> ConfDir:
        """Copy examples/ (or only the named conf.d files), dests moved under out/."""
        confdir = cls(tmp_path)
        shutil.copytree(EXAMPLES / "templates", confdir.path_obj / "templates",
                        dirs_exist_ok=True)
        for source in sorted((EXAMPLES / "conf.d").glob("*.yaml")):
            if files and source.name not in files:
                continue
            doc = yaml.safe_load(source.read_text())
            for entry in doc["templates"]:
                entry["dest"] = str(confdir.dest(os.path.basename(entry["dest"])))
                entry.pop("reload_cmd", None)  # examples reload services this box lacks
            (confdir.path_obj / "conf.d" / source.name).write_text(yaml.safe_dump(doc))
        return confdir


MetricKey = Tuple[str, FrozenSet[Tuple[str, str]]]


def parse_metrics(text: str) -> Dict[MetricKey, float]:
    """Every sample of a Prometheus exposition: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def metric(samples: Dict[MetricKey, float], name: str, **labels: str) -> Optional[float]:
    """The sample with exactly these labels, None when absent."""
    return samples.get((name, frozenset(labels.items())))
