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

debian=()
if ! rpm -q rpm >/dev/null 2>&1; then
    # Not an RPM-based system (Debian's rpm): BuildRequires cannot be
    # checked, and Debian's brp-compress says #!/bin/sh but needs bash.
    log "no rpm database: building with --nodeps, brp-compress under bash"
    debian=(--nodeps --define "__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{?_prefix}")
fi
rpmbuild -bb "${debian[@]}" --define "_topdir $top" "$top/SPECS/imdsrender.spec"
cp "$top"/RPMS/noarch/imdsrender-*.noarch.rpm "$out/"
ls -1 "$out"/imdsrender-*.noarch.rpm
