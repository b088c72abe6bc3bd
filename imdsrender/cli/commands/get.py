"""``imdsrender get KEY...``: print values for debugging on an instance.

Text form, unambiguous line by line: a directory (``/`` is the whole tree)
prints ``path<TAB>value`` for each leaf, a leaf key named on the command
line its value; a value that
would not be one plain line (a newline, a tab, a backslash, a leading ``"``)
is printed as a JSON string.  The one exception is a single leaf key, printed
as it is, so ``$(imdsrender get /user-data)`` gets the bytes.  ``--json``
prints one ``{path: value}`` object.  Credentials are ``<redacted>`` unless
``--show-secrets``; a missing key is exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List

from .. import EXIT_FAILED, EXIT_OK
from ..pipeline import bare_job, fetch_snapshot, write_stdout


def run(args: argparse.Namespace) -> int:
    from ...keys import expand_key, is_dir

    expanded = [expand_key(key) for key in args.keys]
    keys = [k for group in expanded for k in group]
    # A leaf named on the command line prints its value alone; from "/" it is a path.
    bare = {group[0] for group in expanded if len(group) == 1 and not is_dir(group[0])}
    snapshot = fetch_snapshot(bare_job(args), keys=keys)
    found: Dict[str, Dict[str, str]] = {}
    code = EXIT_OK
    for key in keys:
        paths = (sorted(p for p in snapshot.values if p.startswith(key)) if is_dir(key)
                 else [key] if key in snapshot.values else [])
        if not paths and not (is_dir(key) and key in snapshot.listings):
            reason = snapshot.errors.get(key, "not found (404)")
            sys.stderr.write(f"imdsrender: {key}: {reason}\n")
            code = EXIT_FAILED
            continue
        found[key] = {p: _shown(p, snapshot.values[p], args.show_secrets) for p in paths}
    if args.json:
        merged = {p: v for values in found.values() for p, v in values.items()}
        print(json.dumps(merged, indent=2, sort_keys=True))
    elif len(keys) == 1 and keys[0] in bare and found:
        write_stdout(found[keys[0]][keys[0]] + "\n")
    else:
        write_stdout("".join(line + "\n" for key, values in found.items()
                             for line in _lines(key, values, key in bare)))
    return code


def _lines(key: str, values: Dict[str, str], bare: bool) -> List[str]:
    if bare and key in values:  # a leaf key named on the command line: its value alone
        return [_one_line(values[key])]
    return [f"{path}\t{_one_line(value)}" for path, value in values.items()]


def _one_line(value: str) -> str:
    """*value* as is when it is one plain line, else as a JSON string."""
    plain = not any(c in value for c in "\n\r\t\\") and not value.startswith('"')
    return value if plain else json.dumps(value)


def _shown(path: str, value: bytes, show_secrets: bool) -> str:
    from ...keys import redact

    text = value.decode("utf-8", "surrogateescape")
    return text if show_secrets else redact(path, text)
