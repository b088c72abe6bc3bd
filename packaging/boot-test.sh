#!/bin/bash
# Boot test: the .deb booted for real in Debian 12 systemd containers, the
# way an AMI builder would use it (issue #15).
#
# A minbase bookworm rootfs (mmdebstrap) is built once per run and copied per
# scenario; each copy boots with systemd-nspawn --boot --private-network.
# Inside the container, 169.254.169.254/32 sits on the container's own lo
# and the emulator serves the default fixture there on port 80, from a unit
# ordered before network-online.target and the imdsrender units: imdsrender
# runs with NO endpoint override, exactly as on EC2, and no traffic leaves
# the container. A veth pair with both ends inside the container brings
# network-online.target up at once.
#
# Scenarios (a PASS/FAIL line each with its timing, then "N passed, M failed"):
#   1  boot with examples/ as /etc/imdsrender: files, modes, app ordering
#   2  refresh timer: unchanged run changes nothing, a changed value is
#      rewritten and reloaded once, a reboot rewrites nothing
#   2b a failed reload is retried by the next run (pending-reload state)
#   3  IMDS dead at boot: exit 3 within TimeoutStartSec, nothing written
#   4  cloud-init NoCloud seed, each cloud-init/*.yaml (boot-units.yaml with
#      the app enabled in the image and without)
#   5  imdsrender-interval.service: /metrics, /ready, a clean stop
#   6  journal priorities: the error is under journalctl -p err
#
# Run as root: bash packaging/boot-test.sh
# Env: IMDSRENDER_DEB=path  boot that .deb instead of building one;
#      IMDSRENDER_BOOT_ROOTFS=dir  copy that pristine mmdebstrap tree instead
#        of building one (to iterate on this script);
#      IMDSRENDER_CI_SKIP_APT=1  tools already installed;
#      KEEP=1  keep the work directory (containers are stopped anyway).
# Exits non-zero when any scenario failed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
APT_TOOLS=(mmdebstrap systemd-container dpkg-dev iproute2 util-linux)
ROOTFS_PACKAGES=systemd,systemd-sysv,dbus,python3,python3-urllib3,python3-jinja2,python3-yaml,python3-prometheus-client,iproute2,cloud-init
FIXTURE=$ROOT/examples/tests/default/fixture.json
EXPECTED=$ROOT/examples/tests/default/expected
STARTED=$SECONDS
PASSED=0
FAILED=0
NSPAWN_PID=     # the running container's systemd-nspawn, on the host
CPID=           # its systemd (PID 1 inside), on the host
MACHINE=
SCENARIO_START=$SECONDS
REASON=

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/imdsrender-boot.XXXXXX")
BASE=$WORK/base
# nspawn keeps locks and mount propagation dirs here; ours to remove if new.
NSPAWN_RUN=/run/systemd/nspawn
NSPAWN_RUN_WAS_THERE=0
[ -e "$NSPAWN_RUN" ] && NSPAWN_RUN_WAS_THERE=1

