#!/bin/bash
# Build the noarch RPM with rpmbuild -bb from the sdist, using the spec
# inside that sdist. Works on Fedora/RHEL and with Debian's rpm (where
# BuildRequires cannot be checked, so --nodeps is added).
# Usage: [SDIST=path.tar.gz] packaging/build-rpm.sh [OUTDIR]   (default dist/)
. "$(dirname "$0")/common.sh"

out=${1:-$REPO_ROOT/dist}
mkdir -p "$out"
top=$(mktemp -d "${TMPDIR:-/tmp}/imdsrender-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}

sdist=$(sdist_path "$top/SOURCES")
cp -n "$sdist" "$top/SOURCES/" 2>/dev/null || true
base=$(basename "$sdist" .tar.gz)
tar -xzOf "$sdist" "$base/packaging/rpm/imdsrender.spec" > "$top/SPECS/imdsrender.spec" \
    || die "$sdist has no packaging/rpm/imdsrender.spec (MANIFEST.in?)"

nodeps=()
if ! rpm -q rpm >/dev/null 2>&1; then
    log "no rpm database (not an RPM-based system): building with --nodeps"
    nodeps=(--nodeps)
fi
rpmbuild -bb "${nodeps[@]}" --define "_topdir $top" "$top/SPECS/imdsrender.spec"
cp "$top"/RPMS/noarch/imdsrender-*.noarch.rpm "$out/"
ls -1 "$out"/imdsrender-*.noarch.rpm
