"""Every flag and setting at 0, negative, huge and non-ASCII values: exit 0 or one line exit 2.

Run in-process (the CLI's main() with captured stderr) so the table stays
fast; the end-to-end edges run as subprocesses in test_cli_edges.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from imdsrender.cli import main
from tests.helpers import ConfDir

HUGE = "9" * 5000
EDGES = {"zero": "0", "negative": "-1", "huge": HUGE, "arabic-digit": "\u0663",
         "non-ascii": "\u00e9"}
# YAML spellings of the same edges, plus a huge number and a quoted one
YAML_EDGES = {**{name: f'"{value}"' for name, value in EDGES.items()},
              "int-zero": "0", "int-negative": "-1", "int-huge": HUGE, "float-huge": "1e400"}

ONETIME_FLAGS = ["--timeout", "--boot-wait", "--concurrency", "--imds-cache-ttl",
                 "--metrics-textfile", "--endpoint", "--confdir", "--config", "--data",
                 "--log-level", "--log-format"]
SETTINGS = ["cache_ttl", "concurrency", "imds.endpoint", "imds.endpoint_mode", "imds.token_ttl",
            "imds.timeout", "imds.retries", "imds.boot_wait", "imds.allow_imdsv1"]
RESOURCE_FIELDS = ["mode", "owner", "group", "check_timeout", "reload_timeout", "check_cmd",
                   "reload_cmd", "dest", "src", "keys"]


@pytest.fixture(autouse=True)
def keep_logging() -> Iterator[None]:
    """main() points the root logger at the captured stderr; put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def job(confdir: ConfDir, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Tuple[ConfDir, Path]:
    monkeypatch.chdir(tmp_path)  # relative paths in the values land here
    confdir.resource("a.j2", '{{ getv("/meta-data/instance-id") }}\n')
    fixture = tmp_path / "f.json"
    fixture.write_text('{"/meta-data/instance-id": "i-1"}')
    return confdir, fixture


def run(argv: List[str], capsys: pytest.CaptureFixture) -> Tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refusing a flag
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_ok_or_one_line_exit_2(code: int, stderr: str) -> None:
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert code in (0, 2), stderr
    if code == 2:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("imdsrender: "), stderr
        assert len(lines[0]) < 400, lines[0]  # a 5,000-digit value is not echoed whole


@pytest.mark.parametrize("value", EDGES.values(), ids=EDGES.keys())
@pytest.mark.parametrize("flag", ONETIME_FLAGS)
def test_onetime_flag_edges(job: Tuple[ConfDir, Path], capsys: pytest.CaptureFixture,
                            flag: str, value: str) -> None:
    confdir, fixture = job
    argv = ["--onetime", "--confdir", confdir.path, "--data", str(fixture), f"{flag}={value}"]
    assert_ok_or_one_line_exit_2(*run(argv, capsys))


# Values that would start a server forever ("0" is a free port; "\u0663" is
# a 3-second interval) are left out: they are meaningful, not edges.
@pytest.mark.parametrize("argv", [
    *[["--interval", value] for value in ("0", "-1", HUGE, "\u00e9")],
    *[["--interval", "1h", "--metrics-addr", value] for value in EDGES.values()],
    *[["--onetime", "--metrics-addr", value] for value in EDGES.values()],
    *[["emulator", "--port", value] for value in ("-1", HUGE, "\u0663", "\u00e9")],
    *[["emulator", "--latency-ms", value] for value in ("-1", HUGE, "\u00e9")],
    *[["emulator", "--host", value] for value in EDGES.values()],
    *[["emulator", "--scenario", value] for value in EDGES.values()],
    *[["emulator", "--fault", value] for value in EDGES.values()],
    *[["snapshot", "-o", value + "/x"] for value in EDGES.values()],
    *[["test", value] for value in EDGES.values()],
], ids=lambda argv: " ".join(a[:12] for a in argv))
def test_other_flag_edges(job: Tuple[ConfDir, Path], capsys: pytest.CaptureFixture,
                          argv: List[str]) -> None:
    confdir, fixture = job
    common = [] if argv[0] == "emulator" else ["--confdir", confdir.path, "--data", str(fixture)]
    assert_ok_or_one_line_exit_2(*run([*argv, *common], capsys))


@pytest.mark.parametrize("value", YAML_EDGES.values(), ids=YAML_EDGES.keys())
@pytest.mark.parametrize("setting", SETTINGS)
def test_setting_edges(job: Tuple[ConfDir, Path], capsys: pytest.CaptureFixture,
                       setting: str, value: str) -> None:
    confdir, fixture = job
    section, _, name = setting.rpartition(".")
    text = f"{section}:\n  {name}: {value}\n" if section else f"{name}: {value}\n"
    (confdir.path_obj / "imdsrender.yaml").write_text(text, encoding="utf-8")
    for argv in (["check", "--confdir", confdir.path],
                 ["--onetime", "--confdir", confdir.path, "--data", str(fixture)]):
        assert_ok_or_one_line_exit_2(*run(argv, capsys))


@pytest.mark.parametrize("value", [*YAML_EDGES.values(), f"[{HUGE}]", '["\u00e9"]'],
                         ids=[*YAML_EDGES.keys(), "list-huge", "list-non-ascii"])
@pytest.mark.parametrize("field", RESOURCE_FIELDS)
def test_resource_field_edges(job: Tuple[ConfDir, Path], capsys: pytest.CaptureFixture,
                              field: str, value: str) -> None:
    confdir, _ = job
    dest = "" if field == "dest" else f"  dest: {confdir.dest('b')}\n"
    src = "" if field == "src" else "- src: a.j2\n"
    entry = f"{src}{dest}  {field}: {value}\n"
    if field == "src":
        entry = f"- {entry.lstrip()}"
    (confdir.path_obj / "conf.d" / "b.yaml").write_text(f"templates:\n{entry}",
                                                        encoding="utf-8")
    assert_ok_or_one_line_exit_2(*run(["check", "--confdir", confdir.path], capsys))
