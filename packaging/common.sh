# Shared by the build-*.sh scripts (sourced, not run).
# Why: every artefact is built from the sdist, so a file missing from
# MANIFEST.in breaks the rpm and deb builds instead of going unnoticed.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian's interpreter carries python3-build (packaging/ci.sh installs it);
# set PYTHON to use another one that has `build`.
PYTHON=${PYTHON:-/usr/bin/python3}

log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# sdist_path DIR: the sdist to build from: $SDIST when set, else a fresh one
# built from the work tree into DIR.
sdist_path() {
    if [ -n "${SDIST:-}" ]; then
        [ -f "$SDIST" ] || die "SDIST=$SDIST does not exist"
        printf '%s\n' "$SDIST"
        return
    fi
    "$PYTHON" -m build --sdist --outdir "$1" "$REPO_ROOT" >&2
    local found=("$1"/imdsrender-*.tar.gz)
    [ "${#found[@]}" -eq 1 ] && [ -f "${found[0]}" ] || die "expected one sdist in $1"
    printf '%s\n' "${found[0]}"
}