cleanup() {
    local rc=$?
    stop_container || true
    [ "$NSPAWN_RUN_WAS_THERE" = 1 ] || rm -rf "$NSPAWN_RUN"
    if [ "${KEEP:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "[$((SECONDS - STARTED))s] $*"; }
die() { echo "boot-test: $*" >&2; exit 1; }

# need MESSAGE CMD...: run CMD; on failure remember MESSAGE and return 1.
need() {
    local message=$1; shift
    "$@" && return 0
    REASON=$message
    return 1
}

# ------------------------------------------------------------------ setup

install_tools() {
    if [ "${IMDSRENDER_CI_SKIP_APT:-0}" = 1 ]; then return; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; die "apt-get update"; }
    apt-get install -y -q --no-install-recommends "${APT_TOOLS[@]}" >>"$WORK/apt.log" 2>&1 \
        || { tail -30 "$WORK/apt.log"; die "apt-get install ${APT_TOOLS[*]}"; }
}

# The .deb: $IMDSRENDER_DEB, else built from this tree by build-deb.sh (the
# same script packaging/ci.sh builds and lints it with).
find_deb() {
    if [ -n "${IMDSRENDER_DEB:-}" ]; then
        [ -f "$IMDSRENDER_DEB" ] || die "IMDSRENDER_DEB=$IMDSRENDER_DEB does not exist"
        DEB=$IMDSRENDER_DEB
        return
    fi
    bash "$ROOT/packaging/build-deb.sh" "$WORK/deb" >"$WORK/build-deb.log" 2>&1 \
        || { tail -40 "$WORK/build-deb.log"; die "build-deb.sh failed (run packaging/ci.sh once for the build tools)"; }
    DEB=$(ls "$WORK"/deb/imdsrender_*_all.deb)
}

# write FILE: stdin into FILE, parents created.
write() { mkdir -p "$(dirname "$1")"; cat >"$1"; }

# app_unit ROOTFS NAME CONF: a stand-in application that refuses to start
# without its rendered CONF and logs every start attempt and reload.
app_unit() {
    local root=$1 name=$2 conf=$3
    write "$root/etc/systemd/system/$name.service" <<EOF
[Unit]
Description=Stand-in application reading $conf (boot test)
[Service]
Type=exec
ExecStartPre=/bin/sh -c 'echo attempt >>/var/lib/$name-events; test -s $conf'
ExecStart=/bin/sleep infinity
ExecReload=/bin/sh -c 'echo reload >>/var/lib/$name-events'
[Install]
WantedBy=multi-user.target
EOF
}

# The shared base: minbase bookworm plus the test's own plumbing (network,
# emulator, stand-in apps). imdsrender itself is installed per scenario.
build_base() {
    if [ -n "${IMDSRENDER_BOOT_ROOTFS:-}" ]; then  # iterating on this script
        cp -a "$IMDSRENDER_BOOT_ROOTFS" "$BASE"
    else
        mmdebstrap --mode=root --variant=minbase --include="$ROOTFS_PACKAGES" \
            bookworm "$BASE" >"$WORK/mmdebstrap.log" 2>&1 \
            || { tail -30 "$WORK/mmdebstrap.log"; die "mmdebstrap"; }
    fi
    # networkd with a veth pair inside the container: network-online at once.
    write "$BASE/etc/systemd/network/10-boottest.netdev" <<'EOF'
[NetDev]
Name=bt0
Kind=veth
[Peer]
Name=bt1
EOF
    local end
    for end in 0 1; do
        write "$BASE/etc/systemd/network/10-bt$end.network" <<EOF
[Match]
Name=bt$end
[Network]
Address=192.0.2.$((end + 1))/30
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
    done
    chroot "$BASE" systemctl enable -q systemd-networkd.service systemd-networkd-wait-online.service
    # The emulator: this tree's code, unpacked from the .deb so it runs even
    # where the package is not installed (the runcmd example installs it).
    mkdir -p "$BASE/opt/imds-emulator"
    dpkg-deb -x "$DEB" "$WORK/deb-tree"
    cp -a "$WORK"/deb-tree/usr/lib/python3/dist-packages/imdsrender "$BASE/opt/imds-emulator/"
    install -D -m 0644 "$FIXTURE" "$BASE/etc/imds-emulator/fixture.json"
    write "$BASE/etc/systemd/system/imds-emulator.service" <<'EOF'
[Unit]
Description=IMDSv2 emulator on 169.254.169.254:80 (boot test)
Before=network-online.target imdsrender.service imdsrender-refresh.service imdsrender-interval.service cloud-final.service
[Service]
Type=exec
Environment=PYTHONPATH=/opt/imds-emulator
ExecStartPre=/sbin/ip address replace 169.254.169.254/32 dev lo
ExecStart=/usr/bin/python3 -m imdsrender emulator --host 169.254.169.254 --port 80 --data /etc/imds-emulator/fixture.json
# Ready once bound: the units ordered after it find it answering.
ExecStartPost=/usr/local/bin/imds-emulator-ready
[Install]
WantedBy=multi-user.target network-online.target
EOF
    write "$BASE/usr/local/bin/imds-emulator-ready" <<'EOF'
#!/usr/bin/python3
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("169.254.169.254", 80), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("emulator not listening on 169.254.169.254:80 after 10 s")
EOF
    chmod 0755 "$BASE/usr/local/bin/imds-emulator-ready"
    chroot "$BASE" systemctl enable -q imds-emulator.service
    # cloud-init: off except in scenario 4; there NoCloud only (never probe
    # EC2's datasource), leaving the network above alone, and without the
    # modules a minbase container cannot run (locales, ssh host keys).
    touch "$BASE/etc/cloud/cloud-init.disabled"
    write "$BASE/etc/cloud/cloud.cfg.d/99-boot-test.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
locale: false
ssh_genkeytypes: []
EOF
    app_unit "$BASE" app /etc/app/instance.conf
    app_unit "$BASE" myapp /etc/myapp/myapp.conf
    cp "$DEB" "$BASE/var/tmp/imdsrender.deb"
}

# new_root NAME [--no-deb]: a fresh copy of the base, with the package
# installed (dpkg -i in a chroot, as an image build does) unless --no-deb.
new_root() {
    local root=$WORK/$1
    cp -a "$BASE" "$root"
    echo "$root" >>"$WORK/roots"
    if [ "${2:-}" != --no-deb ]; then
        chroot "$root" dpkg -i /var/tmp/imdsrender.deb >"$WORK/$1.dpkg.log" 2>&1 \
            || { cat "$WORK/$1.dpkg.log" >&2; return 1; }
    fi
    echo "$root"
}

# examples_confdir ROOT: examples/conf.d and templates as /etc/imdsrender.
examples_confdir() {
    cp "$ROOT"/examples/conf.d/*.yaml "$1/etc/imdsrender/conf.d/"
    cp "$ROOT"/examples/templates/* "$1/etc/imdsrender/templates/"
}

# ------------------------------------------------------------- containers

# boot ROOT NAME: start the container and wait until its boot finished.
boot() {
    local root=$1 name=$2
    MACHINE="imdsr-bt-$$-$name"
    systemd-nspawn -D "$root" --boot --private-network -M "$MACHINE" --register=no \
        --keep-unit --console=read-only </dev/null >>"$WORK/$name.console" 2>&1 &
    NSPAWN_PID=$!
    BOOT_START=$(date +%s%N)
    CPID=
    local _ child state
    # nspawn's child becomes the container's systemd once it has exec'd it,
    # and answers systemctl once its private socket is up.
    for _ in $(seq 300); do
        child=$(pgrep -P "$NSPAWN_PID" || true)
        if [ -n "$child" ] && [[ "$(readlink "/proc/$child/exe" 2>/dev/null)" == */systemd ]] \
            && nsenter -t "$child" -a test -S /run/systemd/private 2>/dev/null; then
            CPID=$child
            break
        fi
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$CPID" ] || { REASON="container's systemd did not come up (see $name.console)"; return 1; }
    # "running" or "degraded": boot is over either way.
    timeout 150 nsenter -t "$CPID" -a systemctl is-system-running --wait >/dev/null 2>&1 || true
    state=$(in_ct systemctl is-system-running 2>/dev/null || true)
    case "$state" in
        running|degraded) return 0 ;;
        *) REASON="boot did not finish: $state"; return 1 ;;
    esac
}

