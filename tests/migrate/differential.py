"""Render a confd template two ways: Go's text/template and the migrated Jinja.

Go's side is tests/gotemplate (text/template with confd's function map over
confd's memkv store); ours is ``migrate_confdir`` followed by imdsrender's
own config loader, fetch and renderer over the same fixture.  Tests compare
the two byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from imdsrender.config import load_resources
from imdsrender.errors import Error
from imdsrender.fetch import Plan, fetch
from imdsrender.fixture import FixtureSource
from imdsrender.migrate import full_key, migrate_confdir
from imdsrender.render import make_environment, render

GO_SOURCE = Path(__file__).parent.parent / "gotemplate"


def build_go_renderer(workdir: Path) -> Optional[str]:
    """Build the Go program into *workdir*; None when no Go toolchain is installed."""
    go = shutil.which("go")
    if go is None:
        return None
    binary = str(workdir / "gotemplate")
    env = dict(os.environ, GOCACHE=str(workdir / "gocache"), GOPATH=str(workdir / "gopath"),
               GOFLAGS="-mod=mod", GOPROXY="off", CGO_ENABLED="0")
    subprocess.run([go, "build", "-o", binary, "."], cwd=GO_SOURCE, env=env, check=True,
                   capture_output=True, timeout=600)
    return binary


def confd_store(fixture: Mapping[str, str], prefix: str) -> Dict[str, str]:
    """What confd's memkv store holds: the keys under the prefix, relative to it."""
    if prefix.strip("/") == "":
        return dict(fixture)
    root = full_key(prefix, "/").rstrip("/")
    return {k[len(root):]: v for k, v in fixture.items() if k.startswith(root + "/")}


@dataclass(frozen=True)
class GoResult:
    out: str
    err: str


def go_render(binary: str, cases: Sequence[Tuple[str, Mapping[str, str]]]) -> List[GoResult]:
    """Render (template, store) cases with Go, all in one process."""
    payload = json.dumps([{"template": t, "store": dict(s)} for t, s in cases])
    done = subprocess.run([binary], input=payload, capture_output=True, text=True, check=True,
                          timeout=120)
    return [GoResult(r["out"], r["err"]) for r in json.loads(done.stdout)]


@dataclass(frozen=True)
class Migrated:
    out: Optional[str]  # None: imdsrender refused to render (err says why)
    err: str
    problems: Tuple[str, ...]


def migrate_and_render(template: str, fixture: Mapping[str, str], *, keys: Sequence[str] = (),
                       prefix: str = "", extra_toml: str = "") -> Migrated:
    """Migrate a one-resource confd confdir and render it as imdsrender would."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "confd", Path(tmp) / "out"
        (src / "conf.d").mkdir(parents=True)
        (src / "templates").mkdir()
        (src / "templates" / "t.tmpl").write_bytes(template.encode("utf-8", "surrogateescape"))
        toml = '[template]\nsrc = "t.tmpl"\ndest = "/etc/t.conf"\n'
        if keys:
            toml += "keys = [" + ", ".join(json.dumps(k) for k in keys) + "]\n"
        if prefix:
            toml += f"prefix = {json.dumps(prefix)}\n"
        (src / "conf.d" / "t.toml").write_text(toml + extra_toml)
        report = migrate_confdir(str(src), str(out))
        try:
            rendered = render_confdir(out, fixture, Path(tmp) / "root")
        except Error as exc:
            return Migrated(None, str(exc), report.problems)
        return Migrated(rendered["/etc/t.conf"], "", report.problems)


def render_confdir(confdir: Path, fixture: Mapping[str, str], root: Path) -> Dict[str, str]:
    """Every resource of an imdsrender confdir rendered from *fixture*: dest -> text."""
    resources = load_resources(str(confdir), dest_root=str(root))
    source = FixtureSource({k: v.encode("utf-8") for k, v in fixture.items()})
    snapshot = fetch(Plan.of(r.keys for r in resources), source)
    env = make_environment(str(confdir / "templates"))
    return {"/" + os.path.relpath(r.dest, root):
            render(env, r, snapshot).content.decode("utf-8", "surrogateescape")
            for r in resources}


# The metadata every differential case renders from: confd's imds backend
# and imdsrender see the same paths.  Built to hold the shapes real confd
# templates read: tags, per-MAC interface directories, JSON documents with
# and without optional fields, an app tree under one prefix.
FIXTURE: Dict[str, str] = {
    "/meta-data/instance-id": "i-0abc",
    "/meta-data/instance-type": "t3.micro",
    "/meta-data/local-ipv4": "10.0.1.23",
    "/meta-data/mac": "0a:1b:2c:3d:4e:5f",
    "/meta-data/security-groups": "web\ndefault",
    "/meta-data/tags/instance/Name": "web-1",
    "/meta-data/tags/instance/Environment": "production",
    "/meta-data/tags/instance/Team": "Platform",
    "/meta-data/tags/instance/Hosts": "10.0.0.1:80,10.0.0.2:80,10.0.0.3:8080",
    "/meta-data/placement/availability-zone": "us-east-1a",
    "/meta-data/placement/region": "us-east-1",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/local-ipv4s": "10.0.1.23\n10.0.1.24",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/subnet-id": "subnet-aaa",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/local-ipv4s": "10.0.2.45",
    "/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/subnet-id": "subnet-bbb",
    "/meta-data/app/upstream/web1": "10.0.1.100:80",
    "/meta-data/app/upstream/web2": "10.0.1.101:80",
    "/meta-data/app/services/api/port": "8080",
    "/meta-data/app/services/api/host": "api.internal",
    "/meta-data/app/services/db/port": "5432",
    "/meta-data/app/services/db/host": "db.internal",
    "/meta-data/app/containers/c1": (
        '{"name": "c1", "proxy_url": "http://proxy:3128", "ports": {"80/tcp": "8080"},'
        ' "labels": ["a", "b"], "tls": true, "debug": false, "weight": 3, "note": null}'),
    "/meta-data/app/containers/c2": '{"name": "c2", "ports": {}, "labels": []}',
    "/meta-data/app/empty": "",
    "/dynamic/instance-identity/document": (
        '{"region": "us-east-1", "accountId": "123456789012", "instanceType": "t3.micro",'
        ' "marketplaceProductCodes": ["abc"]}'),
}
