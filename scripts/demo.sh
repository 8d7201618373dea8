#!/usr/bin/env bash
# The demo: builds vigil, starts a small sample web service on 127.0.0.1:8080, runs vigil on
# the shipped default config (etc/vigil.toml), then breaks the service (5xx, slow, down) and
# restores it, showing vigil's findings as they happen. Stops everything it started, also on
# Ctrl-C.  Usage (as root on a fresh Debian 12 / Ubuntu 22.04+ machine):  scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/deps.sh
vigil_install_deps

PORT=8080
APP_URL="http://127.0.0.1:${PORT}"
work=$(mktemp -d /tmp/vigil-demo.XXXXXX)
app_pid=""
vigil_pid=""

cleanup() {
  trap - EXIT INT TERM
  [[ -n "$vigil_pid" ]] && kill -TERM "$vigil_pid" 2>/dev/null && wait "$vigil_pid" 2>/dev/null || true
  [[ -n "$app_pid" ]] && kill -TERM "$app_pid" 2>/dev/null && wait "$app_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo interrupted"; exit 130' INT TERM

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

say "building vigil"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target vigil vigil-sample-app >/dev/null

if (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null; then
  echo "demo: 127.0.0.1:${PORT} is already in use; stop what listens there and try again" >&2
  exit 1
fi

start_app() {
  # slow mode answers after 200ms: above latency_warn (150ms) in etc/vigil.toml, so SEV3.
  build/tests/support/vigil-sample-app --port "$PORT" --slow-ms 200 2>>"$work/app.log" &
  app_pid=$!
  for _ in $(seq 50); do
    curl -fsS -o /dev/null "$APP_URL/health" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "demo: the sample app did not start" >&2
  exit 1
}
set_mode() { curl -fsS -o /dev/null "$APP_URL/_mode/$1"; }

# Waits until vigil's log has a new line matching $1; prints how long it took.
wait_for() {
  local pattern=$1 since=$2 start=$3
  for _ in $(seq 100); do
    if tail -n +"$since" "$work/vigil.log" | grep -q -- "$pattern"; then
      local now
      now=$(date +%s%N)
      printf '   (seen %d ms after the change)\n' $(((now - start) / 1000000))
      return 0
    fi
    sleep 0.05
  done
  echo "   !! vigil did not report '$pattern' within 5 s" >&2
  return 1
}
mark() { echo $(($(wc -l <"$work/vigil.log") + 1)); }

say "vigil check-config etc/vigil.toml"
build/vigil check-config etc/vigil.toml

say "starting the sample app on $APP_URL/health"
start_app

say "starting vigil on etc/vigil.toml (its findings appear below as they happen)"
build/vigil run --config etc/vigil.toml 2>"$work/vigil.log" &
vigil_pid=$!
tail -n +1 -f "$work/vigil.log" --pid "$vigil_pid" &
sleep 2

say "incident 1: the app answers 503 (connection pool exhausted)"
m=$(mark); t=$(date +%s%N); set_mode fail
wait_for "app: SEV1 firing" "$m" "$t"
sleep 1.5
say "restoring the app"
m=$(mark); t=$(date +%s%N); set_mode ok
wait_for "app: recovered" "$m" "$t"

say "incident 2: the app gets slow (200ms, latency_warn is 150ms)"
m=$(mark); t=$(date +%s%N); set_mode slow
wait_for "app: SEV3 firing" "$m" "$t"
sleep 1.5
say "restoring the app"
m=$(mark); t=$(date +%s%N); set_mode ok
wait_for "app: recovered" "$m" "$t"

say "incident 3: the app dies (kill -9)"
m=$(mark); t=$(date +%s%N)
kill -KILL "$app_pid"; wait "$app_pid" 2>/dev/null || true; app_pid=""
wait_for "app: SEV1 firing" "$m" "$t"
sleep 1.5
say "restarting the app"
m=$(mark); t=$(date +%s%N); start_app
wait_for "app: recovered" "$m" "$t"

say "vigil test-check app (one probe, now)"
build/vigil test-check app --config etc/vigil.toml || true

say "stopping vigil (SIGTERM)"
kill -TERM "$vigil_pid"; wait "$vigil_pid" || true; vigil_pid=""
sleep 0.2
say "demo done"
