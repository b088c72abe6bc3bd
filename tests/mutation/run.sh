#!/usr/bin/env bash
# Mutation testing with mutmut for one area of the code where a silent bug
# costs most.  Not part of CI (too slow for every push); see docs/testing.md.
#
#   bash tests/mutation/run.sh AREA            # AREA: write, transport, fetch, redaction
#   bash tests/mutation/run.sh AREA --list     # show the mutant patterns and tests only
#   MUTATION_JOBS=1 bash tests/mutation/run.sh write
#
# It works on a scratch copy (build/mutation/AREA, git-ignored) so the
# checkout is never written, creates its own venv on first use
# (build/mutation/venv, or $MUTATION_VENV), and prints the score: killed
# mutants / all mutants of the area, then every survivor's name.  Inspect
# one with:  (cd build/mutation/AREA && ../venv/bin/mutmut show NAME)
set -euo pipefail
set -f  # mutant patterns hold '*': never let the shell expand them

# --------------------------------------------------------------------------
# The areas: the ONE place that names source files, functions and tests.
#   SOURCES   files mutmut may mutate (paths from the repository root)
#   MUTANTS   mutmut name patterns (fnmatch) of the functions that matter;
#             a method is module.xǁClassǁmethod, a function module.x_name
#   TESTS     the fast tests for the area (no slow/e2e suites)
# --------------------------------------------------------------------------
declare -A SOURCES MUTANTS TESTS
C="ǁ"

SOURCES[write]="imdsrender/write.py"
MUTANTS[write]="imdsrender.write.x_sync__* imdsrender.write.x__publish__*
  imdsrender.write.x__make_parents__* imdsrender.write.x__create_stage__*
  imdsrender.write.x__open_stage__* imdsrender.write.x__write_all__*
  imdsrender.write.x__discard__* imdsrender.write.x__check__* imdsrender.write.x__run_step__*
  imdsrender.write.x__rename__* imdsrender.write.x__fsync_dir__*
  imdsrender.write.x__sync_directory__* imdsrender.write.x__reload__*
  imdsrender.write.x__read_current__* imdsrender.write.x__target__*
  imdsrender.write.x__matches__* imdsrender.write.x_cleanup_stale__*
  imdsrender.write.x_stage_path__* imdsrender.write.x_stage_pattern__*
  imdsrender.write.x_render_command__*"
TESTS[write]="tests/test_write.py tests/test_write_durability.py tests/test_write_failures.py"

SOURCES[transport]="imdsrender/client.py"
MUTANTS[transport]="imdsrender.client.x${C}TokenManager${C}*
  imdsrender.client.x${C}ImdsClient${C}*
  imdsrender.client.x${C}RetryPolicy${C}*
  imdsrender.client.x_parse_retry_after__* imdsrender.client.x_resolve_endpoint__*
  imdsrender.client.x__usable_token__* imdsrender.client.x__granted_ttl__*"
TESTS[transport]="tests/test_client.py tests/test_token_lifetime.py tests/test_client_contract.py"

SOURCES[fetch]="imdsrender/fetch.py imdsrender/keys.py"
MUTANTS[fetch]="imdsrender.fetch.x_fetch__* imdsrender.fetch.x${C}_Walk${C}*
  imdsrender.fetch.x${C}Plan${C}* imdsrender.fetch.x${C}Snapshot${C}*
  imdsrender.keys.x_union__* imdsrender.keys.x_parse_listing__*
  imdsrender.keys.x__is_hostile__* imdsrender.keys.x_depth__*"
TESTS[fetch]="tests/test_fetch.py tests/test_fetch_walk_once.py tests/test_fetch_bounds.py
  tests/test_keys_grammar.py"

