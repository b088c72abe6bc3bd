"""What would change: a git-style unified diff of a destination, redacted when sensitive."""

from __future__ import annotations

import difflib
from typing import List, Optional

from ..keys import REDACTED


def owner_text(uid: Optional[int], gid: Optional[int]) -> str:
    """``uid:gid`` as the diff and messages show it; ``-`` for "whatever it gets"."""
    return f"{'-' if uid is None else uid}:{'-' if gid is None else gid}"


def _lines(text: str) -> List[str]:
    """Split on ``\\n`` only (str.splitlines also splits on \\f, \\x1c, U+2028...)."""
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """*text* with undecodable bytes as ``\\xNN``, safe for any log stream."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def diff(dest: str, old: Optional[bytes], new: bytes, *, sensitive: bool,
         old_mode: Optional[int] = None, new_mode: Optional[int] = None,
         old_owner: Optional[str] = None, new_owner: Optional[str] = None) -> str:
    """Unified diff of the file at *dest* (``old``; None = absent) against ``new``.

    Git-style metadata lines (``old mode 0644`` / ``new mode 0600``, the same
    for ``owner`` as ``uid:gid``) come first, then ``---``/``+++`` headers
    naming *dest*, then the hunks.  When *sensitive* the hunks are replaced
    by one line counting the lines.  Text is decoded with surrogateescape,
    so binary content survives: write it out with the same error handler
    (or pass it through :func:`printable`).  Returns "" when nothing differs.
    """
    meta: List[str] = []
    if old is None:
        if new_mode is not None:
            meta.append(f"new file mode {new_mode:04o}\n")
        if new_owner is not None and new_owner != owner_text(None, None):
            meta.append(f"new file owner {new_owner}\n")
    elif old_mode is not None and new_mode is not None and old_mode != new_mode:
        meta += [f"old mode {old_mode:04o}\n", f"new mode {new_mode:04o}\n"]
    if old is not None and old_owner is not None and new_owner is not None \
            and old_owner != new_owner:
        meta += [f"old owner {old_owner}\n", f"new owner {new_owner}\n"]
    if old is not None and old == new and not meta:
        return ""
    head = [f"--- {dest if old is not None else '/dev/null'}\n", f"+++ {dest}\n"]
    return "".join(meta + head + _hunks(old or b"", new, sensitive=sensitive))


def _hunks(old: bytes, new: bytes, *, sensitive: bool) -> List[str]:
    if old == new:
        return []
    a, b = _lines(_decode(old)), _lines(_decode(new))
    if sensitive:
        return [f"contents differ ({len(a)} -> {len(b)} lines), {REDACTED}: "
                "resource uses credentials\n"]
    out = []
    for line in list(difflib.unified_diff(a, b))[2:]:  # our own headers replace difflib's
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return out
