"""journald priority prefixes: only when stderr is the stream systemd named.

The end-to-end proof (``journalctl -p err`` shows the error) is scenario 6
of packaging/boot-test.sh; these pin the pure parts and the CLI hook.
"""

import io
import logging
import os
import subprocess
import sys

import pytest

from imdsrender.cli import journal


def stream_id(path):
    info = os.stat(path)
    return f"{info.st_dev}:{info.st_ino}"


@pytest.mark.parametrize("level, expected", [
    (logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4),
    (logging.INFO, 6), (logging.DEBUG, 7), (logging.ERROR + 5, 3), (logging.INFO - 1, 7),
])
def test_priority_per_level(level, expected):
    assert journal.priority(level) == expected


def test_every_line_of_a_multiline_record_is_prefixed():
    text = logging.Formatter("imdsrender: %(levelname)s: %(message)s")
    formatter = journal.PriorityFormatter(text)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "one\ntwo", None, None)
    assert formatter.format(record) == "<3>imdsrender: ERROR: one\n<3>two"


def test_attached_only_to_the_named_stream(tmp_path):
    named, other = tmp_path / "named", tmp_path / "other"
    with open(named, "w") as stream, open(other, "w") as unrelated:
        env = {"JOURNAL_STREAM": stream_id(named)}
        assert journal.attached(stream, env)
        assert not journal.attached(unrelated, env)  # inherited by a child writing elsewhere
        assert not journal.attached(stream, {})
        for bad in ("", "1", "x:y", f"{stream_id(named)}:9", ":"):
            assert not journal.attached(stream, {"JOURNAL_STREAM": bad}), bad
    assert not journal.attached(io.StringIO(), env)  # no descriptor at all


def test_error_stream_prefixes_lines_not_already_prefixed():
    out = io.StringIO()
    stream = journal.ErrorStream(out)
    stream.write("imdsrender: imds: no answer")
    stream.write("; exit 3\n<4>imdsrender: WARNING: kept\nlast\n")
    assert out.getvalue() == ("<3>imdsrender: imds: no answer; exit 3\n"
                              "<4>imdsrender: WARNING: kept\n<3>last\n")


def test_install_outside_the_journal_changes_nothing(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    handler = logging.StreamHandler(io.StringIO())
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    before = sys.stderr
    assert journal.install(handler) is False
    assert handler.formatter is formatter and sys.stderr is before


CHILD = """
import sys
from imdsrender.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_cli(tmp_path, journal_stream, *argv):
    """The real CLI in a child whose stderr is a file, JOURNAL_STREAM as given."""
    err = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    with open(err, "w") as handle:
        if journal_stream == "match":
            env["JOURNAL_STREAM"] = stream_id(err)
        elif journal_stream:
            env["JOURNAL_STREAM"] = journal_stream
        proc = subprocess.run([sys.executable, "-c", CHILD, *argv], stderr=handle,
                              stdout=subprocess.PIPE, env=env, cwd=tmp_path, timeout=60)
    return proc.returncode, err.read_text()


def broken_confdir(tmp_path):
    confdir = tmp_path / "conf"
    (confdir / "conf.d").mkdir(parents=True)
    (confdir / "templates").mkdir()
    (confdir / "conf.d" / "a.yaml").write_text("templates:\n  - src: missing.j2\n    dest: /x\n")
    return confdir


def test_cli_errors_carry_err_priority_under_the_journal(tmp_path):
    confdir = broken_confdir(tmp_path)
    code, err = run_cli(tmp_path, "match", "check", "--confdir", str(confdir))
    assert code == 2 and err.strip()
    assert all(line.startswith("<3>imdsrender: ") for line in err.splitlines()), err


def test_cli_text_unchanged_when_journal_stream_names_another_stream(tmp_path):
    confdir = broken_confdir(tmp_path)
    code, err = run_cli(tmp_path, "1:2", "check", "--confdir", str(confdir))
    assert code == 2 and err.startswith("imdsrender: ") and "<3>" not in err, err