SOURCES[redaction]="imdsrender/keys.py imdsrender/write.py imdsrender/render.py"
MUTANTS[redaction]="imdsrender.keys.x_redact__* imdsrender.keys.x_is_credentials__*
  imdsrender.write.x_diff__* imdsrender.write.x__hunks__* imdsrender.write.x_describe_failure__*
  imdsrender.render.x${C}_Reader${C}_key__*"
TESTS[redaction]="tests/test_write.py tests/test_write_failures.py tests/test_render.py
  tests/test_keys_grammar.py tests/test_noop_touches_nothing.py"

MUTMUT_VERSION="3.8.1"
# --------------------------------------------------------------------------

area=${1:-}
if [[ -z "$area" || -z "${SOURCES[$area]:-}" ]]; then
    echo "usage: $0 AREA [--list]   (AREA: ${!SOURCES[*]})" >&2
    exit 2
fi
if [[ "${2:-}" == "--list" ]]; then
    printf 'sources: %s\nmutants: %s\ntests:   %s\n' "${SOURCES[$area]}" \
        "$(echo ${MUTANTS[$area]})" "$(echo ${TESTS[$area]})"
    exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1
venv=${MUTATION_VENV:-$root/build/mutation/venv}
work=$root/build/mutation/$area

# The venv has mutmut and the project's dependencies but NOT imdsrender:
# the tests must import the mutated copy, never an installed original.
if [[ ! -x "$venv/bin/mutmut" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/python" - "$root/setup.cfg" > "$venv/requirements.txt" <<'PY'
import configparser, sys
cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
lines = cfg["options"]["install_requires"].splitlines()
lines += cfg["options.extras_require"]["test"].splitlines()
print("\n".join(line.strip() for line in lines if line.strip()))
PY
    "$venv/bin/pip" install -q -r "$venv/requirements.txt" "mutmut==$MUTMUT_VERSION"
fi

# A scratch copy with the area's mutmut configuration.  Results of earlier
# runs of the same area are reused by mutmut when the sources are unchanged.
mkdir -p "$work"
rm -rf "$work/imdsrender" "$work/tests"
cp -a "$root/imdsrender" "$root/tests" "$work/"
grep -v '^\[tool.mutmut\]' "$root/pyproject.toml" > "$work/pyproject.toml"
{
    cat "$root/setup.cfg"
    echo
    echo "[mutmut]"
    echo "source_paths = imdsrender"
    echo "only_mutate ="
    for f in ${SOURCES[$area]}; do echo "    $f"; done
    printf 'pytest_add_cli_args =\n    -q\n    -p\n    no:cacheprovider\n    -m\n    not slow\n'
    echo "pytest_add_cli_args_test_selection ="
    for t in ${TESTS[$area]}; do echo "    $t"; done
    echo "use_git_change_detection = false"
} > "$work/setup.cfg"

cd "$work"
# shellcheck disable=SC2086  # the patterns are separate words (set -f: no globbing)
"$venv/bin/mutmut" run --max-children "${MUTATION_JOBS:-2}" ${MUTANTS[$area]} \
    > "$work/mutmut.log" 2>&1 || { tail -40 "$work/mutmut.log"; exit 1; }
"$venv/bin/mutmut" results --all true > "$work/results.txt"
"$venv/bin/python" - "$area" "$work/results.txt" ${MUTANTS[$area]} <<'PY'
import fnmatch, sys
area, results, patterns = sys.argv[1], sys.argv[2], sys.argv[3:]
status = {}
for line in open(results):
    name, _, verdict = line.strip().rpartition(": ")
    if name and any(fnmatch.fnmatch(name, p) for p in patterns):
        status[name] = verdict
killed = sum(v in ("killed", "timeout", "caught by type check") for v in status.values())
total = len(status)
print(f"area {area}: {killed}/{total} mutants killed "
      f"({100.0 * killed / max(total, 1):.1f}%)")
for name, verdict in sorted(status.items()):
    if verdict not in ("killed", "timeout", "caught by type check"):
        print(f"  {verdict}: {name}")
PY
