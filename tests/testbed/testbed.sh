#!/usr/bin/env bash
# vigil's test-bed: a real systemd host in a container (systemd-nspawn booting a cached minimal
# Debian bookworm root), with its own network namespace, so tests can run vigil as the
# installed, sandboxed service against real systemd, journald and ufw without touching the host.
#
#   testbed.sh build                 build (or reuse) the cached root file system; prints its path
#   testbed.sh up NAME [BIND...]     boot container NAME (BIND: HOSTDIR:/path, read-only)
#   testbed.sh exec NAME CMD...      run CMD inside NAME (as root, clean environment)
#   testbed.sh peer NAME PEER HOSTIP/24 CONTAINERIP/24
#                                    wire a network namespace "NAME-PEER" to the container with a
#                                    veth pair (another host: an attacker, a central server)
#   testbed.sh down NAME             power off and remove NAME and its peers
#   testbed.sh netfilter             print the host's netfilter state (to compare before/after)
#
# Sourced (`source testbed.sh`), it defines the same as functions: testbed_build, testbed_up, ...
# State lives in /run/vigil-testbed/NAME/. The root file system is cached in
# ${VIGIL_TESTBED_CACHE:-/var/cache/vigil-testbed}/<hash of the package list>/ and never written
# to: every boot runs on a throw-away overlay (--volatile=overlay).
set -euo pipefail

TESTBED_CACHE=${VIGIL_TESTBED_CACHE:-/var/cache/vigil-testbed}
TESTBED_RUN=/run/vigil-testbed
# Everything vigil's .deb, its tests and the sample app need at run time: the container has no
# network, so nothing can be fetched later. openssh-server and libpam-systemd (so that logind
# registers the login as a session): case_mitigate_ssh_session logs in over SSH for real.
# prometheus-alertmanager: not run in the container (its unit is masked below) but from the
# cached root on the host, in the paging tests' "central" namespace (tests/testbed/central.sh):
# installing it on the host would enable a host service. Its binaries need only libc.
TESTBED_PACKAGES=usr-is-merged,systemd,systemd-sysv,dbus,ufw,iptables,curl,libcurl4,iproute2,ca-certificates,procps,kmod,libtomlplusplus3,libre2-9,libstdc++6,libgcc-s1,less,openssh-server,libpam-systemd,prometheus-alertmanager
TESTBED_HOST_PACKAGES=(systemd-container mmdebstrap iproute2 iptables util-linux)

testbed_log() { printf 'testbed: %s\n' "$*" >&2; }

