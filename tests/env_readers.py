"""Readers of env files for the quoting tests: the shells, and systemd's own parser.

The shells on this machine (sh, dash, bash) source the file; systemd's
parser is ``load_env_file()`` followed by ``strv_env_clean_with_callback()``
from libsystemd-shared, the two calls PID 1 makes for ``EnvironmentFile=``
(src/core/execute.c, exec_context_load_environment), loaded with ctypes
because no systemd manager runs here.
"""

from __future__ import annotations

import ctypes
import glob
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional

import pytest

SHELLS = [shell for shell in ("sh", "dash", "bash") if shutil.which(shell)]
LIBSYSTEMD_SHARED = sorted(glob.glob("/usr/lib/*/systemd/libsystemd-shared-*.so")
                           + glob.glob("/usr/lib/systemd/libsystemd-shared-*.so"))

# Hostile tag values (issue 13, item 4), by name: the name is what a test id shows.
HOSTILE: Dict[str, str] = {
    "newline-override": "web\nAPI_ENDPOINT=https://attacker.example",
    "command-substitution": "$(touch MARKER)",
    "backticks": "`touch MARKER`",
    "parameter-expansion": "${HOME:-x}$HOME",
    "single-quotes": "it's 'quoted'",
    "double-quotes": 'say "hi"',
    "backslashes": "a\\b\\\\c\\$d",
    "trailing-backslash": "abc\\",
    "backslash-newline": "a\\\nAPI_ENDPOINT=x",
    "hash": "# not a comment",
    "semicolon": "; echo hi",
    "blanks": "  padded\t ",
    "empty": "",
    "nul": "a\0b",
    "cr": "web\rAPI_ENDPOINT=https://attacker.example",
    "line-separator": "web\u2028API_ENDPOINT=x",
    "paragraph-separator": "web\u2029API_ENDPOINT=x",
    "next-line": "web\x85API_ENDPOINT=x",
    "escape": "\x1b[31mred",
    "unicode": "ünïcödé ✓ 🦀",
    "invalid-utf8": b"caf\xe9".decode("utf-8", "surrogateescape"),
}


def raw(value: str) -> bytes:
    """The bytes a rendered file holds for *value* (render.py's encoding)."""
    return value.encode("utf-8", "surrogateescape")


def hostile(name: str, marker: Path) -> str:
    """HOSTILE[name] with its command aimed at *marker* (a file that must never appear)."""
    return HOSTILE[name].replace("MARKER", str(marker))


# ------------------------------------------------------------------ readers

def source(shell: str, path: Path, name: str = "X") -> Dict[str, bytes]:
    """Source *path* in *shell*; return the value of *name* and every variable it added."""
    script = ('set -a; . "$1"; set +a; printf %s "${' + name + '-<unset>}" > "$2"; '
              'env -0 > "$3"')
    baseline = _env0(shell)
    value_out, env_out = path.with_suffix(".value"), path.with_suffix(".envdump")
    subprocess.run([shell, "-c", script, shell, str(path), str(value_out), str(env_out)],
                   check=True, timeout=30, env={"PATH": os.environ["PATH"]})
    added = {k: v for k, v in _split_env(env_out.read_bytes()).items()
             if k not in baseline and k != name.encode()}
    return {"value": value_out.read_bytes(), **{f"+{k.decode()}": v for k, v in added.items()}}


@cache
def _env0(shell: str) -> Dict[bytes, bytes]:
    """What *shell* exports after sourcing an empty file."""
    out = subprocess.run([shell, "-c", "set -a; . /dev/null; env -0"],
                         check=True, capture_output=True, timeout=30,
                         env={"PATH": os.environ["PATH"]}).stdout
    return _split_env(out)


def _split_env(dump: bytes) -> Dict[bytes, bytes]:
    pairs = (entry.split(b"=", 1) for entry in dump.split(b"\0") if entry)
    return {key: value for key, value in pairs if key not in (b"_", b"SHLVL", b"PWD")}


def systemd_env(path: Path) -> Optional[List[bytes]]:
    """systemd's EnvironmentFile= reading of *path*: ``KEY=value`` entries, None if refused."""
    lib = ctypes.CDLL(LIBSYSTEMD_SHARED[-1])
    strv = ctypes.POINTER(ctypes.c_char_p)
    lib.load_env_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(strv)]
    lib.strv_env_clean_with_callback.argtypes = [strv, ctypes.c_void_p, ctypes.c_void_p]
    lib.strv_env_clean_with_callback.restype = strv
    entries = strv()
    if lib.load_env_file(None, os.fsencode(path), ctypes.byref(entries)) < 0:
        return None
    entries = lib.strv_env_clean_with_callback(entries, None, None)
    result: List[bytes] = []
    while entries and entries[len(result)] is not None:
        result.append(entries[len(result)])
    return result


needs_systemd = pytest.mark.skipif(not LIBSYSTEMD_SHARED,
                                   reason="systemd's libsystemd-shared is not installed")

