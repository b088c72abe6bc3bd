#!/usr/bin/env bash
# The test suite against the oldest supported urllib3, Jinja2, MarkupSafe and
# PyYAML (tests/floors/constraints.txt), in a fresh venv.
#
#   bash tests/floors/run.sh [extra pytest args]
#
# imdsrender itself is not installed: the suite runs from the source tree
# (PYTHONPATH), so nothing in the repo is written.  Skipped here: tests that
# need Debian's packaging tools (-m tools, .ci/run's job) and the wheel build
# in a fresh venv (it installs the newest dependencies by design).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
venv=${FLOORS_VENV:-$(mktemp -d)/floors}
python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q)

# PyYAML 5.4 and MarkupSafe 1.1.1 build from source: setup.py needs Cython < 3
# (PyYAML) and setuptools, which build isolation would replace by the newest.
"${pip[@]}" "Cython<3" setuptools wheel
"${pip[@]}" --no-build-isolation -c "$here/constraints.txt" \
    urllib3 Jinja2 MarkupSafe PyYAML
"${pip[@]}" -c "$here/constraints.txt" pytest pytest-httpserver hypothesis \
    botocore prometheus-client

"$venv/bin/python" - "$here/constraints.txt" <<'PY'
import sys
from importlib.metadata import version

wanted = {}
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if "==" in line:
        name, _, pinned = line.partition("==")
        wanted[name] = pinned
found = {name: version(name) for name in wanted}
print("floors:", ", ".join(f"{n} {v}" for n, v in found.items()))
wrong = {n: v for n, v in found.items() if v != wanted[n]}
if wrong:
    sys.exit(f"not the floor versions: {wrong}")
PY

cd "$root"
PYTHONPATH="$root" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -m "not tools" --deselect tests/test_cli_run.py::test_demo_in_a_fresh_venv \
    "$@"
