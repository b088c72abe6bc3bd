"""Workload builders: a fixture for the emulator plus a confdir that renders from it.

Each workload is a value (fixture, resources with template text and keys);
``materialise`` writes it as a real confdir whose dests point into a
scratch directory, so ``imdsrender --onetime`` can run it unchanged.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

from imdsrender.fixture import default_fixture

from .minimum import Expectation, expect

REPO = Path(__file__).resolve().parent.parent
SEED_KEYS = (
    "/meta-data/instance-id",
    "/meta-data/instance-type",
    "/meta-data/ami-id",
    "/meta-data/tags/instance/Name",
    "/meta-data/tags/instance/Environment",
    "/meta-data/placement/availability-zone",
    "/meta-data/local-ipv4",
)
TAGS = "/meta-data/tags/instance/"


@dataclass(frozen=True)
class Spec:
    """One template resource: the template's name and text, and its keys.

    ``keys`` None leaves the list out of the YAML, so imdsrender derives it
    from the template; ``uses`` are then the keys the template reads, which
    the expectation needs.
    """

    name: str
    template: str
    keys: Optional[Tuple[str, ...]]
    uses: Tuple[str, ...] = ()

    @property
    def wanted(self) -> Tuple[str, ...]:
        return self.keys if self.keys is not None else self.uses


@dataclass(frozen=True)
class Workload:
    """A named benchmark case: what the emulator serves and what is rendered."""

    name: str
    fixture: Mapping[str, bytes]
    resources: Tuple[Spec, ...]
    copies: int = 1  # resources per spec (each with its own dest), for the scale test

    def expectation(self) -> Expectation:
        return expect((k for spec in self.resources for k in spec.wanted), self.fixture)

    @property
    def resource_count(self) -> int:
        return len(self.resources) * self.copies


@dataclass(frozen=True)
class Built:
    """A workload written to disk: its confdir and the directory dests go to."""

    confdir: str
    out: str

    @property
    def state(self) -> str:
        """The --state-dir of its runs (beside out/): what an unchanged run reads."""
        return os.path.join(os.path.dirname(self.out), "state")

    def clean_outputs(self) -> None:
        """Remove rendered files and run state so the next run writes them again (as at boot)."""
        shutil.rmtree(self.out, ignore_errors=True)
        shutil.rmtree(self.state, ignore_errors=True)
        os.makedirs(self.out)


def materialise(workload: Workload, root: str) -> Built:
    """Write *workload* as ``root/confdir`` (conf.d + templates) with dests under ``root/out``."""
    confdir = os.path.join(root, "confdir")
    out = os.path.join(root, "out")
    os.makedirs(os.path.join(confdir, "conf.d"))
    os.makedirs(os.path.join(confdir, "templates"))
    os.makedirs(out)
    for spec in workload.resources:
        Path(confdir, "templates", spec.name).write_text(spec.template, "utf-8")
    Path(confdir, "conf.d", "bench.yaml").write_text(_resources_yaml(workload, out), "utf-8")
    return Built(confdir, out)


def _resources_yaml(workload: Workload, out: str) -> str:
    lines = ["templates:"]
    for spec in workload.resources:
        for copy in range(workload.copies):
            suffix = f".{copy:04d}" if workload.copies > 1 else ""
            lines.append(f"  - src: {spec.name}")
            lines.append(f"    dest: {out}/{spec.name}{suffix}.out")
            if spec.keys is not None:
                lines.append("    keys:")
                lines.extend(f"      - {key}" for key in spec.keys)
    return "\n".join(lines) + "\n"


# --- the workloads ----------------------------------------------------------

def _with_tags(count: int) -> Dict[str, bytes]:
    """The default instance plus *count* extra instance tags ``tag-000``..."""
    values = dict(default_fixture())
    for i in range(count):
        values[f"{TAGS}tag-{i:03d}"] = f"value-{i:03d}".encode()
    return values


def _getv_template(keys: Iterable[str]) -> str:
    return "".join(f'{key.rsplit("/", 1)[-1]}={{{{ getv("{key}") }}}}\n' for key in keys)


def seed_instance() -> Workload:
    """The seed's (and examples/') instance resource, verbatim, on the default instance."""
    template = (REPO / "examples" / "templates" / "instance.conf.j2").read_text("utf-8")
    spec = Spec("instance.conf.j2", template, SEED_KEYS)
    return Workload("seed instance example", default_fixture(), (spec,))


def confd_integration() -> Workload:
    """confd's integration example: 8 keys, one of them the tags directory."""
    leaves = ("/meta-data/instance-id", "/meta-data/instance-type", "/meta-data/ami-id",
              "/meta-data/placement/availability-zone", "/meta-data/placement/region",
              "/meta-data/local-ipv4", "/meta-data/mac")
    template = _getv_template(leaves) + (
        '{% for t in gets("/meta-data/tags/instance/*") %}'
        'tag {{ t.key }}={{ t.value }}\n{% endfor %}')
    spec = Spec("integration.j2", template, leaves + (TAGS,))
    return Workload("confd integration (8 keys)", default_fixture(), (spec,))


def distinct_leaves(count: int = 50) -> Workload:
    """One resource reading *count* distinct leaves (listed explicitly)."""
    keys = tuple(f"{TAGS}tag-{i:03d}" for i in range(count))
    spec = Spec("leaves.j2", _getv_template(keys), keys)
    return Workload(f"{count} distinct leaves", _with_tags(count), (spec,))


def tag_directory(count: int = 300) -> Workload:
    """One resource reading a directory of *count* tags (plus the default 3)."""
    template = '{% for t in gets("/meta-data/tags/instance/*") %}{{ t.value }}\n{% endfor %}'
    spec = Spec("tags.j2", template, (TAGS,))
    return Workload(f"{count}-tag directory", _with_tags(count), (spec,))


def shared_resources(count: int = 10) -> Workload:
    """*count* resources that overlap: common leaves, the tags dir, one own leaf each."""
    common = ("/meta-data/instance-id", "/meta-data/placement/region", "/meta-data/local-ipv4")
    own = sorted(k for k in default_fixture() if k.startswith("/meta-data/network/")
                 and not k.endswith("/"))
    specs: List[Spec] = []
    for i in range(count):
        keys = common + (own[i % len(own)],)
        template = _getv_template(keys) + '{{ gets("/meta-data/tags/instance/*") | length }}\n'
        specs.append(Spec(f"shared-{i:02d}.j2", template, keys + (TAGS,)))
    return Workload(f"{count} resources sharing keys", default_fixture(), tuple(specs))


def scale(resources: int = 1000, keys: int = 300) -> Workload:
    """*resources* resources of one template reading the same *keys* tags.

    The keys are derived from the template's literal getv calls (the style
    DESIGN recommends), so config loading, key derivation, planning and
    rendering all see 1,000 × 300.
    """
    wanted = tuple(f"{TAGS}tag-{i:03d}" for i in range(keys))
    spec = Spec("scale.j2", _getv_template(wanted), None, uses=wanted)
    return Workload(f"scale {resources} x {keys}", _with_tags(keys), (spec,), copies=resources)


def request_workloads() -> Tuple[Workload, ...]:
    """The workloads of the request-count and latency tables."""
    return (seed_instance(), confd_integration(), distinct_leaves(20), distinct_leaves(),
            tag_directory(), shared_resources())
