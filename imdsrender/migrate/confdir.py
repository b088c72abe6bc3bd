"""The confdir: read confd.toml and conf.d/, convert, write OUT, report."""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Set, Tuple

from .common import MigrationError, MigrationReport, fold_prefix, full_key
from .resources import convert_resource, output_template_name
from .template import translate


def _toml_module() -> Any:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
        return tomllib
    except ImportError:
        pass
    try:
        import tomli  # type: ignore[import-not-found,unused-ignore]
        return tomli
    except ImportError:
        raise MigrationError("migrate-confd",
                             "reading TOML needs Python 3.11+ or the tomli package",
                             "pip install 'imdsrender[migrate]'") from None


def _load_toml(path: str, rel: str) -> Tuple[Dict[str, Any], str]:
    toml = _toml_module()
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise MigrationError(rel, f"cannot read: {exc.strerror}", "check the file") from None
    try:
        text = raw.decode("utf-8")
        return toml.loads(text), text
    except UnicodeDecodeError:
        raise MigrationError(rel, "not UTF-8", "TOML files must be UTF-8") from None
    except toml.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"{rel}:{m.group(1)}" if m else rel
        what = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise MigrationError(where, f"invalid TOML: {what}", "fix the file and run again") from None


def _is_inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def _check_dirs(src: str, out: str, force: bool) -> Tuple[str, str]:
    real_src, real_out = os.path.realpath(src), os.path.realpath(out)
    if not os.path.isdir(os.path.join(real_src, "conf.d")):
        raise MigrationError(src, "not a confd confdir (no conf.d/ directory)",
                             "name the directory holding conf.d/ and templates/, e.g. /etc/confd")
    if _is_inside(real_out, real_src):
        raise MigrationError(out, "is the confd confdir or inside it",
                             "migration never works in place; name a new directory")
    if os.path.exists(real_out):
        if not os.path.isdir(real_out):
            raise MigrationError(out, "exists and is not a directory", "name a new directory")
        if os.listdir(real_out) and not force:
            raise MigrationError(out, "exists and is not empty",
                                 "name a new directory, or pass --force to overwrite files in it")
    return real_src, real_out


def _write(out: str, rel: str, content: str, written: List[str]) -> None:
    path = os.path.join(out, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(content)
    written.append(rel)


def _yaml_text(entry: Dict[str, Any], origin: str) -> str:
    import yaml
    body = yaml.safe_dump({"templates": [entry]}, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=1000)
    return f"# Converted from {origin} by imdsrender migrate-confd.\n{body}"


@dataclass
class TemplateJob:
    """One (template, prefix) pair: the same Go template under two prefixes is two outputs."""

    out_name: str
    text: str = ""
    name: str = ""
    keys: List[Tuple[str, str, int]] = field(default_factory=list)


def toml_files(conf_dir: str) -> Tuple[List[str], List[str]]:
    """Every ``*toml`` file below conf.d (relative, "/"-separated), as confd finds them.

    confd walks conf.d recursively without following directory links; so do
    we, and every TOML-named entry that is not read is reported, never
    skipped silently.
    """
    found: List[str] = []
    problems: List[str] = []
    for top, dirs, files in os.walk(conf_dir):
        rel_top = os.path.relpath(top, conf_dir).replace(os.sep, "/")
        prefix = "" if rel_top == "." else rel_top + "/"
        for d in sorted(dirs):
            if os.path.islink(os.path.join(top, d)):
                problems.append(f"conf.d/{prefix}{d}: a link to a directory; not followed "
                                "(confd does not follow it either)")
        dirs.sort()
        for f in sorted(files):
            if not f.endswith("toml"):
                continue
            if os.path.isfile(os.path.join(top, f)):
                found.append(prefix + f)
            else:
                problems.append(f"conf.d/{prefix}{f}: not a regular file; not converted")
    return sorted(found), problems


def _unique(rel_stem: str, taken: Set[str]) -> str:
    """A flat conf.d name for a nested TOML (imdsrender reads conf.d/*.yaml only)."""
    base = rel_stem.replace("/", "-")
    name, n = base, 2
    while name in taken:
        name = f"{base}-{n}"
        n += 1
    taken.add(name)
    return name


def migrate_confdir(src: str, out: str, *, force: bool = False) -> MigrationReport:
    """Convert the confd confdir *src* into the imdsrender confdir *out*."""
    real_src, real_out = _check_dirs(src, out, force)
    global_prefix = ""
    confd_toml = os.path.join(real_src, "confd.toml")
    if os.path.isfile(confd_toml):
        settings, _ = _load_toml(confd_toml, "confd.toml")
        global_prefix = str(settings.get("prefix") or "")
    conf_dir = os.path.join(real_src, "conf.d")
    names, problems = toml_files(conf_dir)
    loaded = [(n, _load_toml(os.path.join(conf_dir, n), f"conf.d/{n}")) for n in names]
    written: List[str] = []
    yaml_names: Set[str] = set()
    jobs: Dict[Tuple[str, str], TemplateJob] = {}
    taken: Set[str] = set()
    for fname, (doc, text) in loaded:
        rel = f"conf.d/{fname}"
        table = doc.get("template")
        tpl: Mapping[str, Any] = table if isinstance(table, Mapping) else {}
        job = _template_job(real_src, tpl, global_prefix, jobs, taken, problems)
        entry, resource_problems = convert_resource(
            doc, rel, global_prefix, text=text, template_keys=job.keys if job else (),
            template_name=job.name if job else "")
        if job is not None and entry:
            entry["src"] = job.out_name
        problems.extend(resource_problems)
        if entry:
            yaml_name = _unique(fname[: -len(".toml")] if fname.endswith(".toml") else fname,
                                yaml_names)
            _write(real_out, f"conf.d/{yaml_name}.yaml", _yaml_text(entry, rel), written)
    for job in jobs.values():
        _write(real_out, f"templates/{job.out_name}", job.text, written)
    return MigrationReport(tuple(sorted(written)), tuple(problems))


def _template_job(real_src: str, tpl: Mapping[str, Any], global_prefix: str,
                  jobs: Dict[Tuple[str, str], TemplateJob], taken: Set[str],
                  problems: List[str]) -> Optional[TemplateJob]:
    src = tpl.get("src")
    if not isinstance(src, str) or not src:
        return None
    prefix = fold_prefix(global_prefix, str(tpl.get("prefix") or ""))
    if (src, prefix) in jobs:
        return jobs[(src, prefix)]
    rel = posixpath.normpath(src)
    name = f"templates/{rel}"
    if rel.startswith("../") or rel.startswith("/") or rel == "..":
        problems.append(f"{name}: template outside templates/; not converted")
        return None
    path = os.path.join(real_src, "templates", rel)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            source = fh.read()
    except OSError as exc:
        problems.append(f"{name}: cannot read: {exc.strerror}")
        return None
    out_name = output_template_name(rel)
    n = 2
    while out_name in taken:  # same template, another prefix
        out_name = output_template_name(rel)[: -len(".j2")] + f"-{n}.j2"
        n += 1
    taken.add(out_name)
    keys = tpl.get("keys")
    declared = [full_key(prefix, k) for k in keys if isinstance(k, str)] \
        if isinstance(keys, list) else []
    result = translate(source, name, prefix, declared)
    problems.extend(result.problems)
    job = TemplateJob(out_name, result.text, name, result.literal_keys)
    jobs[(src, prefix)] = job
    return job
