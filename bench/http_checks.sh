#!/usr/bin/env bash
# Benchmark: N HTTP checks at a 1 s interval, four probers side by side in one run: the floor
# (bench/http_floor.cpp: keep-alive GETs on one epoll loop, the least any prober must do),
# vigil (Release build), monit and Prometheus' blackbox_exporter (both from Debian's packages,
# unpacked into a cache directory, never installed as services), all against the same loopback
# server (vigil-sample-app) pinned to CPU 1, each prober pinned to CPU 0.
#
# Rounds are interleaved (floor, vigil, monit, blackbox_exporter, then again) and the best round
# of each is kept: on a VM the cost of a wake-up varies from minute to minute, and interleaving
# makes each prober meet the same conditions. Per round: a warm-up, then SECONDS measured from
# /proc/PID/stat (utime+stime of every thread), the server's request count, and
# /proc/PID/status (VmHWM, RssAnon).
#
# monit checks with `if failed port ... protocol http request ...` at `set daemon 1`, one
# `check host` per check: a new connection per probe, as monit always does. blackbox_exporter
# probes when asked (GET /probe?target=...), so a driver asks it for every check once a second:
# http_floor itself, on CPU 1 with the server; its cost is the scraper's, not the prober's, and
# is printed apart.
#
# Usage: bench/http_checks.sh [CHECKS=1000] [SECONDS=20] [ROUNDS=3]
#   VIGIL_BENCH_BUILD=DIR uses that build tree as it is (to try the script out on a Debug tree);
#   by default a Release tree is built in build-bench/. VIGIL_BENCH_PROBERS="floor vigil" runs
#   only those (the table then lacks the ratios of the others).
set -euo pipefail
cd "$(dirname "$0")/.."
checks=${1:-1000}
seconds=${2:-20}
rounds=${3:-3}
warmup=5
port=18181
bb_port=19115
cache=/var/cache/vigil-bench/packages

source scripts/deps.sh
vigil_install_deps bc curl libpam0g zlib1g
bin=${VIGIL_BENCH_BUILD:-build-bench}
if [[ -z "${VIGIL_BENCH_BUILD:-}" ]]; then
  cmake -S . -B "$bin" -DCMAKE_BUILD_TYPE=Release -DVIGIL_TESTS=ON >/dev/null
fi
cmake --build "$bin" -j "$(nproc)" --target vigil vigil-sample-app http_floor >/dev/null

# The peers, unpacked from their Debian packages (downloaded once; scripts/deps.sh).
unpack() { vigil_unpack "$1" "$cache"; }
monit_bin="$(unpack monit)/usr/bin/monit"
bb_bin="$(unpack prometheus-blackbox-exporter)/usr/bin/prometheus-blackbox-exporter"

work=$(mktemp -d /tmp/vigil-bench.XXXXXX)
app_pid=""; subject_pid=""; driver_pid=""
stop() {  # PID...
  local p
  for p in "$@"; do
    [[ -n "$p" ]] || continue
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
}
cleanup() {
  stop "$driver_pid" "$subject_pid" "$app_pid"
  rm -rf "$work"
}
trap cleanup EXIT

taskset -c 1 "$bin"/tests/support/vigil-sample-app --port "$port" 2>/dev/null &
app_pid=$!
sleep 0.3

# vigil's config: the same checks as the others, a 500 ms timeout.
{
  echo '[agent]'
  echo "state_dir = \"$work/vigil\""
  for i in $(seq 1 "$checks"); do
    printf '[[check]]\nname = "c%d"\nprobe = "http"\nurl = "http://127.0.0.1:%d/health?i=%d"\ninterval = "1s"\ntimeout = "500ms"\n' \
      "$i" "$port" "$i"
  done
} >"$work/vigil.toml"
mkdir -p "$work/vigil"
"$bin"/vigil check-config "$work/vigil.toml" >/dev/null

# monit's: one host check per check, every cycle of 1 s.
{
  echo 'set daemon 1'
  echo "set logfile $work/monit.log"
  echo "set pidfile $work/monit.pid"
  echo "set idfile $work/monit.id"
  echo "set statefile $work/monit.state"
  for i in $(seq 1 "$checks"); do
    printf 'check host c%d with address 127.0.0.1\n  if failed port %d protocol http request "/health?i=%d" with timeout 1 seconds then alert\n' \
      "$i" "$port" "$i"
  done
} >"$work/monitrc"
chmod 600 "$work/monitrc"
"$monit_bin" -t -c "$work/monitrc" >/dev/null

cat >"$work/blackbox.yml" <<'EOF'
modules:
  http_2xx:
    prober: http
    timeout: 1s
    http:
      preferred_ip_protocol: ip4
EOF

