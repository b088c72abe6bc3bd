#!/bin/bash
# Build the sdist and, from it, the wheel (python -m build) into OUTDIR
# (default: dist/ at the top of the repo).
# Usage: packaging/build-wheel.sh [OUTDIR]
. "$(dirname "$0")/common.sh"

out=${1:-$REPO_ROOT/dist}
mkdir -p "$out"
"$PYTHON" -m build --outdir "$out" "$REPO_ROOT"
ls -1 "$out"/imdsrender-*
