#!/usr/bin/env bash
# Detection -> page accepted by Alertmanager (issue 7). Runs in the test-bed (real systemd, real
# journald, vigil installed from its .deb as the sandboxed service) paging the "central" site of
# tests/testbed/central.sh: two clustered Alertmanagers (Debian's) in their own network namespace.
#
# INCIDENTS journal lines, each from a different address, each open one incident (a journal rule
# keyed by address, count 1): vigil declares the finding, opens the incident (timeline written
# durably), waits for the evidence, queues the page durably in the outbox and posts it to both
# Alertmanager peers. Measured per incident from its timeline: the `finding` event (the moment the
# classifier confirmed the failure: the check's own confirmation time is not counted) to the
# delivery event recorded when the peer answered 200 to POST /api/v2/alerts. Timeline times have
# millisecond resolution. The lines are spaced SPACING_MS apart so each incident is measured on
# its own, not behind a queue of the previous ones.
#
# Usage: bench/paging_latency.sh [INCIDENTS=100] [SPACING_MS=200]
#        (DEB_DIR=DIR: use the .deb already built there, e.g. by `tests/testbed/e2e.sh setup DIR`)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
incidents=${1:-100}
spacing_ms=${2:-200}
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian
source tests/testbed/testbed.sh
source tests/testbed/central.sh
TB=vigil-pagelat
art=$(mktemp -d)
trap 'central_down || true; testbed_down "$TB"; rm -rf "$art"' EXIT
tb() { testbed_exec "$TB" "$@"; }

testbed_bench_deb "$root"
testbed_up "$TB" "$DEB_DIR:/opt/vigil-deb"
central_up "$TB" "$art"
tb dpkg -i "/opt/vigil-deb/$(basename "$deb")" >/dev/null
tb sh -c 'cat > /etc/vigil/vigil.toml' <<TOML
[agent]
state_dir = "/var/lib/vigil"

[[notify]]
name = "am"
kind = "alertmanager"
urls = ["http://$CENTRAL_IP:9093", "http://$CENTRAL_IP:9095"]

[[check]]
name = "abuse"
probe = "journal"
identifier = "bench"
pattern = 'bad request from (?P<ip>\\S+)'
key = "ip"
count = 1
window = "10m"
interval = "100ms"
TOML
tb vigil check-config /etc/vigil/vigil.toml >/dev/null
tb systemctl restart vigil
sleep 2

for i in $(seq "$incidents"); do
  tb systemd-cat -t bench echo "bad request from 198.51.$((i / 250)).$((i % 250 + 1))"
  sleep "$(awk -v ms="$spacing_ms" 'BEGIN { printf "%.3f", ms / 1000 }')"
done
# Every incident delivered to both peers, or give up after 60 s.
dir="/proc/$(testbed_leader "$TB")/root/var/lib/vigil/incidents"
for _ in $(seq 600); do
  n=$(cat "$dir"/*.jsonl 2>/dev/null | grep -c '"delivery":"delivered"' || true)
  ((n >= 2 * incidents)) && break
  sleep 0.1
done

python3 - "$dir" "$incidents" <<'PY'
import datetime, glob, json, sys

def ms(t):
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() * 1000

first, peers = [], {"am#0": [], "am#1": []}
files = glob.glob(sys.argv[1] + "/*.jsonl")
for f in files:
    found, got = None, {}
    for line in open(f):
        e = json.loads(line)
        if e.get("type") == "finding" and e.get("finding") == "firing" and found is None:
            found = ms(e["at"])
        fl = e.get("fields", {})
        if e.get("type") == "page" and fl.get("delivery") == "delivered" and fl.get("action") == "trigger":
            got.setdefault(fl["target"], ms(e["at"]))
    if found is None or not got:
        continue
    for t, at in got.items():
        if t in peers:
            peers[t].append(at - found)
    first.append(min(got.values()) - found)

def stats(what, v):
    v = sorted(v)
    n = len(v)
    if n == 0:
        print(f"{what}: no samples")
        return
    q = lambda p: v[min(n - 1, int(n * p + 0.5) - 1 if n * p >= 1 else 0)]
    print(f"{what}, {n} incidents: p50 {q(0.50):.0f} ms, p90 {q(0.90):.0f} ms, "
          f"p99 {q(0.99):.0f} ms, max {v[-1]:.0f} ms")

print(f"{len(files)} incidents opened (expected {sys.argv[2]})")
stats("finding -> first Alertmanager peer accepted the page", first)
for t, v in peers.items():
    stats(f"finding -> {t} accepted", v)
PY
tb vigil status | head -5 || true
