#!/usr/bin/env bash
# The incident index (issue 13): how long vigil's start and its first `vigil incidents` take with
# N resolved incidents in the state directory, without the index (every timeline parsed, as
# before) and with it. N defaults to 10,000, the default max_incidents.
#
# Usage: bench/incidents.sh [N=10000]
# Runs the Release build of vigil in the foreground on a scratch state directory and control
# socket; the one check watches a python3 http.server on loopback. Touches nothing else.
# VIGIL_BENCH_KEEP=1 keeps the scratch directory.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
source scripts/deps.sh
vigil_install_deps python3
# VIGIL_BENCH_BINARY: another vigil to measure (e.g. one built from an older commit).
vigil=${VIGIL_BENCH_BINARY:-}
if [[ -z $vigil ]]; then
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-bench -j "$(nproc)" --target vigil >/dev/null
  vigil=$(pwd)/build-bench/vigil
fi
work=$(mktemp -d /tmp/vigil-ibench.XXXXXX)
server=""
trap '[[ -n $server ]] && kill $server 2>/dev/null; [[ -n ${VIGIL_BENCH_KEEP:-} ]] || rm -rf "$work"' EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$work" "$port" >/dev/null 2>&1 &
server=$!
cat >"$work/vigil.toml" <<TOML
[agent]
state_dir = "$work/state"
control_socket = "$work/control.sock"

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:$port/"
interval = "1s"
TOML

# N resolved timelines, each as vigil writes one: opened, firing with evidence, recovered,
# resolved (about 1.3 kB).
python3 - "$work/state/incidents" "$n" <<'PY'
import json, os, sys, datetime
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
t0 = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
def at(t): return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
for i in range(n):
    t = t0 + datetime.timedelta(minutes=4 * i)
    iid = t.strftime("%Y%m%d-%H%M%S") + "-web"
    ev = [
        {"at": at(t), "type": "opened", "check": "web", "text": "incident opened: web: HTTP 503",
         "fields": {"host": "h", "service": "web", "team": "web", "dedupe_key": "h/service/web",
                    "title": "web: HTTP 503", "maintenance": "no"}},
        {"at": at(t), "type": "finding", "check": "web", "text": "HTTP 503 in 12ms", "severity": "SEV1",
         "since": at(t), "finding": "firing", "failure": "http_5xx",
         "fields": {"http_status": "503", "latency_ms": "12"}},
        {"at": at(t), "type": "evidence", "check": "web", "text": "evidence from web",
         "evidence": ["web.service: active (running)", "ERROR connection pool exhausted (max=20)" * 4]},
        {"at": at(t), "type": "severity", "severity": "SEV1", "text": "declared SEV1"},
        {"at": at(t + datetime.timedelta(seconds=90)), "type": "finding", "check": "web",
         "text": "HTTP 200 in 3ms", "severity": "SEV1", "finding": "recovered"},
        {"at": at(t + datetime.timedelta(seconds=90)), "type": "state", "state": "resolved",
         "text": "resolved"},
    ]
    with open(os.path.join(d, iid + ".jsonl"), "w") as f:
        for e in ev: f.write(json.dumps(e, separators=(",", ":")) + "\n")
PY
# keep_incidents/max_incidents would prune the generated files: not with these settings.
sed -i 's/^control_socket.*/&\nkeep_incidents = "forever"\nmax_incidents = '"$((n + 10))"'/' "$work/vigil.toml"

ms() { echo $(($(date +%s%N) / 1000000)); }
# One start: ms from exec to "started", then ms of the first and second `vigil incidents`.
run_once() {
  local log=$work/run.log t0 t1 t2 t3 pid
  : >"$log"
  t0=$(ms)
  "$vigil" run --config "$work/vigil.toml" >"$log" 2>&1 &
  pid=$!
  until grep -q "started:" "$log"; do sleep 0.005; done
  t1=$(ms)
  "$vigil" incidents --json --socket "$work/control.sock" >"$work/list.json"
  t2=$(ms)
  "$vigil" incidents --json --socket "$work/control.sock" >/dev/null
  t3=$(ms)
  # The agent's own share: request sent to the last byte of the reply (the CLI then parses and
  # prints it). This is how long the event loop is busy with the call.
  local agent_ms
  agent_ms=$(python3 - "$work/control.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
t = time.monotonic(); s.sendall(b'{"cmd":"incidents"}\n'); n = 0
while True:
    b = s.recv(1 << 20)
    if not b: break
    n += len(b)
print("%d" % ((time.monotonic() - t) * 1000))
PY
)
  kill -TERM "$pid"
  wait "$pid" || true
  local listed
  listed=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$work/list.json")
  printf '%-28s %9d %12d %12d %9d %8d   %s\n' "$1" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) "$agent_ms" "$listed" \
    "$(grep -o 'incidents at start: .*' "$log" | head -1)"
}
echo "vigil with $n resolved incidents ($(du -sh "$work/state/incidents" | cut -f1) of timelines), Release build, $(nproc) cores"
printf '%-28s %9s %12s %12s %9s %8s\n' "" "start ms" "1st list ms" "2nd list ms" "agent ms" "listed"
run_once "no index (as before)"
run_once "index written by that start"
rm -f "$work/state/incident-index.jsonl"
run_once "index deleted again"
run_once "index again"
