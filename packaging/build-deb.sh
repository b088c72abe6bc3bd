#!/bin/bash
# Build the .deb with dpkg-buildpackage -us -uc -b in a temp copy of the
# sdist's tree with packaging/debian copied to ./debian (no debian/ dir is
# ever created in the repo).
# Usage: [SDIST=path.tar.gz] packaging/build-deb.sh [OUTDIR]   (default dist/)
. "$(dirname "$0")/common.sh"

out=${1:-$REPO_ROOT/dist}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/imdsrender-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT

sdist=$(sdist_path "$work")
tar -xzf "$sdist" -C "$work"
src="$work/$(basename "$sdist" .tar.gz)"
[ -d "$src/packaging/debian" ] || die "$sdist has no packaging/debian (MANIFEST.in?)"
cp -r "$src/packaging/debian" "$src/debian"
# pybuild calls python3.X from PATH: a Debian package must be built with
# Debian's interpreter, not a pyenv/venv one that happens to come first.
(cd "$src" && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b)
cp "$work"/imdsrender_*_all.deb "$out/"
ls -1 "$out"/imdsrender_*_all.deb