in_ct() { nsenter -t "$CPID" -a -- "$@"; }
prop() { in_ct systemctl show -P "$2" "$1"; }

# stop_container: poweroff through nspawn (SIGTERM), SIGKILL after 20 s, by PID.
stop_container() {
    [ -n "$NSPAWN_PID" ] || return 0
    kill -TERM "$NSPAWN_PID" 2>/dev/null || true
    local _
    for _ in $(seq 100); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$NSPAWN_PID" 2>/dev/null || true
    wait "$NSPAWN_PID" 2>/dev/null || true
    rmdir "$NSPAWN_RUN/propagate/$MACHINE" 2>/dev/null || true
    NSPAWN_PID= CPID=
}

# done_with_roots: stop the container, remove the scenario copies so far
# (a copy is 300+ MB; removing them as we go keeps the peak and the final
# cleanup small).
done_with_roots() {
    stop_container
    [ -f "$WORK/roots" ] || return 0
    xargs -r rm -rf <"$WORK/roots"
    rm -f "$WORK/roots"
}

# reboot_container ROOT NAME: systemctl reboot inside (nspawn exits 133),
# then boot the same tree again.
reboot_container() {
    in_ct systemctl reboot || true
    local rc=0
    wait "$NSPAWN_PID" || rc=$?
    NSPAWN_PID=
    [ "$rc" = 133 ] || { REASON="nspawn exited $rc on reboot, not 133"; return 1; }
    boot "$1" "$2"
}

