#!/usr/bin/env bash
# Benchmark: N HTTP checks at a 1 s interval against a local server for D seconds.
# Reports vigil's CPU (% of one core, from /proc/PID/stat utime+stime over the measured window)
# and peak RSS (VmHWM), and checks that every scheduled probe was made.
# Usage: bench/http_checks.sh [CHECKS=1000] [SECONDS=60]
set -euo pipefail
cd "$(dirname "$0")/.."
checks=${1:-1000}
seconds=${2:-60}
warmup=5
port=18181

source scripts/deps.sh
vigil_install_deps bc
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DVIGIL_TESTS=ON >/dev/null
cmake --build build-bench -j "$(nproc)" --target vigil vigil-sample-app >/dev/null

work=$(mktemp -d /tmp/vigil-bench.XXXXXX)
app_pid=""; vigil_pid=""
cleanup() {
  [[ -n "$vigil_pid" ]] && kill -TERM "$vigil_pid" 2>/dev/null && wait "$vigil_pid" 2>/dev/null || true
  [[ -n "$app_pid" ]] && kill -TERM "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Pinned apart (server on CPU 1, vigil on CPU 0) so runs are comparable: on this VM the cost
# of a wake-up depends on whether the two share a core.
taskset -c 1 build-bench/tests/support/vigil-sample-app --port "$port" 2>/dev/null &
app_pid=$!
sleep 0.3

{
  echo '[agent]'
  echo "state_dir = \"$work\""
  for i in $(seq 1 "$checks"); do
    printf '[[check]]\nname = "c%d"\nprobe = "http"\nurl = "http://127.0.0.1:%d/health?i=%d"\ninterval = "1s"\ntimeout = "500ms"\n' \
      "$i" "$port" "$i"
  done
} >"$work/bench.toml"
build-bench/vigil check-config "$work/bench.toml" | tail -n 1

taskset -c 0 build-bench/vigil run --config "$work/bench.toml" 2>"$work/vigil.log" &
vigil_pid=$!
sleep "$warmup"

ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$vigil_pid/stat"; }
served() { curl -fsS "http://127.0.0.1:$port/_stats" | awk '{print $2}'; }
c0=$(cpu); r0=$(served); t0=$(date +%s%N)
sleep "$seconds"
c1=$(cpu); r1=$(served); t1=$(date +%s%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$vigil_pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$vigil_pid/status")
anon=$(awk '/RssAnon/ {print $2}' "/proc/$vigil_pid/status")
file=$(awk '/RssFile/ {print $2}' "/proc/$vigil_pid/status")

wall=$(echo "($t1 - $t0) / 1000000000" | bc -l)
cpu_s=$(echo "($c1 - $c0) / $ticks" | bc -l)
pct=$(echo "100 * $cpu_s / $wall" | bc -l)
reqs=$((r1 - r0 - 2))  # minus our own two /_stats requests
expected=$(echo "$checks * $wall" | bc -l)
findings=$(grep -c "firing" "$work/vigil.log" || true)

printf 'checks=%d interval=1s window=%.1fs\n' "$checks" "$wall"
printf 'vigil CPU: %.2f s = %.2f%% of one core\n' "$cpu_s" "$pct"
printf 'vigil peak RSS (VmHWM): %.1f MiB (VmRSS now %.1f MiB)\n' "$(echo "$hwm/1024" | bc -l)" "$(echo "$rss/1024" | bc -l)"
printf '  of which private heap/stack (RssAnon) %.1f MiB, mapped shared libraries (RssFile) %.1f MiB\n' \
  "$(echo "$anon/1024" | bc -l)" "$(echo "$file/1024" | bc -l)"
printf 'probes made: %d of %.0f expected (%.1f%%); findings logged: %d\n' "$reqs" "$expected" \
  "$(echo "100 * $reqs / $expected" | bc -l)" "$findings"
printf 'per probe: %.1f us of CPU\n' "$(echo "1000000 * $cpu_s / $reqs" | bc -l)"
