"""write.diff: git-style diffs that keep every byte."""

from __future__ import annotations

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
