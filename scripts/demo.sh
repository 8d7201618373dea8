#!/usr/bin/env bash
# The demo: vigil detecting real incidents on a real systemd host, and mitigating three of them.
#
# Builds vigil's .deb, boots the test-bed (a minimal Debian with systemd, journald and ufw, in a
# systemd-nspawn container with its own network: nothing on this host is touched, its firewall
# least of all), installs the .deb there as the sandboxed vigil.service on the shipped default
# config, starts a small sample web service, then breaks it (5xx, slow, killed) and restores it,
# showing vigil's journal as it happens and how long each finding took, with the postmortem of
# the first incident. Then a crash-looping worker, and a broken config on `systemctl reload`,
# refused with file:line:col while the old config keeps running.
#
# Then the mitigations, each ending with `vigil postmortem` of its incident:
#   1. a bad deploy (release B answers 503): vigil rolls /srv/app/current back to the known-good
#      release A, restarts the app, verifies the checks pass again and resolves the incident;
#   2. a stuck web service (its connection pool exhausted): vigil restarts it and verifies;
#   3. an abusive IP (failed SSH logins): vigil blocks it with ufw for 30 s, cutting it off while
#      its neighbour still gets through, and unblocks it when the block expires.
# Then the fleet: three more agents (hosts a, b, c) in the test-bed share one failing dependency
# and a rollback capped at fleet_max = 1, with the budget in a real etcd (Debian's etcd-server,
# unpacked on this host and bind-mounted, never installed): one acts at a time, the others
# "held: fleet budget".
# Every incident is paged to a "central" site in its own network namespace: two clustered, real
# Prometheus Alertmanagers (Debian's package, run from the test-bed's root file system); the demo
# shows the alerts with `amtool alert query` and what Alertmanager notified (firing, resolved).
# Everything is torn down at the end, also on Ctrl-C.
#
# Usage (as root on a fresh Debian 12 / Ubuntu 22.04+ machine):  scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian bc
source tests/testbed/testbed.sh
source tests/testbed/central.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
TB=vigil-demo
work=$(mktemp -d /tmp/vigil-demo.XXXXXX)
follower=""
held=""
cleanup() {
  trap - EXIT INT TERM
  [[ -n "$follower" ]] && kill "$follower" 2>/dev/null || true
  [[ -n "$held" ]] && kill "$held" 2>/dev/null || true
  central_down 2>/dev/null || true
  testbed_down "$TB" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo; echo "demo interrupted"; exit 130' INT TERM
tb() { testbed_exec "$TB" "$@"; }

say "building vigil, its .deb and the sample app (first run: a few minutes)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target vigil-sample-app >/dev/null
deb=$(scripts/build-deb.sh "$root/build-deb")
echo "$deb"

say "booting the test-bed (systemd in a container; root file system cached after the first run)"
testbed_build >/dev/null
etcd_dir="$(vigil_unpack etcd-server)/usr/bin"
testbed_up "$TB" "$root/build-deb:/opt/vigil-deb" "$root/build/tests/support:/opt/vigil-test" \
  "$etcd_dir:/opt/etcd"
tb sh -c 'cat > /etc/systemd/system/sample-app.service' <<'UNIT'
[Unit]
Description=sample web app (the service vigil watches in the demo)
[Service]
# slow mode answers after 200ms: above latency_warn (150ms) in the default vigil.toml.
# On every address: the "attacker" host of the last mitigation reaches it over the network.
ExecStart=/opt/vigil-test/vigil-sample-app --address 0.0.0.0 --port 8080 --slow-ms 200
UNIT
tb systemctl daemon-reload
tb systemctl start sample-app
say "starting the central site: two clustered Alertmanagers at $CENTRAL_IP:9093 and :9095"
central_up "$TB" "$work/central"
for _ in $(seq 50); do tb curl -fsS -o /dev/null http://127.0.0.1:8080/health && break; sleep 0.1; done

say "dpkg -i $(basename "$deb")   (the package enables and starts vigil.service)"
tb dpkg -i "/opt/vigil-deb/$(basename "$deb")" | grep -v "^(Reading"
for _ in $(seq 50); do tb systemctl is-active --quiet vigil && break; sleep 0.1; done
tb systemctl status vigil --no-pager --lines=0 | sed -n '1,8p'

say "vigil's journal, live (journalctl -u vigil -f)"
: >"$work/journal.log"
nsenter --target "$(testbed_leader "$TB")" --all -- env -i PATH=/usr/bin:/bin \
  journalctl -u vigil -f -n 3 -o short-unix --no-hostname >"$work/journal.log" 2>&1 &
follower=$!
# Shown with a readable clock; the file keeps the unix timestamps wait_for computes with.
tail -n +1 -f "$work/journal.log" --pid "$follower" | while read -r stamp rest; do
  printf '%s %s\n' "$(date -d "@$stamp" +%T.%3N 2>/dev/null || echo "$stamp")" "$rest"
done &
sleep 1.5

mark() { wc -l <"$work/journal.log"; }
# Waits (at most $4 seconds, default 10) until the journal has a new line matching $1, then says
# how long vigil took to report it ($5, default "it"): the entry's own journal timestamp minus
# the moment of the change (same kernel clock). The line is left in $matched.
matched=""
wait_for() {
  local pattern=$1 since=$2 start=$3 seconds=${4:-10} what=${5:-it} line
  for _ in $(seq $((seconds * 20))); do
    line=$(tail -n +"$((since + 1))" "$work/journal.log" | grep -m 1 -- "$pattern" || true)
    if [[ -n "$line" ]]; then
      matched=$line
      local stamp=${line%% *}
      printf '   \033[2m(vigil reported %s %d ms after the change)\033[0m\n' "$what" \
        "$(echo "($stamp * 1000 - $start / 1000000) / 1" | bc)"
      return 0
    fi
    sleep 0.05
  done
  echo "   !! vigil did not report '$pattern' within $seconds s" >&2
  return 1
}
# The incident id in the last line wait_for matched ("incident ID: ...").
matched_incident() { sed -nE 's/.* incident ([^ :]+): .*/\1/p' <<<"$matched"; }
# Reloads vigil and waits until it watches $1 checks.
reload_vigil() {
  local m t
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null
  m=$(mark)
  t=$(date +%s%N)
  tb systemctl reload vigil
  wait_for "configuration reloaded: Watching $1 check" "$m" "$t"
  sleep 0.3 # lets the live view catch up before the next heading
}
# The postmortem draft of incident $1: its summary, mitigations and metrics.
postmortem() {
  local pm
  say "vigil postmortem $1   (summary, mitigations and metrics of the draft)"
  pm=$(tb vigil postmortem "$1")
  awk '/^# Postmortem/ { keep = 1 }
       /^## / { keep = ($2 == "Summary" || $2 == "Mitigations" || $2 == "Metrics") }
       /^_(Drafted|Responders)/ { next }
       keep' <<<"$pm" | cat -s
  printf '   \033[2m(also in the draft: impact, detection with evidence, timeline, and the sections for the responders)\033[0m\n'
}
step() { # step "title" "pattern" command...
  local title=$1 pattern=$2 m t
  shift 2
  say "$title"
  m=$(mark)
  t=$(date +%s%N)
  "$@"
  wait_for "$pattern" "$m" "$t"
  sleep 1.2
}

say "naming the app's service and owner unit, and watching its log (systemctl reload vigil)"
# The HTTP check and the journal check name the same service: one incident for both.
tb sed -i 's/^name = "app"$/name = "app"\nservice = "app"\nteam = "web"\nunit = "sample-app.service"/' \
  /etc/vigil/vigil.toml
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<TOML

[[check]]
name = "app-log"
probe = "journal"
service = "app"
team = "web"
unit = "sample-app.service"
pattern = "connection pool exhausted"
window = "5s"      # recovered once the app has not logged it for 5 s ...
interval = "1s"    # ... checked every second

# Paging: both Alertmanager peers (the cluster deduplicates), with vigil's heartbeat alert.
[[notify]]
name = "central"
kind = "alertmanager"
urls = ["http://$CENTRAL_IP:9093", "http://$CENTRAL_IP:9095"]
heartbeat = true
TOML
m=$(mark); t=$(date +%s%N)
tb systemctl reload vigil
wait_for "configuration reloaded: Watching 2" "$m" "$t"

step "incident 1: the app answers 503 and logs 'connection pool exhausted'" "app: SEV1 firing" \
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/fail
wait_for "app-log: SEV2 firing" "$m" "$t"
say "vigil status   (one incident for the service, holding both facts)"
tb vigil status || true
id=$(tb vigil incidents --open --json | grep -o '"id": "[^"]*"' | cut -d'"' -f4 | head -n 1)
wait_for "page delivered to central#1 (trigger)" 0 "$t" 10 "the page" >/dev/null || true
say "the central site: amtool alert query   (the page, accepted by both Alertmanager peers)"
central_amtool alert query || true
say "its labels and evidence, from Alertmanager's API (GET /api/v2/alerts?filter=incident=...)"
central_alerts "incident=\"$id\"" | python3 -c '
import json, sys
for a in json.load(sys.stdin):
    print("   labels:", " ".join(f"{k}={v}" for k, v in sorted(a["labels"].items())))
    print("   state:", a["annotations"].get("state"), "| status:", a["status"]["state"])
    for line in a["annotations"].get("evidence", "").splitlines()[:6]:
        print("   evidence:", line[:110])
' || true
step "restoring the app" "incident $id: resolved" tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
say "what Alertmanager notified its receiver (one firing, one resolved: the two peers deduplicate)"
for _ in $(seq 40); do
  central_am_notifications | grep -q "resolved VigilIncident $id" && break
  sleep 0.5
done
central_am_notifications | grep -- "$id" | sed 's/^/   peer /' || true
say "vigil postmortem $id   (a blameless draft from the incident's timeline)"
tb vigil postmortem "$id" | sed -n '/^# Postmortem/,/^## Mitigations/p'
step "incident 2: the app gets slow (200ms; latency_warn is 150ms)" "app: SEV3 firing" \
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/slow
step "restoring the app" "app: recovered" tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
step "incident 3: the app dies (systemctl kill -s KILL sample-app)" "app: SEV1 firing" \
  tb systemctl kill -s KILL sample-app
step "restarting the app" "app: recovered" tb systemctl start sample-app

say "incident 4: a worker crash-loops, logging 'connection pool exhausted' (unit + journal probes)"
tb sh -c 'cat > /etc/systemd/system/worker.service' <<'UNIT'
[Unit]
Description=a worker that cannot get a database connection
StartLimitIntervalSec=60
StartLimitBurst=4
[Service]
# Healthy until /run/worker-broken exists; then every start dies after logging the error.
ExecStart=/bin/sh -c '[ -e /run/worker-broken ] || exec sleep infinity; echo "ERROR connection pool exhausted (max=20)"; sleep 0.5; exit 3'
Restart=on-failure
RestartSec=200ms
UNIT
tb systemctl daemon-reload
tb systemctl start worker
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

[[check]]
name = "worker"
probe = "unit"
service = "worker"
unit = "worker.service"
interval = "500ms"

[[check]]
name = "pool"
probe = "journal"
service = "worker"
unit = "worker.service"
pattern = "connection pool exhausted"
[check.severity]
match = "SEV1"
TOML
m=$(mark); t=$(date +%s%N)
tb systemctl reload vigil
wait_for "configuration reloaded: Watching 4" "$m" "$t"
sleep 1
m=$(mark); t=$(date +%s%N)
tb touch /run/worker-broken
tb systemctl kill -s KILL worker
wait_for 'worker\[worker.service\]: SEV1 firing' "$m" "$t"
wait_for "pool: SEV1 firing" "$m" "$t"
wait_for "restart loop" "$m" "$t"
wait_for "systemd no longer restarts it" "$m" "$t"
sleep 1

say "one finding with its structured fields (journalctl -u vigil VIGIL_STATE=firing -o verbose)"
tb journalctl -u vigil VIGIL_STATE=firing VIGIL_FAILURE=refused -n 1 -o verbose --no-pager |
  grep -E '^\s+(MESSAGE|PRIORITY|VIGIL_[A-Z_]+|MESSAGE_ID)=' || true

say "a broken config on 'systemctl reload vigil': refused, the old one keeps running"
tb cp /etc/vigil/vigil.toml /root/vigil.toml.good
tb sed -i 's/^interval = "500ms"/intreval = "500ms"/; s/^latency_crit = "300ms"/latency_crit = "100ms"/' \
  /etc/vigil/vigil.toml
tb vigil check-config /etc/vigil/vigil.toml || true
m=$(mark); t=$(date +%s%N)
tb systemctl reload vigil
wait_for "reload refused" "$m" "$t"
tb cp /root/vigil.toml.good /etc/vigil/vigil.toml
sleep 0.5
tb systemctl status vigil --no-pager --lines=0 | sed -n '1,9p'

# ---------------------------------------------------------------------------------------------
# Mitigations: vigil acts on its own. Every action is guarded (budget, cooldown, circuit,
# allow-list), verified afterwards (the incident's checks must pass again), and written to the
# incident's timeline, so the postmortem tells what was done and whether it helped.

say "mitigation 1: a bad deploy   (/srv/app/releases/{A,B}, current -> A, app.service on :8081)"
tb mkdir -p /srv/app/releases/A /srv/app/releases/B
# Each release's "mode" file stands for its code: A is healthy, B answers 503.
tb sh -c 'echo ok > /srv/app/releases/A/mode; echo fail > /srv/app/releases/B/mode'
tb ln -sfn releases/A /srv/app/current
tb sh -c 'cat > /etc/systemd/system/app.service' <<'UNIT'
[Unit]
Description=an app deployed as /srv/app/releases/NAME and run from /srv/app/current
[Service]
ExecStart=/bin/sh -c 'exec /opt/vigil-test/vigil-sample-app --address 127.0.0.1 --port 8081 --mode "$(cat /srv/app/current/mode)"'
UNIT
tb systemctl daemon-reload
tb systemctl start app
for _ in $(seq 50); do tb curl -fsS -o /dev/null http://127.0.0.1:8081/health && break; sleep 0.1; done
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

# The ladder for app.service: roll the release back; if that does not help, restart it.
[action.rollback.app]
dir = "/srv/app"          # releases/NAME/ and the symlink current -> releases/NAME
unit = "app.service"      # restarted after the switch
verify_within = "30s"     # the checks must pass again within 30 s, or the next rung runs

[action.restart.app]      # restarts app.service
verify_within = "30s"

[[check]]
name = "app-release"      # its own service (the check's name): not the sample app's incident
probe = "http"
unit = "app.service"
url = "http://127.0.0.1:8081/health"
interval = "500ms"
timeout = "400ms"
mitigate = ["rollback:app", "restart:app"]
TOML
tb sed -n '/^# The ladder for app.service/,$p' /etc/vigil/vigil.toml
m=$(mark); t=$(date +%s%N)
reload_vigil 5
# A release is known good once the checks that can roll it back pass on it.
wait_for "release A of app is known good" "$m" "$t"
sleep 1

say "deploying release B by hand   (ln -sfn releases/B /srv/app/current && systemctl restart app)"
m=$(mark); t=$(date +%s%N)
tb sh -c 'ln -sfn releases/B /srv/app/current && systemctl restart app'
wait_for "app-release: SEV1 firing" "$m" "$t" 10 "the failure"
wait_for "rollback app: switched B -> A" "$m" "$t" 20 "the rollback"
id=$(matched_incident)
wait_for "incident $id: verified:" "$m" "$t" 40 "it verified"
wait_for "incident $id: resolved" "$m" "$t" 40 "it resolved"
sleep 1
say "readlink /srv/app/current; curl http://127.0.0.1:8081/health"
tb readlink /srv/app/current
tb curl -sS http://127.0.0.1:8081/health
postmortem "$id"

say "mitigation 2: a stuck web service   (the sample app; a restart frees its connection pool)"
# The sample app's HTTP check gets a ladder of one rung: restart sample-app.service.
tb sed -i 's/^name = "app"$/name = "app"\nmitigate = ["restart:sample-app"]/' /etc/vigil/vigil.toml
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

[action.restart.sample-app]
unit = "sample-app.service"
verify_within = "30s"
TOML
tb sed -n '/^name = "app"$/,/^unit = /p' /etc/vigil/vigil.toml
tb sed -n '/^\[action.restart.sample-app\]/,$p' /etc/vigil/vigil.toml
reload_vigil 5
sleep 1
say "the app gets stuck: 503 'connection pool exhausted' until its process restarts"
m=$(mark); t=$(date +%s%N)
tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/fail
wait_for "app: SEV1 firing" "$m" "$t" 10 "the failure"
wait_for "restarted sample-app.service" "$m" "$t" 20 "the restart"
id=$(matched_incident)
# Verified once both checks pass: the HTTP check at once, the log check when its 5 s window
# has gone by without "connection pool exhausted".
wait_for "incident $id: verified:" "$m" "$t" 40 "it verified"
wait_for "incident $id: resolved" "$m" "$t" 40 "it resolved"
sleep 1
postmortem "$id"

say "mitigation 3: an abusive IP   (a second host on the test-bed's network: 203.0.113.45 and .46)"
testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
ip netns exec "$TB-attacker" ip addr add 203.0.113.46/24 dev eth0
# curl from the attacker host, from address $1, to the sample app on the test-bed.
from() { ip netns exec "$TB-attacker" curl -sS --max-time 3 --interface "$1" http://203.0.113.10:8080/health 2>&1; }
show_from() {
  local out
  out=$(from "$1") || true
  printf '   from %s: %s\n' "$1" "${out:-(no answer)}"
}
say "ufw allow 8080/tcp; ufw --force enable   (inside the test-bed)"
tb ufw allow 8080/tcp
tb ufw --force enable
show_from 203.0.113.45
show_from 203.0.113.46
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

# Three failed SSH logins from one address within 10 s: block it with ufw for 30 s (doubling
# for a repeat offender). Loopback, the host's own addresses and gateways, live SSH sessions
# and [mitigation] allow are never blocked.
[action.block.ssh]
block_for = "30s"

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # who wrote a line, as journald records it (ssh.service on a
uid = 0                    # real host), never identifier = "sshd": any process claims that
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "10s"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
tb sed -n '/^# Three failed SSH logins/,$p' /etc/vigil/vigil.toml
reload_vigil 6
# A connection 203.0.113.45 holds open: ufw lets established connections through, so the block
# must cut it too.
ip netns exec "$TB-attacker" bash -c 'exec 3<>/dev/tcp/203.0.113.10/8080; cat <&3' 2>/dev/null &
held=$!
say "www-data forges five sshd lines naming .46   (systemd-cat -t sshd as uid 33: not ssh.service, ignored)"
for _ in 1 2 3 4 5; do
  testbed_forged_sshd_line "$TB" "Failed password for root from 203.0.113.46 port 22 ssh2"
done
say "203.0.113.45 fails three SSH logins, one as user 'x from 203.0.113.46 port 22'   (logged as root by fake-sshd.service, standing in for sshd)"
m=$(mark); t=$(date +%s%N)
testbed_sshd_line "$TB" "Failed password for invalid user x from 203.0.113.46 port 22 from 203.0.113.45 port 40022 ssh2"
for _ in 1 2; do
  testbed_sshd_line "$TB" "Failed password for root from 203.0.113.45 port 22 ssh2"
done
wait_for 'ssh\[203.0.113.45\]: SEV[0-9] firing' "$m" "$t" 10 "the attack"
wait_for "blocked 203.0.113.45" "$m" "$t" 20 "the block"
id=$(matched_incident)
wait_for "incident $id: verified:" "$m" "$t" 20 "it verified"
say "from the attacker host: .45 is cut off, its neighbour .46 is not"
for _ in $(seq 50); do kill -0 "$held" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$held" 2>/dev/null; then
  echo "   the connection 203.0.113.45 held open: still open"
else
  echo "   the connection 203.0.113.45 held open: closed by vigil"
  held=""
fi
show_from 203.0.113.45
show_from 203.0.113.46
say "ufw status   (inside the test-bed: the rule names its incident)"
tb ufw status
# Resolved once the address has been quiet for the check's window (10 s).
wait_for "incident $id: resolved" "$m" "$t" 30 "it resolved"
sleep 1
postmortem "$id"
say "when block_for (30 s) is over, vigil lifts the block"
wait_for "block of 203.0.113.45 expired: unblocked" "$m" "$t" 45 "the unblock"
show_from 203.0.113.45
tb ufw status
sleep 1

say "the fleet: three agents (a, b, c) watch one shared dependency; each may roll back its app, fleet_max = 1"
testbed_fleet_up "$TB" demo 8081
tb sed -n '/^\[fleet\]/,/^fleet_max/p' /etc/vigil/fleet-a.toml
for _ in $(seq 100); do
  [[ $(tb journalctl -u 'vigil-fleet-*' --no-pager -o cat | grep -c "release A of app is known good") -ge 3 ]] && break
  sleep 0.1
done
say "release B goes out fleet-wide, and at the same moment the shared dependency starts failing"
for host in a b c; do tb ln -sfn releases/B "/srv/fleet-$host/current"; done
fleet_t=$(date +%s%N)
tb curl -fsS -o /dev/null http://127.0.0.1:8081/_mode/fail
for _ in $(seq 300); do
  [[ $(tb journalctl -u 'vigil-fleet-*' --no-pager -o cat | grep -c "started rollback:app") -ge 3 ]] && break
  sleep 0.1
done
say "the three agents' journals, merged   (one rolls back at a time; the others are held by the fleet budget)"
for host in a b c; do
  tb journalctl -u "vigil-fleet-$host" --no-pager -o short-unix --no-hostname \
    --since "@$((fleet_t / 1000000000))" | sed "s/^\([0-9.]*\) [^ ]* /\1 host-$host /"
done | grep -E "held: fleet budget|started rollback:app|did not help" | sort -n |
  while read -r stamp host rest; do
    printf '   %s %s  %s\n' "$(date -d "@$stamp" +%T.%3N)" "$host" "$(cut -c1-140 <<<"${rest#incident * }")"
  done
say "vigil status --socket /run/vigil-fleet-c.sock   (the fleet line)"
tb vigil status --socket /run/vigil-fleet-c.sock | grep -E "vigil|Fleet" || true
for host in a b c; do tb systemctl stop "vigil-fleet-$host"; done
tb systemctl stop etcd shared-dep

say "vigil incidents   (every incident of the demo, from the timelines in /var/lib/vigil/incidents)"
tb vigil incidents
say "the central site: amtool alert query   (vigil's heartbeat, and any incident still open)"
central_amtool alert query || true
say "every notification Alertmanager sent during the demo (peer, status, alert, incident)"
central_am_notifications | sed 's/^/   /' || true

say "stopping vigil"
tb systemctl stop vigil
sleep 0.5
say "demo done; tearing the test-bed down"
