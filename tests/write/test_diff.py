"""write.diff: git-style diffs that keep every byte."""

from __future__ import annotations

import pytest

from imdsrender.write import (
    diff,
)


def test_diff_mode_only_and_identical() -> None:
    assert diff("/d", b"x\n", b"x\n", sensitive=False, old_mode=0o644, new_mode=0o644) == ""
    assert diff("/d", b"x\n", b"x\n", sensitive=True, old_mode=0o644, new_mode=0o600) == \
        "old mode 0644\nnew mode 0600\n--- /d\n+++ /d\n"


def test_diff_keeps_undecodable_bytes() -> None:
    text = diff("/d", b"\xff\n", b"\xfe\n", sensitive=False)
    assert text.encode("utf-8", "surrogateescape") == b"--- /d\n+++ /d\n@@ -1 +1 @@\n-\xff\n+\xfe\n"


def test_diff_splits_on_newline_only() -> None:
    text = diff("/d", b"a\x0cb\n", b"a\x0cc\n", sensitive=False)
    assert text == "--- /d\n+++ /d\n@@ -1 +1 @@\n-a\x0cb\n+a\x0cc\n"


# The whole diff text, exactly, for each kind of change: an operator reads
# these lines in `--noop`, and a sensitive resource must show no content.
@pytest.mark.parametrize("kwargs, expected", [
    (dict(old=None, new=b"x\ny", new_mode=0o600, new_owner="0:0"),
     "new file mode 0600\nnew file owner 0:0\n--- /dev/null\n+++ /etc/a\n"
     "@@ -0,0 +1,2 @@\n+x\n+y\n\\ No newline at end of file\n"),
    (dict(old=None, new=b"x\n", new_owner="-:-"),  # "whatever it gets" is not shown
     "--- /dev/null\n+++ /etc/a\n@@ -0,0 +1 @@\n+x\n"),
    (dict(old=b"x\n", new=b"x\n", old_mode=0o644, new_mode=0o600, old_owner="0:0",
          new_owner="1:2"),
     "old mode 0644\nnew mode 0600\nold owner 0:0\nnew owner 1:2\n--- /etc/a\n+++ /etc/a\n"),
    (dict(old=b"x\n", new=b"x\n", old_mode=0o600, new_mode=0o600, old_owner="0:0",
          new_owner="0:0"), ""),
    (dict(old=b"x\n", new=b"x\n", new_mode=0o640, new_owner="1:1"), ""),  # old unknown
    (dict(old=b"a\nb\n", new=b"a\nc\nd\n", sensitive=True),
     "--- /etc/a\n+++ /etc/a\n"
     "contents differ (2 -> 3 lines), <redacted>: resource uses credentials\n"),
    (dict(old=b"a\n", new=b"a\n", sensitive=True, old_mode=0o644, new_mode=0o640),
     "old mode 0644\nnew mode 0640\n--- /etc/a\n+++ /etc/a\n"),
])
def test_diff_text_per_kind_of_change(kwargs: dict, expected: str) -> None:
    kwargs.setdefault("sensitive", False)
    assert diff("/etc/a", **kwargs) == expected
