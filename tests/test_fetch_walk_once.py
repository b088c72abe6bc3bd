"""The directory walk fetches each path once (issue 19, survivor 6).

Under ``public-keys/`` the real service lists ``0=name``; two entries that
differ only in the name (``0=a`` and ``0=b``) both mean the directory
``0/``.  The listing cleaner keeps them apart (they are different lines),
so only the walk itself can stop ``0/`` from being requested twice.
"""

from __future__ import annotations

import collections
import threading
from typing import Callable, List, Mapping

from imdsrender import fetch
from imdsrender.model import FetchLimits
from imdsrender.source import NotFound

PUBLIC_KEYS = "/meta-data/public-keys/"


class Source:
    """Answers from a dict (bytes, an exception to raise, or missing = 404).

    Counts every request and the most requests in flight at once; *hold*
    is called inside each request (tests use it to block or slow one).
    """

    def __init__(self, answers: Mapping[str, object],
                 hold: Callable[[str], None] = lambda path: None) -> None:
        self.answers = answers
        self.hold = hold
        self.calls: List[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> bytes:
        with self._lock:
            self.calls.append(path)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.hold(path)
            answer = self.answers.get(path)
            if answer is None:
                raise NotFound(path, "not found (404)")
            if isinstance(answer, BaseException):
                raise answer
            assert isinstance(answer, bytes)
            return answer
        finally:
            with self._lock:
                self.in_flight -= 1


def test_a_child_listed_twice_is_requested_once() -> None:
    source = Source({
        PUBLIC_KEYS: b"0=a\n0=b\n1=c",
        PUBLIC_KEYS + "0/": b"openssh-key",
        PUBLIC_KEYS + "0/openssh-key": b"ssh-ed25519 AAAA a",
        PUBLIC_KEYS + "1/": b"openssh-key\nopenssh-key",
        PUBLIC_KEYS + "1/openssh-key": b"ssh-ed25519 AAAA c",
    })

    snapshot = fetch.fetch(fetch.Plan.of([[PUBLIC_KEYS]]), source, FetchLimits(concurrency=4))

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
                source, FetchLimits(concurrency=2))

    assert sorted(source.calls) == sorted(source.answers)
