"""metrics.textfile: atomic, parseable, failures logged not raised."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from imdsrender.metrics import (
    Metrics,
    MetricsError,
    write_textfile,
)
from imdsrender.model import Outcome
from tests.helpers import metric, parse_metrics
from tests.metrics.helpers import SECRET_PATH

# --- textfile ---------------------------------------------------------------------

def test_textfile_is_written_atomically_and_parses_back(tmp_path) -> None:
    path = tmp_path / "imdsrender.prom"
    path.write_text("old\n")
    metrics = Metrics(textfile=str(path))
    metrics.request("get", SECRET_PATH, 200, 0.01)
    metrics.run_finished([Outcome("/etc/a", "written")], 0.3)
    got = parse_metrics(path.read_text())
    assert metric(got, "confd_backend_request_total", operation="get", category="meta-data",
                  code="200") == 1
    assert metric(got, "imdsrender_resource_status", dest="/etc/a", status="written") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["imdsrender.prom"]
    assert path.read_bytes() == metrics.exposition()


def test_textfile_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch) -> None:
    path = tmp_path / "imdsrender.prom"
    path.write_text("old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(MetricsError) as caught:
        write_textfile(str(path), Metrics())
    assert str(caught.value).startswith("--metrics-textfile: writing ")
    assert path.read_text() == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["imdsrender.prom"]


def test_textfile_error_in_run_finished_is_logged_not_raised(tmp_path, caplog) -> None:
    metrics = Metrics(textfile=str(tmp_path / "gone" / "x.prom"))
    metrics.run_finished([], 0.1)
    assert "--metrics-textfile: writing" in caplog.text
    assert "gone" in caplog.text
