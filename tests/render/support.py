"""Helpers shared by the render tests: a templates/ directory, snapshots, resources."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Optional, Tuple

import pytest

from imdsrender.config import Resource, derive_keys
from imdsrender.fetch import Snapshot
from imdsrender.render import (
    Rendered,
    RenderError,
    make_environment,
    render,
)

ORIGIN = "conf.d/app.yaml:2"

SEED_TEMPLATE = """\
# Instance Configuration
instance_id={{ getv("/meta-data/instance-id") }}
instance_type={{ getv("/meta-data/instance-type") }}
ami_id={{ getv("/meta-data/ami-id") }}
name={{ getv("/meta-data/tags/instance/Name") }}
environment={{ getv("/meta-data/tags/instance/Environment") }}
availability_zone={{ getv("/meta-data/placement/availability-zone") }}
local_ip={{ getv("/meta-data/local-ipv4") }}
"""

SEED_KEYS = (
    "/meta-data/instance-id",
    "/meta-data/instance-type",
    "/meta-data/ami-id",
    "/meta-data/tags/instance/Name",
    "/meta-data/tags/instance/Environment",
    "/meta-data/placement/availability-zone",
    "/meta-data/local-ipv4",
)

SEED_VALUES = {
    "/meta-data/instance-id": b"i-1234567890abcdef0",
    "/meta-data/instance-type": b"t3.micro",
    "/meta-data/ami-id": b"ami-0abcdef1234567890",
    "/meta-data/tags/instance/Name": b"web-1",
    "/meta-data/tags/instance/Environment": b"production",
    "/meta-data/placement/availability-zone": b"us-east-1a",
    "/meta-data/local-ipv4": b"10.0.1.23",
}


class Templates:
    """A templates/ directory in tmp_path plus the environment over it."""

    def __init__(self, root: Path, files: Mapping[str, str]) -> None:
        self.dir = root / "templates"
        for name, text in files.items():
            path = self.dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
        self.dir.mkdir(exist_ok=True)
        self.env = make_environment(str(self.dir))

    def resource(self, name: str, keys: Optional[Iterable[str]] = None,
                 closure: Tuple[str, ...] = ()) -> Resource:
        """A Resource for *name*; keys derived like config does when not given."""
        if keys is None:
            source = (self.dir / name).read_text()
            derived = derive_keys(source, name, origin=ORIGIN, templates_dir=str(self.dir))
        else:
            derived = tuple(keys)
        return Resource(origin=ORIGIN, src=str(self.dir / name), template=name,
                        dest="/etc/app/out", keys=derived, closure=closure)

    def render(self, name: str, snapshot: Snapshot, keys: Optional[Iterable[str]] = None
               ) -> Rendered:
        return render(self.env, self.resource(name, keys), snapshot)

    def error(self, name: str, snapshot: Snapshot, keys: Optional[Iterable[str]] = None) -> str:
        with pytest.raises(RenderError) as info:
            self.render(name, snapshot, keys)
        assert "\n" not in str(info.value)
        return str(info.value)


def snap(values: Mapping[str, bytes] = (), listings: Mapping[str, Tuple[str, ...]] = (),
         errors: Mapping[str, str] = (), requested: Tuple[str, ...] = ()) -> Snapshot:
    return Snapshot(values=dict(values), listings=dict(listings), errors=dict(errors),
                    requested=requested)


def one_template(tmp_path: Path, text: str, name: str = "t.j2", **extra: str) -> Templates:
    return Templates(tmp_path, {name: text, **extra})
