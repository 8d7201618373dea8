#!/usr/bin/env bash
# Reaction time of the mitigation ladder: a confirmed failure -> the mitigation started. Runs in
# the test-bed (real systemd, real journald, vigil installed from its .deb as the sandboxed
# service): a unit is killed TRIALS times; each time vigil declares the finding, opens the
# incident (writing its timeline durably), asks the ladder and starts a D-Bus restart.
#
# Measured: the journal's __MONOTONIC_TIMESTAMP of vigil's "SEV1 firing" entry (logged the moment
# the classifier confirms the failure) to that of its "started restart:..." entry, both written
# by vigil itself in that order. This is vigil's own time beyond the configured confirmation
# (fail_after / confirm), which the issue budgets at 20 ms. Also printed: kill -> started, which
# includes systemd's state change reaching vigil over D-Bus.
#
# Usage: bench/mitigation_latency.sh [TRIALS=50]
#        (DEB_DIR=DIR: use the .deb already built there, as bench/paging_latency.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
trials=${1:-50}
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian bc
source tests/testbed/testbed.sh
TB=vigil-mitlat
trap 'testbed_down "$TB"' EXIT
tb() { testbed_exec "$TB" "$@"; }

testbed_bench_deb "$root"
testbed_up "$TB" "$DEB_DIR:/opt/vigil-deb"
testbed_bench_victim "$TB"
tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[action.restart.victim]
max_runs = 1000
cooldown = "0s"
verify_within = "20s"

[[check]]
name = "victim"
probe = "unit"
unit = "victim.service"
interval = "200ms"
recover_after = 1
mitigate = ["restart:victim"]
TOML
tb systemctl restart vigil
sleep 1

mono() { # the __MONOTONIC_TIMESTAMP (µs) of the last vigil entry matching journalctl args $@
  { tb journalctl -u vigil -q -o export -n 1 "$@" || true; } |
    awk -F= '/^__MONOTONIC_TIMESTAMP=/ {print $2; exit}'
}
# journalctl --grep exits 1 when nothing matches: that is a count of 0, not an error.
count() { { tb journalctl -u vigil -q -o cat "$@" || true; } | wc -l; }

own=$(mktemp)
total=$(mktemp)
for i in $(seq "$trials"); do
  # Resolved (verified) and quiet before the next trial.
  for _ in $(seq 100); do
    (($(count MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e6) == $(count MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8))) && break
    sleep 0.1
  done
  sleep 0.3
  before=$(count --grep "started restart:victim")
  tb sh -c 'pid=$(systemctl show -P MainPID victim); [ "$pid" -gt 0 ] || exit 1; kill -KILL "$pid"' ||
    { echo "trial $i: victim not running" >&2; exit 1; }
  for _ in $(seq 300); do
    (($(count --grep "started restart:victim") > before)) && break
    sleep 0.01
  done
  (($(count --grep "started restart:victim") > before)) || { echo "trial $i: no mitigation within 3 s" >&2; exit 1; }
  t_fire=$(mono VIGIL_CHECK=victim VIGIL_STATE=firing)
  t_start=$(mono --grep "started restart:victim")
  t_kill=$({ tb journalctl -q -o export -n 1 -u victim --grep "Main process exited|Failed with result" || true; } |
    awk -F= '/^__MONOTONIC_TIMESTAMP=/ {print $2; exit}')
  echo $((t_start - t_fire)) >>"$own"
  [[ -n "$t_kill" ]] && echo $((t_start - t_kill)) >>"$total"
  echo "trial $i: finding -> started $((t_start - t_fire)) us" >&2
done
stats() {
  sort -n "$1" | awk -v what="$2" '
    { v[NR] = $1 }
    END {
      n = NR
      printf "%s, %d trials: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n,
        v[int(n * 0.50 + 0.5)] / 1000, v[int(n * 0.90 + 0.5)] / 1000, v[int(n * 0.99 + 0.5)] / 1000, v[n] / 1000
    }'
}
stats "$own" "confirmed failure (finding) -> mitigation started"
stats "$total" "systemd logs the unit's death -> mitigation started"
rm -f "$own" "$total"
