"""``imdsrender get KEY...``: print values for debugging on an instance."""

from __future__ import annotations

import argparse
import sys

from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import bare_job, fetch_snapshot


def run(args: argparse.Namespace) -> int:
    """Directories list their leaves (``path<TAB>value``); a missing key is exit 1."""
    from ...keys import is_dir, normalize_key

    keys = [normalize_key(k) for k in args.keys]
    snapshot = fetch_snapshot(bare_job(args), keys=keys)
    code = EXIT_OK
    for key in keys:
        if is_dir(key):
            leaves = sorted(p for p in snapshot.values if p.startswith(key))
            lines = [f"{p}\t{_shown(p, snapshot.values[p], args.show_secrets)}" for p in leaves]
        elif key in snapshot.values:
            lines = [_shown(key, snapshot.values[key], args.show_secrets)]
        else:
            reason = snapshot.errors.get(key, "not found (404)")
            sys.stderr.write(f"imdsrender: {key}: {reason}\n")
            code = EXIT_FAILED
            continue
        print("\n".join(lines))
    return code


def _shown(path: str, value: bytes, show_secrets: bool) -> str:
    from ...keys import redact

    text = value.decode("utf-8", "surrogateescape")
    return text if show_secrets else redact(path, text)