testbed_install_host_packages() {
  local missing=() p
  for p in "${TESTBED_HOST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  testbed_log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: otherwise libnss-mymachines is added to the host's nsswitch.conf.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

testbed_rootfs_dir() {
  local key
  key=$(printf '%s\nv2\n' "$TESTBED_PACKAGES" | sha256sum | cut -c1-16)
  echo "$TESTBED_CACHE/$key/rootfs"
}

testbed_build() {
  testbed_install_host_packages
  local rootfs
  rootfs=$(testbed_rootfs_dir)
  if [[ -f "$rootfs/.vigil-testbed-ready" ]]; then
    echo "$rootfs"
    return 0
  fi
  mkdir -p "$(dirname "$rootfs")"
  (
    flock 9
    [[ -f "$rootfs/.vigil-testbed-ready" ]] && exit 0
    local tmp="$rootfs.tmp.$$"
    rm -rf "$tmp"
    testbed_log "building the root file system (once; cached in $(dirname "$rootfs"))"
    # The host's own apt sources, so the container gets the same package versions as the host
    # that built vigil (same libc6, libsystemd0, libcurl4).
    local sources=()
    if [[ -s /etc/apt/sources.list.d/debian.sources ]]; then
      sources=(/etc/apt/sources.list.d/debian.sources)
    elif [[ -s /etc/apt/sources.list ]] && grep -q '^deb ' /etc/apt/sources.list; then
      sources=(/etc/apt/sources.list)
    fi
    mmdebstrap --quiet --variant=minbase \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --include="$TESTBED_PACKAGES" bookworm "$tmp" "${sources[@]}" >&2
    echo "0123456789abcdef0123456789abcdef" >"$tmp/etc/machine-id"
    echo testbed >"$tmp/etc/hostname"
    printf '127.0.0.1 localhost testbed\n::1 localhost ip6-localhost\n' >"$tmp/etc/hosts"
    : >"$tmp/etc/resolv.conf"
    local unit
    for unit in console-getty.service getty@.service apt-daily.timer apt-daily-upgrade.timer \
      e2scrub_all.timer dpkg-db-backup.timer fstrim.timer systemd-networkd-wait-online.service \
      prometheus-alertmanager.service; do
      ln -sf /dev/null "$tmp/etc/systemd/system/$unit"
    done
    # Its postinst enabled it; masked above, it must not be wanted either (no "masked" noise).
    rm -f "$tmp/etc/systemd/system/multi-user.target.wants/prometheus-alertmanager.service"
    mkdir -p "$tmp/var/log/journal"
    touch "$tmp/.vigil-testbed-ready"
    mv "$tmp" "$rootfs"
  ) 9>"$(dirname "$rootfs")/.lock"
  echo "$rootfs"
}

testbed_leader() { cat "$TESTBED_RUN/$1/leader"; }

# Logs LINE (any bytes) in machine NAME as sshd's root monitor process does: through the
# stdout of fake-sshd.service, a root service standing in for ssh.service, so journald itself
# records _SYSTEMD_UNIT=fake-sshd.service and _UID=0, fields no other process can claim
# (issue 13). The service copies a FIFO (0600, root's) to its stdout; each line is written to it.
testbed_sshd_line() {
  if ! testbed_exec "$1" systemctl is-active --quiet fake-sshd; then
    testbed_exec "$1" sh -c 'rm -f /run/fake-sshd.fifo && mkfifo -m 600 /run/fake-sshd.fifo'
    testbed_exec "$1" systemd-run --quiet --unit=fake-sshd -p SyslogIdentifier=sshd \
      sh -c 'exec 3<>/run/fake-sshd.fifo; exec cat <&3'
  fi
  printf '%s\n' "$2" | testbed_exec "$1" sh -c 'cat > /run/fake-sshd.fifo'
}
# What any local account can do in machine NAME: log LINE as "sshd" (SYSLOG_IDENTIFIER), here
# from a service running as www-data (uid 33).
testbed_forged_sshd_line() {
  printf '%s\n' "$2" | testbed_exec "$1" sh -c 'cat > /run/vigil-e2e-line && chmod 644 /run/vigil-e2e-line'
  testbed_exec "$1" systemd-run --quiet --wait --collect -p User=www-data \
    systemd-cat -t sshd cat /run/vigil-e2e-line
}

# The fleet scene (docs/FLEET.md) in container NAME, shared by the demo and the e2e case: etcd
# (Debian's etcd-server, bind-mounted at /opt/etcd) on 127.0.0.1:2379, a dependency (the sample
# app) on 127.0.0.1:DEP_PORT, and three more vigil processes, hosts a, b and c, each with its own
# state, config (/etc/vigil/fleet-HOST.toml) and control socket (/run/vigil-fleet-HOST.sock),
# watching the dependency with a rollback of /srv/fleet-HOST (current -> releases/A) capped at
# fleet_max = 1 in fleet FLEET. The agents start once etcd and the dependency answer (else it
# fails); it returns without waiting for the agents.
# Usage: testbed_fleet_up NAME FLEET DEP_PORT
testbed_fleet_up() {
  local name=$1 fleet=$2 port=$3 host url i
  testbed_exec "$name" systemd-run --quiet --unit=etcd /opt/etcd/etcd --name "$fleet" \
    --data-dir "/var/lib/etcd-$fleet" --listen-client-urls http://127.0.0.1:2379 \
    --advertise-client-urls http://127.0.0.1:2379
  testbed_exec "$name" systemd-run --quiet --unit=shared-dep /opt/vigil-test/vigil-sample-app \
    --port "$port"
  for url in http://127.0.0.1:2379/health "http://127.0.0.1:$port/health"; do
    for i in $(seq 100); do
      testbed_exec "$name" curl -fsS -o /dev/null "$url" 2>/dev/null && break
      ((i < 100)) || {
        testbed_log "$name: $url did not answer"
        return 1
      }
      sleep 0.2
    done
  done
  local n=0
  for host in a b c; do
    n=$((n + 1))
    testbed_exec "$name" mkdir -p "/srv/fleet-$host/releases/A" "/srv/fleet-$host/releases/B"
    testbed_exec "$name" ln -sfn releases/A "/srv/fleet-$host/current"
    testbed_exec "$name" sh -c "cat > /etc/vigil/fleet-$host.toml" <<TOML
[agent]
hostname = "$host"
state_dir = "/var/lib/vigil-fleet-$host"
control_socket = "/run/vigil-fleet-$host.sock"
metrics = "127.0.0.1:972$n"  # a: 9721, b: 9722, c: 9723

[fleet]
name = "$fleet"
etcd = "http://127.0.0.1:2379"
retry = "1s"

[action.rollback.app]
dir = "/srv/fleet-$host"
verify_within = "3s"
fleet_max = 1          # one host of the fleet rolls back at a time

[[check]]
name = "app"
probe = "http"
url = "http://127.0.0.1:$port/health"
interval = "500ms"
mitigate = ["rollback:app"]
TOML
    testbed_exec "$name" systemd-run --quiet --unit="vigil-fleet-$host" /usr/bin/vigil run \
      --config "/etc/vigil/fleet-$host.toml"
  done
}

testbed_exec() {
  local name=$1
  shift
  nsenter --target "$(testbed_leader "$name")" --all -- \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 "$@"
}

testbed_up() {
  local name=$1
  shift
  local rootfs
  rootfs=$(testbed_build)
  local dir="$TESTBED_RUN/$name"
  if [[ -d "$dir" ]]; then
    testbed_log "$name: already up (or left over); taking it down first"
    testbed_down "$name"
  fi
  mkdir -p "$dir"
  local binds=() b
  for b in "$@"; do binds+=("--bind-ro=$b"); done
  # --register=no --keep-unit: there is no systemd-machined on the host to register with.
  # --private-network: the container's own network namespace, so ufw inside never touches the host.
  setsid systemd-nspawn --quiet -D "$rootfs" -M "$name" --hostname="$name" -b \
    --volatile=overlay --private-network --register=no --keep-unit --console=read-only \
    "${binds[@]}" >"$dir/console.log" 2>&1 </dev/null &
  local nspawn=$!
  echo "$nspawn" >"$dir/nspawn"
  local leader="" i p
  for i in $(seq 200); do
    for p in $(pgrep -P "$nspawn" 2>/dev/null || true); do
      if [[ "$(cat "/proc/$p/comm" 2>/dev/null)" == systemd ]]; then leader=$p; fi
    done
    [[ -n "$leader" && -e "/proc/$leader/root/run/systemd/private" ]] && break
    if ! kill -0 "$nspawn" 2>/dev/null; then
      testbed_log "$name: systemd-nspawn exited; console:"
      cat "$dir/console.log" >&2
      return 1
    fi
    sleep 0.05
  done
  if [[ -z "$leader" ]]; then
    testbed_log "$name: systemd did not come up; console:"
    cat "$dir/console.log" >&2
    return 1
  fi
  echo "$leader" >"$dir/leader"
  local state
  state=$(testbed_exec "$name" timeout 60 systemctl is-system-running --wait 2>/dev/null || true)
  if [[ "$state" != running && "$state" != degraded ]]; then
    testbed_log "$name: system state '$state'"
    testbed_exec "$name" systemctl --failed --no-pager >&2 || true
    return 1
  fi
  if [[ "$state" == degraded ]]; then
    testbed_log "$name: degraded; failed units:"
    testbed_exec "$name" systemctl --failed --no-pager --plain >&2 || true
  fi
  testbed_exec "$name" ip link set lo up
}

testbed_peer() {
  local name=$1 peer=$2 peer_ip=$3 container_ip=$4
  local ns="$name-$peer" dev="v-$peer"
  ip netns add "$ns"
  echo "$ns" >>"$TESTBED_RUN/$name/netns"
  # The veth pair goes straight between the two namespaces: it never appears on the host.
  ip -n "$ns" link add eth0 type veth peer name "${dev:0:15}" netns "$(testbed_leader "$name")"
  ip -n "$ns" addr add "$peer_ip" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  nsenter --target "$(testbed_leader "$name")" --net ip addr add "$container_ip" dev "${dev:0:15}"
  nsenter --target "$(testbed_leader "$name")" --net ip link set "${dev:0:15}" up
}

# For bench/: the .deb to install, in $deb, and the directory it is in, in $DEB_DIR (the one
# given in DEB_DIR, else built into ROOT/build-deb).
testbed_bench_deb() {
  if [[ -n "${DEB_DIR:-}" ]]; then
    deb=$(ls "$DEB_DIR"/vigil_*.deb)
  else
    DEB_DIR=$1/build-deb
    deb=$(scripts/build-deb.sh "$DEB_DIR")
  fi
}

# For bench/: in testbed NAME, a victim.service that stays up until killed and may be started
# any number of times in a row (StartLimitIntervalSec=0), started, and vigil installed from $deb
# (mounted at /opt/vigil-deb).
testbed_bench_victim() {
  testbed_exec "$1" sh -c 'printf "[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=/bin/sleep infinity\n" > /etc/systemd/system/victim.service'
  testbed_exec "$1" systemctl daemon-reload
  testbed_exec "$1" systemctl start victim
  testbed_exec "$1" dpkg -i "/opt/vigil-deb/$(basename "$deb")" >/dev/null
}

testbed_down() {
  local name=$1
  local dir="$TESTBED_RUN/$name"
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/netns" ]]; then
    local ns
    while read -r ns; do ip netns del "$ns" 2>/dev/null || true; done <"$dir/netns"
  fi
  if [[ -f "$dir/nspawn" ]]; then
    local pid i
    pid=$(cat "$dir/nspawn")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true # nspawn turns SIGTERM into a clean poweroff
      for i in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  # /run is not a tmpfs here, and nspawn leaves this behind.
  rm -rf "/run/systemd/nspawn/propagate/$name"
  rm -rf "$dir"
}

testbed_netfilter() {
  # The host's firewall state, without the comment lines that carry a timestamp.
  { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | grep -v '^#' || true
  if command -v nft >/dev/null; then nft list ruleset 2>/dev/null || true; fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  cmd=${1:-}
  shift || true
  case "$cmd" in
    build) testbed_build ;;
    up) testbed_up "$@" && testbed_leader "$1" ;;
    exec) testbed_exec "$@" ;;
    peer) testbed_peer "$@" ;;
    down) testbed_down "$@" ;;
    netfilter) testbed_netfilter ;;
    *)
      sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
      exit 2
      ;;
  esac
fi
