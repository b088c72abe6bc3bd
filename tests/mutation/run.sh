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

# The modules as restructured (package per job): write/, imds/, render/.
W=imdsrender.write
SOURCES[write]="imdsrender/write/sync.py imdsrender/write/files.py imdsrender/write/paths.py
  imdsrender/write/commands.py"
MUTANTS[write]="$W.sync.x_sync__* $W.sync.x__sync_in__* $W.sync.x_retry_reload__*
  $W.sync.x__read_current__* $W.sync.x__target__* $W.sync.x__matches__*
  $W.sync.x${C}_Publish${C}*
  $W.files.x_stage_path__* $W.files.x_stage_pattern__* $W.files.x_cleanup_stale__*
  $W.files.x__remove_stale__* $W.files.x_open_place__* $W.files.x_create_stage__*
  $W.files.x__open_stage__* $W.files.x__write_all__* $W.files.x_discard__*
  $W.files.x__unlink_quietly__* $W.files.x_replace_dest__* $W.files.x_fsync_dir__*
  $W.files.x_sync_directory__* $W.files.x_write_small_file__*
  $W.paths.x_open_directory__* $W.paths.x__trusted_link_target__*
  $W.paths.x_link_is_trusted__* $W.paths.x__make_directory__* $W.paths.x_fsync_fd__*
  $W.commands.x_fill_placeholders__*"
TESTS[write]="tests/write/test_files.py tests/write/test_sync.py tests/write/test_commands.py
  tests/test_write_durability.py tests/test_write_failures.py tests/security/test_dest_paths.py"

T=imdsrender.imds
SOURCES[transport]="imdsrender/imds/client.py imdsrender/imds/token.py imdsrender/imds/policy.py
  imdsrender/imds/deadline.py imdsrender/imds/endpoint.py"
MUTANTS[transport]="$T.client.x${C}ImdsClient${C}* $T.client.x${C}_Retryable${C}*
  $T.token.x${C}TokenManager${C}* $T.token.x_read_token_answer__*
  $T.token.x_usable_token__* $T.token.x_granted_ttl__*
  $T.policy.x${C}RetryPolicy${C}* $T.policy.x_parse_retry_after__*
  $T.policy.x_run_deadline__* $T.policy.x_giving_up_because__*
  $T.deadline.x_* $T.deadline.x${C}*
  $T.endpoint.x_resolve_endpoint__* $T.endpoint.x_locate_endpoint__*
  $T.endpoint.x_metadata_disabled__*"
TESTS[transport]="tests/imds/test_deadline.py tests/imds/test_client.py tests/imds/test_token.py tests/imds/test_policy.py
  tests/imds/test_endpoint.py tests/test_token_lifetime.py tests/test_client_contract.py"

SOURCES[fetch]="imdsrender/fetch.py imdsrender/keys.py"
MUTANTS[fetch]="imdsrender.fetch.x_fetch__* imdsrender.fetch.x${C}_Walk${C}*
  imdsrender.fetch.x${C}Plan${C}* imdsrender.fetch.x${C}Snapshot${C}*
  imdsrender.keys.x_union__* imdsrender.keys.x_parse_listing__*
  imdsrender.keys.x__is_hostile__* imdsrender.keys.x_depth__*"
TESTS[fetch]="tests/test_fetch.py tests/test_fetch_walk_once.py tests/test_fetch_bounds.py
  tests/test_keys_grammar.py tests/security/test_hostile_answers.py"

SOURCES[redaction]="imdsrender/keys.py imdsrender/render/redact.py imdsrender/render/functions.py
  imdsrender/write/diff.py imdsrender/write/commands.py"
MUTANTS[redaction]="imdsrender.keys.x_redact__* imdsrender.keys.x_is_credentials__*
  imdsrender.render.redact.x_* $W.diff.x_diff__* $W.diff.x__hunks__*
  $W.commands.x_describe_failure__* imdsrender.render.functions.x${C}Reader${C}_key__*"
TESTS[redaction]="tests/render/test_redact.py tests/write/test_diff.py tests/write/test_commands.py
  tests/test_write_failures.py tests/render/test_functions.py tests/render/test_errors.py
  tests/security/test_secret_errors.py tests/test_keys_grammar.py
  tests/test_noop_touches_nothing.py"

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
