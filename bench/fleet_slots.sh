#!/usr/bin/env bash
# Benchmark: slot latency of the fleet budget (docs/FLEET.md) with N simulated agents against
# one etcd (Debian's etcd-server, unpacked, never installed), all on loopback. Each agent is a
# real fleet::Budget on one Asio loop (bench/fleet_slots.cpp): its own lease and membership,
# asking for a slot of one capped action, holding it a while, giving it back, asking again.
# Prints the answer latency (p50/p99/max), how many asks were granted or refused, and the most
# agents that held a slot at once (must not exceed the cap).
#
# Usage: bench/fleet_slots.sh [AGENTS=100] [CAP=10] [SECONDS=20] [PAUSE_MS=100]
#   PAUSE_MS: how long a refused agent waits before asking again ([fleet] retry; 100 ms is a
#   stampede 50 times harsher than the default 5 s).
#   VIGIL_BENCH_BUILD=DIR uses that build tree as it is; by default a Release tree in build-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
agents=${1:-100}
cap=${2:-10}
seconds=${3:-20}
pause=${4:-100}

source scripts/deps.sh
vigil_install_deps
bin=${VIGIL_BENCH_BUILD:-build-bench}
if [[ -z "${VIGIL_BENCH_BUILD:-}" ]]; then
  cmake -S . -B "$bin" -DCMAKE_BUILD_TYPE=Release -DVIGIL_TESTS=ON >/dev/null
fi
cmake --build "$bin" -j "$(nproc)" --target fleet_slots >/dev/null
etcd="$(vigil_unpack etcd-server)/usr/bin/etcd"

work=$(mktemp -d /tmp/vigil-fleet-bench.XXXXXX)
etcd_pid=""
cleanup() {
  [[ -n $etcd_pid ]] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
client=$(port)
peer=$(port)
"$etcd" --name bench --data-dir "$work/data" \
  --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
  --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
  --initial-cluster "bench=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 100); do
  grep -q "ready to serve client requests" "$work/etcd.log" && break
  sleep 0.1
done
grep -q "ready to serve client requests" "$work/etcd.log" || { cat "$work/etcd.log"; exit 1; }
echo "etcd $("$etcd" --version | head -n1 | awk '{print $3}') on 127.0.0.1:$client (fsync to $work)"
"$bin/bench/fleet_slots" --etcd "http://127.0.0.1:$client" --agents "$agents" --cap "$cap" \
  --seconds "$seconds" --pause-ms "$pause"
