#!/bin/bash
# Packaging and boot-integration checks with the real tools (issue #4).
#
# Installs Debian's tools with apt-get, then proves:
#   - every cloud-config example passes `cloud-init schema -c`, and the
#     imdsrender configuration it writes passes `imdsrender check` and
#     renders (--noop) against the emulator;
#   - python -m build makes an sdist and a wheel; a fresh venv installs the
#     wheel and runs `imdsrender --version` and `imdsrender demo`;
#   - rpmbuild -bb builds the RPM from the sdist; rpm -qlp shows the units
#     and config files; rpmlint has no findings left unexplained;
#   - dpkg-buildpackage -us -uc -b builds the .deb; lintian reports no
#     errors; dpkg -i, `imdsrender --version`, `imdsrender demo`,
#     systemd-analyze verify (no warnings) on the installed units, dpkg -r
#     and dpkg -P leave nothing behind.
#
# Run as root from anywhere: bash packaging/ci.sh
# Env: IMDSRENDER_CI_SKIP_APT=1 skips apt-get (tools already installed);
#      IMDSRENDER_DEB_OUT=dir copies the checked .deb there (the boot test
#      boots that one); KEEP=1 keeps the work directory.
# Exits non-zero on the first failure.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/imdsrender/__init__.py")
UNITS=(imdsrender.service imdsrender-refresh.service imdsrender-refresh.timer
       imdsrender-interval.service)
APT_PACKAGES=(
    systemd rpm rpmlint lintian cloud-init
    dpkg-dev debhelper dh-python pybuild-plugin-pyproject python3-all
    python3-setuptools python3-wheel python3-build python3-venv python3-pip
    python3-jinja2 python3-urllib3 python3-yaml
    golang-go  # tests/gotemplate: migrated templates checked against Go's text/template
)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/imdsrender-ci.XXXXXX")
INSTALLED_DEB=0
START=$SECONDS
STEP_START=$SECONDS

cleanup() {
    local rc=$?
    if [ "$INSTALLED_DEB" = 1 ]; then
        dpkg -P imdsrender >/dev/null 2>&1 || true
    fi
    [ -n "${EMULATOR_PID:-}" ] && kill "$EMULATOR_PID" 2>/dev/null || true
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    if [ "$rc" = 0 ]; then
        echo "packaging/ci.sh: all checks passed in $((SECONDS - START))s"
    else
        echo "packaging/ci.sh: FAILED (exit $rc) after $((SECONDS - START))s" >&2
    fi
}
trap cleanup EXIT

step() {
    echo
    echo "=== [$((SECONDS - START))s] $*"
    STEP_START=$SECONDS
}
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# must_list FILE ENTRY...: every ENTRY is a whole line of FILE.
must_list() {
    local file=$1; shift
    local entry
    for entry in "$@"; do
        grep -qxF -- "$entry" "$file" || fail "$entry missing from $(basename "$file")"
    done
}