# stat_of FILE...: inode, mtime and mode of each, for "rewrote nothing".
stat_of() { in_ct stat -c '%n %i %Y.%y %a %U:%G' "$@"; }

# wait_for SECONDS CMD...: poll CMD every 0.2 s.
wait_for() {
    local limit=$1 _; shift
    for _ in $(seq $((limit * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

mono_ms() { echo $(( $1 / 1000 )); }  # µs -> ms

# ---------------------------------------------------------- the scenarios

APP_FILES=(/etc/app/aws-credentials /etc/app/instance.conf /etc/app/interfaces.conf /etc/app/service.env)
declare -A MODES=([aws-credentials]=600 [instance.conf]=644 [interfaces.conf]=644 [service.env]=640)

files_as_expected() {
    local file name
    for file in "${APP_FILES[@]}"; do
        name=$(basename "$file")
        need "$file differs from examples/tests/default/expected" \
            cmp -s "$EXPECTED$file" "$S1_ROOT$file" || return 1
        need "$file: mode $(stat -c %a "$S1_ROOT$file"), expected ${MODES[$name]}" \
            test "$(stat -c %a "$S1_ROOT$file")" = "${MODES[$name]}" || return 1
    done
}

events() { cat "$1/var/lib/$2-events" 2>/dev/null | grep -c "$3" || true; }

scenario_1() {
    S1_ROOT=$(new_root s1) || { REASON="dpkg -i failed"; return 1; }
    examples_confdir "$S1_ROOT"
    install -D -m 0644 "$ROOT/systemd/imdsrender-app-dropin.conf.example" \
        "$S1_ROOT/etc/systemd/system/app.service.d/10-imdsrender.conf"
    chroot "$S1_ROOT" systemctl enable -q app.service
    boot "$S1_ROOT" s1 || return 1
    need "imdsrender.service: $(prop imdsrender.service Result), exit $(prop imdsrender.service ExecMainStatus)" \
        test "$(prop imdsrender.service Result)/$(prop imdsrender.service ExecMainStatus)" = success/0 || return 1
    files_as_expected || return 1
    need "app.service is $(prop app.service ActiveState)" \
        test "$(prop app.service ActiveState)" = active || return 1
    need "app tried to start $(events "$S1_ROOT" app attempt) times (its file was missing)" \
        test "$(events "$S1_ROOT" app attempt)" = 1 || return 1
    local rendered app_start userspace
    rendered=$(prop imdsrender.service ExecMainExitTimestampMonotonic)
    app_start=$(prop app.service ExecMainStartTimestampMonotonic)
    userspace=$(in_ct systemctl show -P UserspaceTimestampMonotonic)
    need "app started before the render ended" test "$app_start" -ge "$rendered" || return 1
    need "/run/imdsrender is not a root-only directory" \
        test "$(in_ct stat -c '%a %U' /run/imdsrender)" = "700 root" || return 1
    need "/var/lib/imdsrender is not a root-only directory" \
        test "$(in_ct stat -c '%a %U' /var/lib/imdsrender)" = "700 root" || return 1
    DETAIL="imdsrender.service exited $(( $(mono_ms "$rendered") - $(mono_ms "$userspace") )) ms after the container's systemd started; 4 files and modes as expected; app started after it, once"
}

scenario_2() {
    [ -n "$CPID" ] || { REASON="needs scenario 1's container"; return 1; }
    need "refresh timer not active" test "$(prop imdsrender-refresh.timer ActiveState)" = active || return 1
    need "refresh timer has no next elapse" \
        test -n "$(prop imdsrender-refresh.timer NextElapseUSecMonotonic)" || return 1
    local before after reloads
    before=$(stat_of "${APP_FILES[@]}")
    reloads=$(events "$S1_ROOT" app reload)
    need "refresh (nothing changed) failed" in_ct systemctl start imdsrender-refresh.service || return 1
    sleep 1  # a --no-block reload would be queued by now
    need "unchanged refresh rewrote a file" test "$(stat_of "${APP_FILES[@]}")" = "$before" || return 1
    need "unchanged refresh reloaded app" test "$(events "$S1_ROOT" app reload)" = "$reloads" || return 1
    # A changed value: the emulator serves another instance type.
    sed -i 's/"t3.micro"/"t3.large"/' "$S1_ROOT/etc/imds-emulator/fixture.json"
    in_ct systemctl restart imds-emulator.service
    need "refresh (changed value) failed" in_ct systemctl start imdsrender-refresh.service || return 1
    need "instance.conf was not rewritten with the new value" \
        grep -qx 'instance_type=t3.large' "$S1_ROOT/etc/app/instance.conf" || return 1
    need "app was not reloaded" wait_for 10 test "$(events "$S1_ROOT" app reload)" = $((reloads + 1)) || return 1
    sleep 1
    need "app reloaded $(( $(events "$S1_ROOT" app reload) - reloads )) times, not once" \
        test "$(events "$S1_ROOT" app reload)" = $((reloads + 1)) || return 1
    after=$(stat_of "${APP_FILES[@]}")
    need "files other than instance.conf were rewritten" \
        test "$(grep -v instance.conf <<<"$after")" = "$(grep -v instance.conf <<<"$before")" || return 1
    reloads=$(events "$S1_ROOT" app reload)
    reboot_container "$S1_ROOT" s1 || return 1
    need "after reboot imdsrender.service: $(prop imdsrender.service Result)" \
        test "$(prop imdsrender.service Result)" = success || return 1
    need "the reboot's render rewrote a file" test "$(stat_of "${APP_FILES[@]}")" = "$after" || return 1
    need "the reboot's render reloaded app" test "$(events "$S1_ROOT" app reload)" = "$reloads" || return 1
    DETAIL="timer scheduled; unchanged refresh: 0 writes, 0 reloads; changed value: 1 file, 1 reload; reboot: 0 writes, 0 reloads"
}

# A reload that fails once must be retried by the next run (state under
# /var/lib/imdsrender). Its own resource, so a failing command is ours.
scenario_2b() {
    [ -n "$CPID" ] || { REASON="needs scenario 1's container"; return 1; }
    write "$S1_ROOT/usr/local/bin/boot-test-reload" <<'EOF'
#!/bin/sh
[ -e /etc/boot-test-reload-fails ] && { echo "reload refused" >&2; exit 1; }
echo reload >>/var/lib/pending-events
EOF
    chmod 0755 "$S1_ROOT/usr/local/bin/boot-test-reload"
    write "$S1_ROOT/etc/imdsrender/templates/pending.conf.j2" <<<'type={{ getv("/meta-data/instance-type") }}'
    write "$S1_ROOT/etc/imdsrender/conf.d/zz-pending.yaml" <<'EOF'
templates:
  - src: pending.conf.j2
    dest: /etc/app/pending.conf
    reload_cmd: /usr/local/bin/boot-test-reload
EOF
    touch "$S1_ROOT/etc/boot-test-reload-fails"
    local rc=0
    in_ct systemctl start imdsrender-refresh.service 2>/dev/null || rc=$?
    need "the run with a failing reload did not fail" test "$rc" != 0 || return 1
    need "pending.conf not written" test -s "$S1_ROOT/etc/app/pending.conf" || return 1
    rm "$S1_ROOT/etc/boot-test-reload-fails"
    in_ct systemctl start imdsrender-refresh.service 2>/dev/null || true
    need "the failed reload was not retried by the next run (needs the writer's pending-reload state)" \
        test "$(events "$S1_ROOT" pending reload)" = 1 || return 1
    DETAIL="failed reload retried once by the next run"
}

shipped_seconds() {  # the unit's TimeoutStartSec and the settings file's boot_wait
    SHIPPED_TIMEOUT=$(sed -n 's/^TimeoutStartSec=\([0-9]*\)s\{0,1\}$/\1/p' "$1/lib/systemd/system/imdsrender.service")
    SHIPPED_WAIT=$(sed -n 's/^ *# *boot_wait: \([0-9]*\)s$/\1/p' "$1/etc/imdsrender/imdsrender.yaml")
}

scenario_3() {
    S3_ROOT=$(new_root s3) || { REASON="dpkg -i failed"; return 1; }
    examples_confdir "$S3_ROOT"
    shipped_seconds "$S3_ROOT"
    need "cannot read the shipped TimeoutStartSec/boot_wait" \
        test -n "$SHIPPED_TIMEOUT" -a -n "$SHIPPED_WAIT" || return 1
    need "shipped TimeoutStartSec=$SHIPPED_TIMEOUT is not at least 2x boot_wait=${SHIPPED_WAIT}s" \
        test "$SHIPPED_TIMEOUT" -ge $((2 * SHIPPED_WAIT)) || return 1
    # The same ratio, scaled down so the test waits seconds, not minutes.
    local wait=5 limit
    limit=$((wait * SHIPPED_TIMEOUT / SHIPPED_WAIT))
    printf 'imds:\n  boot_wait: %ss\n' "$wait" >"$S3_ROOT/etc/imdsrender/imdsrender.yaml"
    write "$S3_ROOT/etc/systemd/system/imdsrender.service.d/50-boot-test.conf" <<EOF
[Service]
TimeoutStartSec=$limit
EOF
    chroot "$S3_ROOT" systemctl disable -q imds-emulator.service
    boot "$S3_ROOT" s3 || return 1
    need "imdsrender.service: $(prop imdsrender.service Result), exit $(prop imdsrender.service ExecMainStatus), not exit 3" \
        test "$(prop imdsrender.service Result)/$(prop imdsrender.service ExecMainStatus)" = exit-code/3 || return 1
    local took
    took=$(( ($(prop imdsrender.service ExecMainExitTimestampMonotonic) - $(prop imdsrender.service ExecMainStartTimestampMonotonic)) / 1000 ))
    need "took ${took} ms, not between boot_wait ${wait}s and TimeoutStartSec ${limit}s" \
        test "$took" -ge $((wait * 1000)) -a "$took" -lt $((limit * 1000)) || return 1
    need "files were written with IMDS dead" test ! -e "$S3_ROOT/etc/app" || return 1
    need "multi-user.target not reached" test "$(prop multi-user.target ActiveState)" = active || return 1
    DETAIL="exit 3 after ${took} ms (boot_wait ${wait}s, TimeoutStartSec ${limit}s = shipped ${SHIPPED_TIMEOUT}s/${SHIPPED_WAIT}s scaled); nothing written; multi-user.target reached"
}

scenario_6() {
    [ -n "$CPID" ] || { REASON="needs scenario 3's container"; return 1; }
    local errors infos
    errors=$(in_ct journalctl -q -b -p err -u imdsrender.service -o cat --no-pager | grep '^imdsrender' || true)
    infos=$(in_ct journalctl -q -b -p info -u imdsrender.service -o cat --no-pager | grep -c '^imdsrender' || true)
    echo "$errors" >"$WORK/s6-errors.log"
    need "no imdsrender line under journalctl -p err" test -n "$errors" || return 1
    need "an INFO/DEBUG line is under -p err" bash -c "! grep -q ': \(INFO\|DEBUG\): ' '$WORK/s6-errors.log'" || return 1
    DETAIL="$(wc -l <<<"$errors") of $infos imdsrender lines at priority err, e.g. '$(head -n1 <<<"$errors" | cut -c1-100)'"
}

# seed ROOT EXAMPLE: a NoCloud seed with EXAMPLE as user-data.
seed() {
    write "$1/var/lib/cloud/seed/nocloud/meta-data" <<<"instance-id: iid-boot-test-$$"
    cp "$2" "$1/var/lib/cloud/seed/nocloud/user-data"
}

# local_repo ROOT: the .deb as the image's only apt source (file: repo).
local_repo() {
    mkdir -p "$1/var/local/imdsrender-repo"
    cp "$DEB" "$1/var/local/imdsrender-repo/"
    (cd "$1/var/local/imdsrender-repo" && dpkg-scanpackages --multiversion . >Packages 2>/dev/null)
    rm -f "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/*
    echo "deb [trusted=yes] file:/var/local/imdsrender-repo ./" >"$1/etc/apt/sources.list.d/local.list"
}

# rendered_dests EXAMPLE: the dest of every resource the example writes.
rendered_dests() {
    /usr/bin/python3 - "$1" <<'EOF'
import sys, yaml
for item in yaml.safe_load(open(sys.argv[1])).get("write_files", []):
    if item["path"].startswith("/etc/imdsrender/conf.d/"):
        for resource in yaml.safe_load(item["content"]).get("templates", []):
            print(resource["dest"])
EOF
}

# cloud_case EXAMPLE NAME [app-enabled|app-disabled]
cloud_case() {
    local example=$1 name=$2 app=${3:-} root dest status
    if grep -q '^packages:' "$example"; then
        root=$(new_root "$name" --no-deb) || return 1
        local_repo "$root"
    else
        root=$(new_root "$name") || { REASON="dpkg -i failed"; return 1; }
    fi
    [ "$app" = app-enabled ] && chroot "$root" systemctl enable -q myapp.service
    rm "$root/etc/cloud/cloud-init.disabled"
    seed "$root" "$example"
    boot "$root" "$name" || return 1
    timeout 180 nsenter -t "$CPID" -a cloud-init status --wait >/dev/null 2>&1 || true
    status=$(in_ct cloud-init status --long 2>&1 || true)
    need "$name: cloud-init $(head -n1 <<<"$status")" grep -qx 'status: done' <<<"$status" || return 1
    need "$name: runcmd did not run" in_ct test -e /var/lib/cloud/instance/scripts/runcmd || return 1
    while read -r dest; do
        need "$name: $dest not rendered" test -s "$root$dest" || return 1
        need "$name: $dest has no instance id" grep -q i-0123456789abcdef0 "$root$dest" || return 1
    done < <(rendered_dests "$example")
    if [ -n "$app" ]; then
        need "$name: myapp is $(prop myapp.service ActiveState)" \
            test "$(prop myapp.service ActiveState)" = active || return 1
        need "$name: myapp tried to start $(events "$root" myapp attempt) times (it started before its file)" \
            test "$(events "$root" myapp attempt)" = 1 || return 1
        need "$name: imdsrender.service: $(prop imdsrender.service Result)" \
            test "$(prop imdsrender.service Result)" = success || return 1
    fi
    stop_container
    CASES+=("$name")
}

scenario_4() {
    local example base
    CASES=()
    for example in "$ROOT"/cloud-init/*.yaml; do
        base=$(basename "$example" .yaml)
        if grep -q 'myapp.service' "$example"; then
            cloud_case "$example" "s4-$base-app-enabled" app-enabled || return 1
            cloud_case "$example" "s4-$base-app-disabled" app-disabled || return 1
        else
            cloud_case "$example" "s4-$base" || return 1
        fi
    done
    DETAIL="cloud-init done, runcmd ran, files rendered: ${CASES[*]}"
}

scenario_5() {
    local root
    root=$(new_root s5) || { REASON="dpkg -i failed"; return 1; }
    examples_confdir "$root"
    chroot "$root" systemctl disable -q imdsrender-refresh.timer
    chroot "$root" systemctl enable -q imdsrender-interval.service
    boot "$root" s5 || return 1
    need "imdsrender-interval.service is $(prop imdsrender-interval.service ActiveState)" \
        test "$(prop imdsrender-interval.service ActiveState)" = active || return 1
    local probe='import sys, urllib.request
for path in sys.argv[1:]:
    with urllib.request.urlopen("http://127.0.0.1:9712" + path, timeout=5) as answer:
        body = answer.read().decode()
        print(path, answer.status, len(body))
        if path == "/metrics" and "confd_backend_request_total" not in body:
            sys.exit("no confd_backend_request_total in /metrics")'
    local answers
    need "/metrics or /ready did not answer 200" \
        wait_for 20 in_ct /usr/bin/python3 -c "$probe" /metrics /ready >/dev/null 2>&1 || return 1
    answers=$(in_ct /usr/bin/python3 -c "$probe" /metrics /ready | tr '\n' ' ')
    local t0=$SECONDS
    in_ct systemctl stop imdsrender-interval.service
    need "stop: Result=$(prop imdsrender-interval.service Result), exit $(prop imdsrender-interval.service ExecMainStatus)" \
        test "$(prop imdsrender-interval.service Result)" = success || return 1
    DETAIL="answers: ${answers}; systemctl stop took $((SECONDS - t0))s, Result=success"
}

# run NAME FUNCTION: one PASS/FAIL line with its timing.
run() {
    local name=$1 fn=$2 start=$SECONDS
    REASON= DETAIL=
    if "$fn"; then
        PASSED=$((PASSED + 1))
        echo "PASS $name ($((SECONDS - start))s): $DETAIL"
    else
        FAILED=$((FAILED + 1))
        echo "FAIL $name ($((SECONDS - start))s): ${REASON:-see the logs}"
        if [ -n "$CPID" ]; then  # what the container's journal says about it
            in_ct journalctl -q -b --no-pager -n 15 -o short-monotonic \
                -u 'imdsrender*' -u app.service -u myapp.service -u cloud-final.service 2>&1 \
                | sed 's/^/    | /' || true
        fi
    fi
}

# ------------------------------------------------------------------- main

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap, systemd-nspawn)"
say "work dir $WORK"
install_tools
find_deb
say "deb: $(basename "$DEB")"
build_base
say "rootfs: $(du -sm "$BASE" | cut -f1) MB, $(chroot "$BASE" dpkg-query -f '.\n' -W | wc -l) packages"

run "1 boot renders examples/ before the app" scenario_1
run "2 refresh timer, changed value, reboot" scenario_2
run "2b failed reload retried" scenario_2b
done_with_roots
run "3 IMDS dead at boot" scenario_3
run "6 journal priorities" scenario_6
done_with_roots
run "4 cloud-init NoCloud examples" scenario_4
done_with_roots
run "5 interval service with metrics" scenario_5
done_with_roots

say "scenarios done; removing the rootfs"
rm -rf "$BASE"
say "removed"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