# CPU time in seconds, all threads: the scheduler's sum_exec_runtime (/proc/PID/task/*/sched,
# nanoseconds) where the kernel has it, else utime+stime from /proc/PID/stat, which counts in
# clock ticks (10 ms: at ~1 % of a core over 10 s that is a 10 % step, too coarse for a ratio).
ticks=$(getconf CLK_TCK)
cpu_of() {
  if [[ -r /proc/$1/sched ]]; then
    cat /proc/"$1"/task/*/sched 2>/dev/null |
      awk '$1 == "se.sum_exec_runtime" {s += $3} END {printf "%.6f\n", s / 1000}'
  else
    awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"
  fi
}
served() { curl -fsS "http://127.0.0.1:$port/_stats" | awk '{print $2}'; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

start_subject() {  # NAME: sets subject_pid (and driver_pid for blackbox_exporter)
  case "$1" in
    floor)
      taskset -c 0 "$bin"/bench/http_floor --port "$port" --checks "$checks" 2>/dev/null &
      subject_pid=$! ;;
    vigil)
      taskset -c 0 "$bin"/vigil run --config "$work/vigil.toml" 2>"$work/vigil.log" &
      subject_pid=$! ;;
    monit)
      rm -f "$work/monit.state" "$work/monit.pid"
      taskset -c 0 "$monit_bin" -I -c "$work/monitrc" >/dev/null 2>&1 &
      subject_pid=$! ;;
    blackbox_exporter)
      taskset -c 0 "$bb_bin" --config.file="$work/blackbox.yml" --log.level=warn \
        --web.listen-address="127.0.0.1:$bb_port" >/dev/null 2>&1 &
      subject_pid=$!
      sleep 0.5
      taskset -c 1 "$bin"/bench/http_floor --port "$bb_port" --checks "$checks" \
        --path "/probe?module=http_2xx&target=http%3A%2F%2F127.0.0.1%3A$port%2Fhealth%3Fi%3D{i}" \
        2>/dev/null &
      driver_pid=$! ;;
  esac
}

# One measured window of the running subject: "cpu_s probes wall_s hwm_kib anon_kib driver_cpu_s".
measure() {
  local c0 r0 t0 d0=0 c1 r1 t1 d1=0
  sleep "$warmup"
  c0=$(cpu_of "$subject_pid"); r0=$(served); t0=$(date +%s%N)
  [[ -n "$driver_pid" ]] && d0=$(cpu_of "$driver_pid")
  sleep "$seconds"
  c1=$(cpu_of "$subject_pid"); r1=$(served); t1=$(date +%s%N)
  [[ -n "$driver_pid" ]] && d1=$(cpu_of "$driver_pid")
  echo "$(echo "$c1 - $c0" | bc -l) $((r1 - r0 - 1))" \
    "$(echo "($t1 - $t0) / 1000000000" | bc -l)" \
    "$(status_kib "$subject_pid" VmHWM) $(status_kib "$subject_pid" RssAnon)" \
    "$(echo "$d1 - $d0" | bc -l)"
}

read -r -a subjects <<<"${VIGIL_BENCH_PROBERS:-floor vigil monit blackbox_exporter}"
declare -A best=()  # NAME -> "us_per_probe cpu_s probes wall hwm anon driver_cpu_s"
ratios=()           # vigil/floor of each round (the two run back to back)
for round in $(seq 1 "$rounds"); do
  for s in "${subjects[@]}"; do
    start_subject "$s"
    read -r cpu_s probes wall hwm anon driver_cpu < <(measure)
    stop "$driver_pid" "$subject_pid"
    driver_pid=""; subject_pid=""
    ((probes > 0)) || probes=1
    us=$(echo "1000000 * $cpu_s / $probes" | bc -l)
    printf 'round %d  %-18s %8.1f us/probe  %7.1f probes/s  VmHWM %6.1f MiB  RssAnon %6.1f MiB\n' \
      "$round" "$s" "$us" "$(echo "$probes / $wall" | bc -l)" \
      "$(echo "$hwm / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)" >&2
    [[ $s == floor ]] && floor_us=$us
    if [[ $s == vigil && -n "${floor_us:-}" ]]; then
      ratios+=("$(echo "$us / $floor_us" | bc -l)")
    fi
    prev=${best[$s]:-}
    if [[ -z "$prev" ]] || (($(echo "$us < ${prev%% *}" | bc -l))); then
      best[$s]="$us $cpu_s $probes $wall $hwm $anon $driver_cpu"
    fi
    sleep 1
  done
done

printf '\nchecks=%d interval=1s, best of %d rounds of %ds (after %ds of warm-up), server and drivers on CPU 1, probers on CPU 0\n' \
  "$checks" "$rounds" "$seconds" "$warmup"
printf '| prober | probes/s | CPU per probe | %% of a core | peak RSS (VmHWM) | private (RssAnon) |\n'
printf '|---|---|---|---|---|---|\n'
for s in "${subjects[@]}"; do
  read -r us cpu_s probes wall hwm anon driver_cpu <<<"${best[$s]}"
  printf '| %s | %.0f | %.1f µs | %.2f %% | %.1f MiB | %.1f MiB |\n' "$s" \
    "$(echo "$probes / $wall" | bc -l)" "$us" "$(echo "100 * $cpu_s / $wall" | bc -l)" \
    "$(echo "$hwm / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)"
done
us_of() { echo "${best[$1]%% *}"; }
if ((${#ratios[@]} > 0)); then
  printf '\nvigil/floor per round: %s   median %.2f\n' \
    "$(printf '%.2f ' "${ratios[@]}")" \
    "$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')"
fi
[[ -n "${best[floor]:-}" && -n "${best[vigil]:-}" && -n "${best[monit]:-}" &&
  -n "${best[blackbox_exporter]:-}" ]] || exit 0
printf '\nvigil/floor = %.2f   monit/vigil = %.1f   blackbox_exporter/vigil = %.1f   (CPU per probe)\n' \
  "$(echo "$(us_of vigil) / $(us_of floor)" | bc -l)" \
  "$(echo "$(us_of monit) / $(us_of vigil)" | bc -l)" \
  "$(echo "$(us_of blackbox_exporter) / $(us_of vigil)" | bc -l)"
read -r _ _ probes _ _ _ driver_cpu <<<"${best[blackbox_exporter]}"
printf 'blackbox_exporter driver (the scraper, not counted above): %.1f µs per probe\n' \
  "$(echo "1000000 * $driver_cpu / $probes" | bc -l)"
