"""The directory walk fetches each path once (issue 19, survivor 6).

Under ``public-keys/`` the real service lists ``0=name``; two entries that
differ only in the name (``0=a`` and ``0=b``) both mean the directory
``0/``.  The listing cleaner keeps them apart (they are different lines),
so only the walk itself can stop ``0/`` from being requested twice.
"""

from __future__ import annotations

import collections
import threading
from typing import Dict, List

from imdsrender import fetch
from imdsrender.source import NotFound

PUBLIC_KEYS = "/meta-data/public-keys/"


class Source:
    """Answers from a dict (missing = 404) and counts every request."""

    def __init__(self, answers: Dict[str, bytes]) -> None:
        self.answers = answers
        self.calls: List[str] = []
        self._lock = threading.Lock()

    def get(self, path: str) -> bytes:
        with self._lock:
            self.calls.append(path)
        if path not in self.answers:
            raise NotFound(path, "not found (404)")
        return self.answers[path]


def test_a_child_listed_twice_is_requested_once() -> None:
    source = Source({
        PUBLIC_KEYS: b"0=a\n0=b\n1=c",
        PUBLIC_KEYS + "0/": b"openssh-key",
        PUBLIC_KEYS + "0/openssh-key": b"ssh-ed25519 AAAA a",
        PUBLIC_KEYS + "1/": b"openssh-key\nopenssh-key",
        PUBLIC_KEYS + "1/openssh-key": b"ssh-ed25519 AAAA c",
    })

    snapshot = fetch.fetch(fetch.Plan.of([[PUBLIC_KEYS]]), source, concurrency=4)

    counts = collections.Counter(source.calls)
    assert {path: n for path, n in counts.items() if n > 1} == {}
    assert sorted(counts) == sorted(source.answers)
    assert snapshot.values == {PUBLIC_KEYS + "0/openssh-key": b"ssh-ed25519 AAAA a",
                               PUBLIC_KEYS + "1/openssh-key": b"ssh-ed25519 AAAA c"}
    assert snapshot.errors == {}


def test_two_keys_reaching_one_directory_fetch_it_once() -> None:
    """A directory key and a listing that also names it: still one request each."""
    source = Source({
        PUBLIC_KEYS: b"0=a",
        PUBLIC_KEYS + "0/": b"openssh-key",
        PUBLIC_KEYS + "0/openssh-key": b"k",
        "/meta-data/instance-id": b"i-1",
    })

    fetch.fetch(fetch.Plan.of([[PUBLIC_KEYS], [PUBLIC_KEYS, "/meta-data/instance-id"]]),
                source, concurrency=2)

    assert sorted(source.calls) == sorted(source.answers)
