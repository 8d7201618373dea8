#!/usr/bin/env bash
# Detection latency of the unit probe: a unit is killed (SIGKILL) -> vigil's finding is in the
# journal. Runs in the test-bed (real systemd, real journald, vigil installed from its .deb as the
# sandboxed service), TRIALS times, and prints p50 / p90 / p99 / max.
# t0 is taken inside the container right before the kill; t1 is the finding's journal timestamp.
#
# Usage: bench/unit_latency.sh [TRIALS=100]
#        (DEB_DIR=DIR: use the .deb already built there, as bench/paging_latency.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
trials=${1:-100}
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian bc
source tests/testbed/testbed.sh
TB=vigil-latency
trap 'testbed_down "$TB"' EXIT
tb() { testbed_exec "$TB" "$@"; }

testbed_bench_deb "$root"
testbed_up "$TB" "$DEB_DIR:/opt/vigil-deb"
# StartLimitIntervalSec=0: the victim is started a hundred times in a row, on purpose.
testbed_bench_victim "$TB"
tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[[check]]
name = "victim"
probe = "unit"
unit = "victim.service"
interval = "200ms"
recover_after = 1
TOML
tb systemctl restart vigil
sleep 1

results=$(mktemp)
for i in $(seq "$trials"); do
  tb systemctl start victim
  # Healthy again, and vigil has seen it (a recovery, or no open finding at all).
  for _ in $(seq 50); do
    n_fire=$(tb journalctl -u vigil -q -o cat VIGIL_STATE=firing | wc -l)
    n_rec=$(tb journalctl -u vigil -q -o cat VIGIL_STATE=recovered | wc -l)
    ((n_fire == n_rec)) && break
    sleep 0.1
  done
  sleep 0.3
  before=$(tb journalctl -u vigil -q -o cat VIGIL_STATE=firing | wc -l)
  t0=$(tb sh -c 'pid=$(systemctl show -P MainPID victim); [ "$pid" -gt 0 ] || exit 1
                 date +%s%6N; kill -KILL "$pid"') || { echo "trial $i: victim not running" >&2; exit 1; }
  t1=""
  for _ in $(seq 200); do
    if (($(tb journalctl -u vigil -q -o cat VIGIL_STATE=firing | wc -l) > before)); then
      t1=$(tb journalctl -u vigil -q -o export VIGIL_STATE=firing -n 1 |
        awk -F= '/^__REALTIME_TIMESTAMP=/ {print $2; exit}')
      break
    fi
    sleep 0.01
  done
  [[ -n "$t1" ]] || { echo "trial $i: no finding within 2 s" >&2; exit 1; }
  echo $(((t1 - t0))) >>"$results"
  echo "trial $i: $(((t1 - t0))) us" >&2
done
sort -n "$results" | awk -v n="$trials" '
  { v[NR] = $1 }
  END {
    printf "unit killed -> finding in the journal, %d trials: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      n, v[int(n * 0.50 + 0.5)] / 1000, v[int(n * 0.90 + 0.5)] / 1000, v[int(n * 0.99 + 0.5)] / 1000, v[n] / 1000
  }'
rm -f "$results"
