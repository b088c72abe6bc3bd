"""Keep credentials values out of error messages.

A template that misuses a secret (``{{ d[creds.SecretAccessKey] }}``) makes
Jinja or Python raise an error whose text embeds the value, and that text
would go to the log (text and JSON), the journal and log shippers.  The
rule, applied by :func:`imdsrender.render.render` once a render has read a
credentials path (before that, no value of the render can derive from one):

- a message we wrote ourselves (a template function's Problem) keeps its
  meaning, with every run of 8 or more characters that also occurs in a
  credentials value (case-insensitively; whole values when shorter) replaced
  by ``<redacted>``;
- any other exception text (Jinja's, Python's) is withheld entirely, since
  it may hold the value transformed (sliced, upper-cased, repr'd); only its
  kind and the template line are kept.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, Iterator, List, Set

REDACTED = "<redacted>"
GRAM = 8  # a shared run this long is treated as part of a secret
SHORTEST = 4  # values shorter than this ("0", "ok") are not secrets worth hiding


def secret_strings(raw: str) -> Iterator[str]:
    """*raw* itself and, when it is JSON, every string or number field inside it.

    A field may appear JSON-escaped in *raw* (``\\/``) but plain in a
    message, so each is listed on its own.
    """
    yield raw
    try:
        doc = json.loads(raw)
    except ValueError:
        return
    yield from _leaves(doc)


def _leaves(doc: Any) -> Iterator[str]:
    if isinstance(doc, dict):
        for value in doc.values():
            yield from _leaves(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from _leaves(value)
    elif isinstance(doc, (str, int, float)) and not isinstance(doc, bool):
        yield str(doc)


def redact(text: str, secrets: Iterable[str]) -> str:
    """*text* with every stretch shared with a secret replaced by ``<redacted>``."""
    if not text:
        return text
    lowered = text.lower()
    hidden = [False] * len(text)
    for size, grams in _grams(secrets).items():
        for start in range(len(text) - size + 1):
            if lowered[start:start + size] in grams:
                hidden[start:start + size] = [True] * size
    return _replace_runs(text, hidden)


def _grams(secrets: Iterable[str]) -> Dict[int, Set[str]]:
    """Lower-cased substrings to look for, grouped by length."""
    by_size: Dict[int, Set[str]] = {}
    for secret in secrets:
        size = min(GRAM, len(secret))
        if size < SHORTEST:
            continue
        lowered = secret.lower()
        grams: Set[str] = by_size.setdefault(size, set())
        grams.update(lowered[i:i + size] for i in range(len(lowered) - size + 1))
    return by_size


def _replace_runs(text: str, hidden: List[bool]) -> str:
    out: List[str] = []
    for index, char in enumerate(text):
        if not hidden[index]:
            out.append(char)
        elif index == 0 or not hidden[index - 1]:
            out.append(REDACTED)
    return "".join(out)