# quiet_verify UNIT...: systemd-analyze verify with no output at all.
quiet_verify() {
    local out
    out=$(systemd-analyze verify "$@" 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warned: $out"
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

[ "$(id -u)" = 0 ] || fail "run as root (apt-get, dpkg -i)"
[ -n "$VERSION" ] || fail "cannot read __version__ from imdsrender/__init__.py"
echo "imdsrender $VERSION, work dir $WORK"

# ---------------------------------------------------------------- tools
step "install Debian tools"
if [ "${IMDSRENDER_CI_SKIP_APT:-0}" = 1 ]; then
    echo "skipped (IMDSRENDER_CI_SKIP_APT=1)"
else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$WORK/apt-update.log" 2>&1 || { cat "$WORK/apt-update.log"; fail "apt-get update"; }
    apt-get install -y -q --no-install-recommends "${APT_PACKAGES[@]}" >"$WORK/apt-install.log" 2>&1 \
        || { tail -40 "$WORK/apt-install.log"; fail "apt-get install"; }
    ok "installed ${APT_PACKAGES[*]}"
fi
if dpkg-query -W -f '${Status}' imdsrender 2>/dev/null | grep -q installed; then
    echo "purging an imdsrender package left from an earlier run"
    dpkg -P imdsrender >/dev/null
fi

# ------------------------------------------------------------ cloud-init
step "cloud-init schema -c on every cloud-init example"
examples=("$ROOT"/cloud-init/*.yaml)
[ -f "${examples[0]}" ] || fail "no cloud-init/*.yaml examples"
for example in "${examples[@]}"; do
    [ "$(head -n1 "$example")" = "#cloud-config" ] || fail "$example must start with #cloud-config"
    cloud-init schema -c "$example" || fail "cloud-init schema rejected $example"
done

# The imdsrender part of each example, as a confdir of its own.
/usr/bin/python3 - "$WORK/cloud-confdirs" "${examples[@]}" <<'EOF'
import os, sys, yaml
out = sys.argv[1]
for example in sys.argv[2:]:
    confdir = os.path.join(out, os.path.basename(example))
    for item in yaml.safe_load(open(example)).get("write_files", []):
        if item["path"].startswith("/etc/imdsrender/"):
            path = os.path.join(confdir, item["path"][len("/etc/imdsrender/"):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as handle:
                handle.write(item["content"])
EOF

# ------------------------------------------------------------ sdist+wheel
step "python -m build: sdist and wheel"
bash "$ROOT/packaging/build-wheel.sh" "$WORK/dist" >"$WORK/build-wheel.log" 2>&1 \
    || { tail -40 "$WORK/build-wheel.log"; fail "python -m build"; }
SDIST="$WORK/dist/imdsrender-$VERSION.tar.gz"
WHEEL="$WORK/dist/imdsrender-$VERSION-py3-none-any.whl"
[ -f "$SDIST" ] && [ -f "$WHEEL" ] || fail "expected $(basename "$SDIST") and $(basename "$WHEEL")"
tar -tzf "$SDIST" | sed "s|^imdsrender-$VERSION/||" >"$WORK/sdist.list"
must_list "$WORK/sdist.list" README.md MANIFEST.in etc/imdsrender.yaml \
    systemd/90-imdsrender.preset packaging/rpm/imdsrender.spec \
    packaging/debian/control packaging/debian/rules cloud-init/README.md \
    "${UNITS[@]/#/systemd/}"
grep -q '^examples/conf.d/.*\.yaml$' "$WORK/sdist.list" || fail "sdist has no examples/conf.d"
python3 -m zipfile -l "$WHEEL" | awk 'NR > 1 {print $1}' >"$WORK/wheel.list"
# Every module of the tree, so a package missing from setup.cfg's list fails here.
mapfile -t MODULES < <(cd "$ROOT" && find imdsrender -name '*.py' | sort)
must_list "$WORK/wheel.list" "${MODULES[@]}" "imdsrender-$VERSION.dist-info/entry_points.txt"
grep -q '^imdsrender/examples/conf.d/' "$WORK/wheel.list" || fail "wheel has no examples (demo needs them)"
ok "$(basename "$SDIST") ($(wc -l <"$WORK/sdist.list") entries), $(basename "$WHEEL")"

step "fresh venv: pip install the wheel, imdsrender --version, imdsrender demo"
/usr/bin/python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q "$WHEEL" >"$WORK/venv-install.log" 2>&1 \
    || { cat "$WORK/venv-install.log"; fail "pip install of the wheel"; }
got=$(cd "$WORK" && "$WORK/venv/bin/imdsrender" --version)
[ "$got" = "imdsrender $VERSION" ] || fail "venv: --version said '$got'"
(cd "$WORK" && timeout 120 "$WORK/venv/bin/imdsrender" demo >"$WORK/venv-demo.log" 2>&1) \
    || { cat "$WORK/venv-demo.log"; fail "venv: imdsrender demo"; }
ok "venv: $got; demo rendered $(grep -c '^==> ' "$WORK/venv-demo.log") files"

# ------------------------------------------------------------------- rpm
step "rpmbuild -bb from the sdist"
SDIST="$SDIST" bash "$ROOT/packaging/build-rpm.sh" "$WORK/rpm" >"$WORK/build-rpm.log" 2>&1 \
    || { tail -60 "$WORK/build-rpm.log"; fail "rpmbuild"; }
RPM="$WORK/rpm/imdsrender-$VERSION-1.noarch.rpm"
[ -f "$RPM" ] || fail "no $(basename "$RPM")"
rpm -qlp "$RPM" >"$WORK/rpm.list"
must_list "$WORK/rpm.list" "${UNITS[@]/#//usr/lib/systemd/system/}" \
    /usr/lib/systemd/system-preset/90-imdsrender.preset \
    /etc/imdsrender /etc/imdsrender/conf.d /etc/imdsrender/templates \
    /etc/imdsrender/imdsrender.yaml /usr/bin/imdsrender /usr/share/man/man1/imdsrender.1.gz
rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$RPM" >"$WORK/rpm.flags"
grep -qxE 'cn? /etc/imdsrender/imdsrender.yaml|nc /etc/imdsrender/imdsrender.yaml' "$WORK/rpm.flags" \
    || fail "imdsrender.yaml is not %config(noreplace): $(grep imdsrender.yaml "$WORK/rpm.flags")"
rpm -qp --scripts "$RPM" >"$WORK/rpm.scripts"
grep -q 'preset' "$WORK/rpm.scripts" || fail "%post does not apply the preset"
rpm -qpR "$RPM" >"$WORK/rpm.requires"
for dep in python3-urllib3 python3-jinja2 python3-pyyaml; do
    grep -q "^$dep" "$WORK/rpm.requires" || fail "rpm does not require $dep"
done
grep -E ' /(etc|usr/lib/systemd)/' "$WORK/rpm.flags" || true
ok "$(basename "$RPM"): units, preset and %config(noreplace) settings as expected"

step "rpmlint"
if command -v rpmlint >/dev/null; then
    rpmlint -c "$ROOT/packaging/rpm/rpmlint.toml" "$RPM" "$ROOT/packaging/rpm/imdsrender.spec" \
        || fail "rpmlint reported errors (see packaging/rpm/rpmlint.toml for the explained ones)"
else
    echo "rpmlint is not available: skipped"
fi

# ------------------------------------------------------------------- deb
step "dpkg-buildpackage -us -uc -b"
SDIST="$SDIST" bash "$ROOT/packaging/build-deb.sh" "$WORK/deb" >"$WORK/build-deb.log" 2>&1 \
    || { tail -60 "$WORK/build-deb.log"; fail "dpkg-buildpackage"; }
DEB="$WORK/deb/imdsrender_$VERSION-1_all.deb"
[ -f "$DEB" ] || fail "no $(basename "$DEB")"
[ ! -e "$ROOT/debian" ] || fail "a debian/ directory was left at the repo root"
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\.||; s|/$||' >"$WORK/deb.list"
must_list "$WORK/deb.list" "${UNITS[@]/#//lib/systemd/system/}" \
    /etc/imdsrender/imdsrender.yaml /etc/imdsrender/conf.d /etc/imdsrender/templates \
    /usr/bin/imdsrender /usr/share/man/man1/imdsrender.1.gz
ok "$(basename "$DEB")"
if [ -n "${IMDSRENDER_DEB_OUT:-}" ]; then
    mkdir -p "$IMDSRENDER_DEB_OUT" && cp "$DEB" "$IMDSRENDER_DEB_OUT/"
fi

step "lintian"
lintian --pedantic --display-info "$DEB" 2>&1 | grep -v 'running with root privileges' | tee "$WORK/lintian.log" || true
lintian --fail-on error "$DEB" >/dev/null 2>&1 || fail "lintian reported errors"
ok "lintian: no errors ($(grep -c '^W:' "$WORK/lintian.log" || true) warnings)"

step "dpkg -i, imdsrender --version, imdsrender demo, systemd-analyze verify"
INSTALLED_DEB=1
dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; fail "dpkg -i"; }
got=$(cd / && /usr/bin/imdsrender --version)
[ "$got" = "imdsrender $VERSION" ] || fail "deb: --version said '$got'"
(cd / && timeout 120 /usr/bin/imdsrender demo >"$WORK/deb-demo.log" 2>&1) \
    || { cat "$WORK/deb-demo.log"; fail "deb: imdsrender demo"; }
ok "deb: $got; demo rendered $(grep -c '^==> ' "$WORK/deb-demo.log") files"
installed=("${UNITS[@]/#//lib/systemd/system/}")
quiet_verify "${installed[@]}"
for unit in "${UNITS[@]}"; do
    cmp -s "$ROOT/systemd/$unit" "/lib/systemd/system/$unit" || fail "installed $unit differs from systemd/$unit"
done
ok "systemd-analyze verify: ${UNITS[*]} (no warnings)"
[ -L /etc/systemd/system/multi-user.target.wants/imdsrender.service ] || fail "imdsrender.service not enabled"
[ -L /etc/systemd/system/timers.target.wants/imdsrender-refresh.timer ] || fail "timer not enabled"
[ ! -e /etc/systemd/system/multi-user.target.wants/imdsrender-interval.service ] \
    || fail "imdsrender-interval.service must stay opt-in"
ok "postinst enabled the boot unit and the timer, not the interval service"

step "cloud-init examples: imdsrender check and a --noop render against the emulator"
port=$(free_port)
/usr/bin/imdsrender emulator --port "$port" >"$WORK/emulator.log" 2>&1 &
EMULATOR_PID=$!
for _ in $(seq 50); do
    grep -q listening "$WORK/emulator.log" && break
    sleep 0.1
done
for confdir in "$WORK"/cloud-confdirs/*; do
    name=$(basename "$confdir")
    /usr/bin/imdsrender check --confdir "$confdir" || fail "imdsrender check: cloud-init/$name"
    /usr/bin/imdsrender --onetime --noop --confdir "$confdir" --endpoint "http://127.0.0.1:$port" \
        >"$WORK/noop-$name.log" 2>&1 || { cat "$WORK/noop-$name.log"; fail "--noop render of cloud-init/$name"; }
    ok "cloud-init/$name renders: $(grep -c '^+[^+]' "$WORK/noop-$name.log") lines"
done
kill "$EMULATOR_PID" && wait "$EMULATOR_PID" 2>/dev/null || true
EMULATOR_PID=

step "dpkg -r, then dpkg -P: nothing left behind"
dpkg -r imdsrender >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log"; fail "dpkg -r"; }
status=$(dpkg-query -W -f '${Status}' imdsrender)
[ "$status" = "deinstall ok config-files" ] || fail "after dpkg -r: status '$status'"
for path in /usr/bin/imdsrender /usr/lib/python3/dist-packages/imdsrender \
            /usr/share/doc/imdsrender /usr/share/man/man1/imdsrender.1.gz "${installed[@]}"; do
    [ ! -e "$path" ] || fail "dpkg -r left $path"
done
[ -f /etc/imdsrender/imdsrender.yaml ] || fail "dpkg -r must keep the conffile until purge"
dpkg -P imdsrender >"$WORK/dpkg-p.log" 2>&1 || { cat "$WORK/dpkg-p.log"; fail "dpkg -P"; }
INSTALLED_DEB=0
for path in /etc/imdsrender /etc/systemd/system/multi-user.target.wants/imdsrender.service \
            /etc/systemd/system/timers.target.wants/imdsrender-refresh.timer; do
    [ ! -e "$path" ] && [ ! -L "$path" ] || fail "dpkg -P left $path"
done
ok "dpkg -r removed the program and units (kept the conffile); dpkg -P removed the rest"
