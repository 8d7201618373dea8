#!/usr/bin/env bash
# The demo: vigil detecting real incidents on a real systemd host.
#
# Builds vigil's .deb, boots the test-bed (a minimal Debian with systemd, journald and ufw, in a
# systemd-nspawn container with its own network: nothing on this host is touched), installs the
# .deb there as the sandboxed vigil.service on the shipped default config, starts a small sample
# web service, then breaks it (5xx, slow, killed) and restores it, showing vigil's journal as it
# happens and how long each finding took. Then a broken config on `systemctl reload`, refused
# with file:line:col while the old config keeps running. Everything is torn down at the end,
# also on Ctrl-C.
#
# Usage (as root on a fresh Debian 12 / Ubuntu 22.04+ machine):  scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/deps.sh
vigil_install_deps debhelper dpkg-dev lintian bc
source tests/testbed/testbed.sh

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
TB=vigil-demo
work=$(mktemp -d /tmp/vigil-demo.XXXXXX)
follower=""
cleanup() {
  trap - EXIT INT TERM
  [[ -n "$follower" ]] && kill "$follower" 2>/dev/null || true
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
testbed_up "$TB" "$root/build-deb:/opt/vigil-deb" "$root/build/tests/support:/opt/vigil-test"
tb sh -c 'cat > /etc/systemd/system/sample-app.service' <<'UNIT'
[Unit]
Description=sample web app (the service vigil watches in the demo)
[Service]
# slow mode answers after 200ms: above latency_warn (150ms) in the default vigil.toml.
ExecStart=/opt/vigil-test/vigil-sample-app --port 8080 --slow-ms 200
UNIT
tb systemctl daemon-reload
tb systemctl start sample-app
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
# Waits until the journal has a new line matching $1, then says how long vigil took: the
# entry's own journal timestamp minus the moment of the change (same kernel clock).
wait_for() {
  local pattern=$1 since=$2 start=$3 line
  for _ in $(seq 200); do
    line=$(tail -n +"$((since + 1))" "$work/journal.log" | grep -m 1 -- "$pattern" || true)
    if [[ -n "$line" ]]; then
      local stamp=${line%% *}
      printf '   \033[2m(vigil reported it %d ms after the change)\033[0m\n' \
        "$(echo "($stamp * 1000 - $start / 1000000) / 1" | bc)"
      return 0
    fi
    sleep 0.05
  done
  echo "   !! vigil did not report '$pattern' within 10 s" >&2
  return 1
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
tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

[[check]]
name = "app-log"
probe = "journal"
service = "app"
team = "web"
unit = "sample-app.service"
pattern = "connection pool exhausted"
window = "5s"      # recovered once the app has not logged it for 5 s ...
interval = "1s"    # ... checked every second
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
step "restoring the app" "incident $id: resolved" tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
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

say "vigil incidents   (every incident of the demo, from the timelines in /var/lib/vigil/incidents)"
tb vigil incidents

say "stopping vigil"
tb systemctl stop vigil
sleep 0.5
say "demo done; tearing the test-bed down"
