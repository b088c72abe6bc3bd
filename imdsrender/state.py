"""Run state kept between runs: what the last run saw, and the reloads still owed.

A timer runs every few minutes and almost always finds nothing changed.
Loading YAML and compiling Jinja2 costs more than the rest of the run, so
the last successful run records what it rendered from (each confdir file:
size, mtime, inode and a SHA-256; the validated settings and resources as
plain data; a digest of the fetched values) and what it left behind (each
dest: content hash, mode, owner, inode).  When all of that still holds, the
next run only fetches and compares.  A reload_cmd that failed after its file
was written is remembered here too and retried until it succeeds.

The state file is a cache, never an authority: a missing, corrupt,
foreign-version, unreadable or foreign-owned file is ignored (one debug
line) and the run renders as it would without it.  Standard library only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import stat
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from . import __version__
from .model import ImdsSettings, Resource, Settings

log = logging.getLogger(__name__)

FORMAT = 1
# Files outside the confdir that loading reads: owner/group names resolve through them.
_SYSTEM_FILES = ("/etc/passwd", "/etc/group")

FileStamp = List[Any]  # [path, size, mtime_ns, inode, sha256] or [path, None]


@dataclasses.dataclass
class Record:
    """What one run leaves for the next; ``clean`` only when nothing failed."""

    files: List[FileStamp]
    settings: Dict[str, Any]
    resources: List[Dict[str, Any]]
    values: str = ""
    dests: Dict[str, List[Any]] = dataclasses.field(default_factory=dict)
    pending: List[str] = dataclasses.field(default_factory=list)
    clean: bool = False


def state_file(state_dir: str, confdir: str, settings_path: str) -> str:
    """One file per confdir (and settings file): a state dir may serve several."""
    key = f"{os.path.abspath(confdir)}\0{os.path.abspath(settings_path)}"
    return os.path.join(state_dir, f"run-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json")


def _hash_file(path: str) -> Tuple[os.stat_result, str]:
    with open(path, "rb") as handle:
        st = os.fstat(handle.fileno())
        return st, hashlib.sha256(handle.read()).hexdigest()


def _stamp(path: str) -> FileStamp:
    try:
        st, digest = _hash_file(path)
    except FileNotFoundError:
        return [path, None]
    return [path, st.st_size, st.st_mtime_ns, st.st_ino, digest]


def confdir_stamps(confdir: str, settings_path: str) -> Optional[List[FileStamp]]:
    """Every file loading may read; None when in doubt (a symlinked directory, an error).

    The whole of conf.d and templates is stamped, not just the files named,
    so an added resource or a template's include counts as a change.
    """
    paths = [settings_path, *_SYSTEM_FILES]
    try:
        for sub in ("conf.d", "templates"):
            top = os.path.join(confdir, sub)
            for where, dirs, files in os.walk(top, onerror=_raise):
                if any(os.path.islink(os.path.join(where, d)) for d in dirs):
                    log.debug("state: a symlinked directory under %s; not caching", top)
                    return None
                dirs.sort()
                paths.extend(os.path.join(where, name) for name in sorted(files))
        return [_stamp(path) for path in paths]
    except OSError as exc:
        log.debug("state: cannot stamp %s (%s); not caching", confdir, exc)
        return None


def _raise(exc: OSError) -> None:
    if not isinstance(exc, FileNotFoundError):
        raise exc


def values_digest(values: Mapping[str, bytes], listings: Mapping[str, Sequence[str]],
                  errors: Mapping[str, str]) -> str:
    """A digest of everything a render reads from IMDS (values are never stored)."""
    h = hashlib.sha256()
    for path in sorted(values):
        h.update(b"v%d:%s\0%d:" % (len(path), path.encode("utf-8", "surrogateescape"),
                                   len(values[path])))
        h.update(values[path])
    h.update(json.dumps([sorted((k, list(v)) for k, v in listings.items()),
                         sorted(errors.items())]).encode())
    return h.hexdigest()


def dest_stamp(dest: str) -> Optional[List[Any]]:
    """The file at *dest* as the write step compares it (a symlink is followed)."""
    try:
        st, digest = _hash_file(dest)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return [digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_size]


def dests_unchanged(record: Record, dests: Iterable[str]) -> bool:
    """True when every dest is still exactly what the last run left there."""
    for dest in dests:
        recorded = record.dests.get(dest)
        if recorded is None or dest_stamp(dest) != recorded:
            log.debug("state: %s differs from the last run", dest)
            return False
    return True


def settings_data(settings: Settings) -> Dict[str, Any]:
    return dataclasses.asdict(settings)


def settings_from_data(data: Mapping[str, Any]) -> Settings:
    top = dict(data)
    return Settings(imds=ImdsSettings(**top.pop("imds")), **top)


def resource_data(resource: Resource) -> Dict[str, Any]:
    return dataclasses.asdict(resource)


def resource_from_data(data: Mapping[str, Any]) -> Resource:
    return Resource(**{**data, "keys": tuple(data["keys"]), "closure": tuple(data["closure"])})


def load(path: str) -> Optional[Record]:
    """The record at *path*, or None (with one debug line) when it cannot be trusted."""
    try:
        _check_private(os.path.dirname(path))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        log.debug("state: no state file at %s", path)
        return None
    except OSError as exc:
        log.debug("state: cannot open %s (%s); ignored", path, exc)
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
            log.debug("state: %s is not a private file of ours; ignored", path)
            return None
        text = handle.read()
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT or data.get("version") != __version__:
            log.debug("state: %s is from another version; ignored", path)
            return None
        record = Record(**data["record"])
        settings_from_data(record.settings)
        for resource in record.resources:
            resource_from_data(resource)
        return record
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.debug("state: %s is corrupt (%s); ignored", path, exc)
        return None


def save(path: str, record: Record) -> None:
    """Write *record* atomically, 0600, into a directory only we can write; never raises."""
    import tempfile  # only when saving: it pulls shutil, random and the compressors

    directory = os.path.dirname(path)
    try:
        _private_dir(directory)
        fd, tmp = tempfile.mkstemp(prefix=".run-", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump({"format": FORMAT, "version": __version__,
                           "record": dataclasses.asdict(record)}, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as exc:
        log.debug("state: cannot save %s (%s); the next run renders in full", path, exc)


def _private_dir(directory: str) -> None:
    """Create the leaf 0700 if missing; refuse a directory others own or can write."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    _check_private(directory)


def _check_private(directory: str) -> None:
    """Raise unless *directory* is a real directory of ours that no one else can write."""
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise PermissionError(f"{directory} is not a directory only we can write")
