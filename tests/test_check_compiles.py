"""``imdsrender check`` compiles templates (issue 19, survivor 9).

An unknown filter is only found by compiling the template with the real
Jinja2 environment; parsing the keys out of it does not notice.  So a
check that stopped compiling would say "1 resources OK" for a template that
fails on the first real run.  Tested through the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ConfDir, run_cli

BROKEN = 'id={{ getv("/meta-data/instance-id") | no_such_filter }}\n'


def test_check_fails_on_an_unknown_filter(confdir: ConfDir) -> None:
    confdir.resource("app.conf.j2", BROKEN)

    result = run_cli("check", "--confdir", confdir.path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "resources OK" not in result.stdout
    assert "app.conf.j2" in result.stderr and "no_such_filter" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_onetime_refuses_an_unknown_filter_before_writing(confdir: ConfDir,
                                                          tmp_path: Path) -> None:
    confdir.resource("good.conf.j2", 'id={{ getv("/meta-data/instance-id") }}\n')
    confdir.resource("app.conf.j2", BROKEN)
    data = tmp_path / "fixture.json"
    data.write_text(json.dumps({"/meta-data/instance-id": "i-1"}))

    result = run_cli("--onetime", "--confdir", confdir.path, "--data", str(data))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "no_such_filter" in result.stderr
    assert not confdir.out.exists()  # not even the good resource was written


def test_check_passes_a_good_template(confdir: ConfDir) -> None:
    confdir.resource("app.conf.j2", 'id={{ getv("/meta-data/instance-id") | upper }}\n')

    result = run_cli("check", "--confdir", confdir.path)

    assert result.returncode == 0, result.stderr
    assert "1 resources OK" in result.stdout
