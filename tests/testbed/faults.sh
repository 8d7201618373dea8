#!/usr/bin/env bash
# The fault campaign (issue 13): vigil's .deb in the nspawn test-bed, as e2e.sh runs it, under
# the faults a production host throws at an agent: kill -9 at random points while it acts, the
# journal rotated, vacuumed and journald restarted while it scans, its state disk full, and its
# state files corrupt at start. Each case asserts what must hold and prints one "RESULT" line
# with its figures (docs/RELIABILITY.md quotes them). The central-server outage and the kill -9
# of a queued page are e2e.sh's page_outbox_faults; a truncated blocks.json is in its
# block_lifecycle.
#
#   faults.sh CASE DEBDIR SUPPORTDIR    one case (e2e.sh setup DEBDIR builds DEBDIR first)
#   faults.sh all DEBDIR SUPPORTDIR     every case
#
# FAULT_ROUNDS (default 20) sets the kill -9 rounds; FAULT_LINES (default 60) the journal lines;
# FAULT_FLOOD (default 1000000) the distinct addresses of the flood; FAULT_OUTAGE (default 600)
# the seconds the central Alertmanager is cut off (CI runs it with 90).
set -euo pipefail
E2E_AS_LIBRARY=1 source "$(cd "$(dirname "$0")" && pwd)/e2e.sh"

FAULT_CASES=(kill9_mid_mitigation journal_churn state_disk_full state_disk_full_pages corrupt_state_at_start
  flood_distinct_addresses central_outage)

# A service that stays up until killed; every start is counted in /var/lib/worker.starts.
setup_worker() {
  tb sh -c 'cat > /etc/systemd/system/worker.service' <<'UNIT'
[Service]
ExecStartPre=/bin/sh -c 'echo start >> /var/lib/worker.starts'
ExecStart=/bin/sleep infinity
UNIT
  tb systemctl daemon-reload
  tb systemctl start worker
}
worker_starts() { tb sh -c 'wc -l < /var/lib/worker.starts'; }

# vigil with a unit check of worker.service whose ladder restarts it; $1: extra [agent] lines.
write_worker_config() {
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<TOML
[agent]
state_dir = "/var/lib/vigil"
$1

[action.restart.worker]
max_runs = 1000
per = "1h"
cooldown = "0s"
verify_within = "5s"

[[check]]
name = "worker"
probe = "unit"
unit = "worker.service"
interval = "500ms"
recover_after = 2
mitigate = ["restart:worker"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the worker config is refused"
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  sleep 1
}

main_pid() { unit_prop vigil MainPID; }
# Waits until systemd has restarted vigil after a kill of PID $1 and it is active again.
wait_vigil_back() {
  wait_until 30 sh -c "p=\$(nsenter --target $(testbed_leader "$TB") --all systemctl show -P MainPID vigil); [ \"\$p\" != $1 ] && [ \"\$p\" != 0 ]" ||
    fail "vigil was not restarted after kill -9 of $1"
  wait_until 20 tb systemctl is-active --quiet vigil || fail "vigil not active after kill -9"
}
no_open_incident() { [[ -z "$(open_ids)" ]]; }

# Every line of every timeline is one JSON object; prints the number of lines.
timelines_are_whole() {
  tb sh -c 'cat /var/lib/vigil/incidents/*.jsonl 2>/dev/null' | python3 -c '
import json, sys
n = 0
for i, line in enumerate(sys.stdin, 1):
    json.loads(line)
    n += 1
print(n)
' || fail "a timeline has a line that is not whole JSON"
}
# The events of timelines whose fields match KEY=VALUE pairs ($@), counted.
timeline_count() {
  tb sh -c 'cat /var/lib/vigil/incidents/*.jsonl 2>/dev/null' | python3 -c '
import json, sys
want = dict(a.split("=", 1) for a in sys.argv[1:])
print(sum(1 for l in sys.stdin if all(json.loads(l).get("fields", {}).get(k) == v for k, v in want.items())))
' "$@"
}

# kill -9 of vigil at a random point of an incident with a restart action (while it detects,
# restarts, or verifies), FAULT_ROUNDS times. What must hold: no action without its record and
# none run twice for one record (vigil's restarts <= recorded starts <= restarts + kills), every
# timeline line whole, and every incident resolved at the end.
case_kill9_mid_mitigation() {
  setup_worker
  write_worker_config ""
  local rounds=${FAULT_ROUNDS:-20} i pid delay manual=0 recovered_by_vigil=0
  for ((i = 1; i <= rounds; i++)); do
    tb systemctl kill -s KILL worker
    delay=$(python3 -c 'import random; print("%.2f" % random.uniform(0, 2.5))')
    sleep "$delay"
    pid=$(main_pid)
    tb kill -KILL "$pid"
    wait_vigil_back "$pid"
    if wait_until 15 tb systemctl is-active --quiet worker; then
      recovered_by_vigil=$((recovered_by_vigil + 1))
    else
      # The kill landed after the restart was recorded and before it reported: the run counts
      # as failed, the one-rung ladder escalates, and a human starts the worker.
      tb systemctl start worker
      manual=$((manual + 1))
    fi
    wait_until 30 no_open_incident || fail "round $i: incidents still open: $(open_ids)"
  done
  local starts restarts started lines
  starts=$(worker_starts)
  restarts=$((starts - 1 - manual))
  started=$(timeline_count action=restart:worker outcome=started)
  lines=$(timelines_are_whole)
  echo "RESULT kill9_mid_mitigation: $rounds kills of vigil (delay 0-2.5 s after the fault)," \
    "$restarts restarts by vigil, $started recorded starts, $manual escalated to a human," \
    "$recovered_by_vigil recovered without one, $lines timeline lines, all whole"
  ((restarts <= started)) || fail "vigil restarted the worker $restarts times but recorded only $started starts"
  ((started <= restarts + rounds)) || fail "$started recorded starts for $restarts restarts and $rounds kills"
  ((restarts >= 1)) || fail "vigil never restarted the worker"
  ! journal_has -u vigil --grep "bad line|corrupt|cannot parse" ||
    fail "vigil found a damaged state file after kill -9: $(tb journalctl -u vigil -q -o cat --grep 'bad line|corrupt|cannot parse' | head -3)"
}

# The journal under a scan: rotated, vacuumed and journald restarted while lines arrive, and
# vigil restarted once in between. The check fires at exactly its count: not before (nothing
# counted twice), and at the last line (nothing missed).
case_journal_churn() {
  local n=${FAULT_LINES:-60}
  add_check "the journal check" <<TOML

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service"
uid = 0
pattern = '^Failed password for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2\$'
key = "ip"
count = $n
window = "1h"
interval = "500ms"
catch_up = "1s"
TOML
  local i churn=0
  for ((i = 1; i < n; i++)); do
    ssh_line 203.0.113.45
    case $((i % 10)) in
      2) tb journalctl --rotate >/dev/null 2>&1; churn=$((churn + 1)) ;;
      4) sleep 1; tb journalctl --vacuum-files=2 >/dev/null 2>&1; churn=$((churn + 1)) ;;
      # journald's start limit (5 in 10 s) would stop it: reset it, and restart every 20 lines.
      6) ((i % 20 == 6)) && { tb systemctl reset-failed systemd-journald; tb systemctl restart systemd-journald; churn=$((churn + 1)); } ;;
      8) ((i < 10)) && { tb systemctl restart vigil; wait_until 10 tb systemctl is-active --quiet vigil; churn=$((churn + 1)); } ;;
    esac
  done
  sleep 3
  (($(firing_count VIGIL_KEY=203.0.113.45) == 0)) ||
    fail "fired before line $n: something was counted twice"
  ssh_line 203.0.113.45
  wait_until 15 journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing ||
    fail "line $n did not fire: a line was missed"
  journal_has -u vigil VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing --grep "$n matches within 1h" ||
    fail "the finding does not say $n matches"
  echo "RESULT journal_churn: $n lines, $churn churn operations (rotate, vacuum, journald restart, vigil restart); fired at line $n exactly"
}

# The state directory on a 2 MiB tmpfs, filled up. vigil keeps running and detecting, refuses
# the action it cannot record, and acts again once space is back.
case_state_disk_full() {
  setup_worker
  tb systemctl stop vigil
  tb sh -c 'rm -rf /var/lib/vigil/* && mount -t tmpfs -o size=2m,mode=0750 tmpfs /var/lib/vigil' ||
    fail "cannot mount a tmpfs on /var/lib/vigil"
  write_worker_config ""
  local pid starts
  pid=$(main_pid)
  tb sh -c 'dd if=/dev/zero of=/var/lib/vigil/fill bs=64k 2>/dev/null; sync' || true
  tb sh -c 'df -k /var/lib/vigil' >&2
  starts=$(worker_starts)
  tb systemctl kill -s KILL worker
  wait_until 10 journal_has -u vigil VIGIL_CHECK=worker VIGIL_STATE=firing || fail "not detected with the disk full"
  wait_until 10 journal_has -u vigil --grep "not run: the run could not be recorded" ||
    fail "the action was not refused with the disk full"
  sleep 3
  (($(worker_starts) == starts)) || fail "vigil restarted the worker although it could not record it"
  [[ $(main_pid) == "$pid" ]] || fail "vigil restarted (crashed?) with the disk full"
  tb vigil status >/dev/null || [[ $? == 1 ]] || fail "vigil status does not answer with the disk full"
  # Space comes back: a human starts the worker; the next crash is restarted and verified.
  tb rm -f /var/lib/vigil/fill
  tb systemctl start worker
  wait_until 30 no_open_incident || fail "the incident did not resolve once space was back: $(open_ids)"
  starts=$(worker_starts)
  tb systemctl kill -s KILL worker
  wait_until 20 journal_has -u vigil --grep "verified: the checks pass again after restart:worker" ||
    fail "no verified restart once space was back"
  (($(worker_starts) == starts + 1)) || fail "expected one restart once space was back"
  [[ $(main_pid) == "$pid" ]] || fail "vigil restarted during the disk-full case"
  local lines
  lines=$(timelines_are_whole)
  echo "RESULT state_disk_full: detected and refused to act with 0 bytes free, no crash (same pid);" \
    "restarted and verified once space was back; $lines timeline lines, all whole"
}

# The state disk full while an incident must be paged: the page reaches Alertmanager from
# memory (before issue 13 it waited for disk space, retried every second), the outbox is written
# again once space is back, and the resolve follows.
case_state_disk_full_pages() {
  page_begin
  tb systemctl stop vigil
  tb sh -c 'rm -rf /var/lib/vigil/* && mount -t tmpfs -o size=2m,mode=0750 tmpfs /var/lib/vigil' ||
    fail "cannot mount a tmpfs on /var/lib/vigil"
  write_page_config <<TOML
[[notify]]
name = "am"
kind = "alertmanager"
urls = ["$CENTRAL_AM_URL_A"]
resend_every = "10s"
timeout = "2s"
TOML
  tb sh -c 'dd if=/dev/zero of=/var/lib/vigil/fill bs=64k 2>/dev/null; sync' || true
  local pid id
  pid=$(main_pid)
  id=$(page_fail_app)
  wait_until 30 am_lists a "$id" || fail "incident $id was not paged with the state disk full"
  journal_has -u vigil --grep "page\(s\) queued in memory only" ||
    fail "vigil did not say the pages are in memory only"
  tb rm -f /var/lib/vigil/fill
  wait_until 10 journal_has -u vigil --grep "outbox written again" ||
    fail "the outbox was not written again once space was back"
  page_recover_app "$id"
  wait_until 30 am_lists_not a "$id" || fail "the resolve of $id did not reach Alertmanager"
  [[ $(main_pid) == "$pid" ]] || fail "vigil restarted during the disk-full paging case"
  echo "RESULT state_disk_full_pages: paged and resolved with 0 bytes free on the state disk; outbox rewritten once space was back"
}

# Every state file damaged while vigil is stopped: a torn last timeline line, garbage in the
# budget ledger, the outbox cut mid-line, a release history that is not JSON. vigil starts,
# names each file and what it does instead, and serves the incident.
case_corrupt_state_at_start() {
  setup_worker
  tb mkdir -p /srv/app/releases/A
  tb ln -sfn releases/A /srv/app/current
  write_worker_config ""
  tb sh -c 'cat >> /etc/vigil/vigil.toml' <<'TOML'

[action.rollback.app]
dir = "/srv/app"
TOML
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  sleep 1
  tb systemctl kill -s KILL worker
  wait_until 20 journal_has -u vigil --grep "verified: the checks pass again after restart:worker" ||
    fail "the restart was not verified"
  wait_until 30 no_open_incident || fail "the incident did not resolve"
  local id
  id=$(tb sh -c 'ls /var/lib/vigil/incidents | sed "s/.jsonl$//"')
  tb systemctl stop vigil
  tb sh -c "printf '{\"at\":\"2026-12-0' >> /var/lib/vigil/incidents/$id.jsonl"
  tb sh -c 'printf "\x00\x01garbage" > /var/lib/vigil/mitigations.json'
  tb sh -c 'printf "{\"seq\":1,\"tar" >> /var/lib/vigil/outbox.jsonl'
  tb sh -c 'mkdir -p /var/lib/vigil/releases && echo "not json" > /var/lib/vigil/releases/app.json'
  local since
  since=$(tb date '+%Y-%m-%d %H:%M:%S')
  tb systemctl start vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not start on damaged state"
  sleep 2
  local log
  log=$(tb journalctl -u vigil -q -o cat --no-pager --since "$since")
  echo "$log" | grep -E "mitigations|outbox|releases|$id" >&2 || true
  grep -q "mitigations.json: .*budgets start from zero" <<<"$log" || fail "the bad ledger was not reported"
  tb test -f /var/lib/vigil/mitigations.json.bad || fail "the bad ledger was not kept for a human"
  grep -q "releases/app.json" <<<"$log" || fail "the bad release history was not reported"
  grep -q "$id" <<<"$log" || fail "the torn timeline of $id was not reported"
  local show
  show=$(tb vigil incident show "$id") || fail "vigil incident show $id fails on a torn timeline"
  grep -q "verified: the checks pass again after restart:worker" <<<"$show" ||
    fail "the torn timeline lost its events"
  # And it still works: a new crash is restarted (the ledger started from zero).
  tb systemctl kill -s KILL worker
  wait_until 20 journal_has -u vigil --since "$since" --grep "verified: the checks pass again after restart:worker" ||
    fail "no verified restart after starting on damaged state"
  echo "RESULT corrupt_state_at_start: 4 damaged files reported by name, ledger kept as .bad," \
    "torn timeline served, the next incident mitigated"
}

rss_anon_kib() { tb sh -c "awk '/^RssAnon:/ {print \$2}' /proc/\$(systemctl show -P MainPID vigil)/status"; }

# A log flood of FAULT_FLOOD distinct addresses, each failing once, through the real journald,
# with a real attacker among them: 203.0.113.45 connects every 110,000 flood lines and fails
# twice each time, 10 failures in all: slower than max_keys (100,000) flood lines, so under pure
# LRU its key was gone after every connection and it never fired. What must hold: vigil's
# anonymous memory stays bounded, it says it dropped keys, the attacker fires at exactly its
# 10th failure and stays firing (not "recovered" because the flood pushed it out), and no flood
# address fires.
case_flood_distinct_addresses() {
  local n=${FAULT_FLOOD:-1000000}
  # journald must keep every line: no rate limit, room for the flood in the volatile journal.
  tb mkdir -p /etc/systemd/journald.conf.d
  tb sh -c 'printf "[Journal]\nRateLimitIntervalSec=0\nRuntimeMaxUse=4G\nSystemMaxUse=4G\n" > /etc/systemd/journald.conf.d/flood.conf'
  tb systemctl restart systemd-journald
  add_check "the journal check" <<'TOML'

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service"
uid = 0
pattern = '^Failed password for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 10
window = "1h"
interval = "500ms"
TOML
  ssh_line 198.51.100.1 # starts fake-sshd
  sleep 1
  local before after t0 t1
  before=$(rss_anon_kib)
  t0=$(date +%s)
  python3 - "$n" <<'PY' | testbed_exec "$TB" sh -c 'cat > /run/fake-sshd.fifo'
import sys
n = int(sys.argv[1])
out = sys.stdout
attacker = 0
for i in range(n):
    # 10.0.0.0/8 holds 16M distinct addresses: each flood address fails exactly once.
    out.write("Failed password for invalid user u%d from 10.%d.%d.%d port 22 ssh2\n"
              % (i, (i >> 16) & 255, (i >> 8) & 255, i & 255))
    if i % 110000 == 0 and attacker < 10:
        for _ in range(2):
            attacker += 1
            out.write("Failed password for root from 203.0.113.45 port 22 ssh2\n")
PY
  wait_until 300 journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing ||
    fail "the attacker among the flood was not detected"
  journal_has -u vigil VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing --grep "10 matches within 1h" ||
    fail "the finding does not say 10 matches"
  # A last burst from a second address marks the end of the flood: once it fired, every line
  # was read.
  local i
  for i in $(seq 10); do ssh_line 198.51.100.99; done
  wait_until 300 journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=198.51.100.99 VIGIL_STATE=firing ||
    fail "the burst after the flood did not fire"
  t1=$(date +%s)
  sleep 2
  after=$(rss_anon_kib)
  (($(firing_count) == 2)) || fail "expected two firing keys (the attacker, the last burst), got $(firing_count)"
  journal_has -u vigil --grep "check 'ssh': more than [0-9]+ keys within the window" ||
    fail "vigil did not say it dropped keys"
  ! journal_has -u vigil --grep "ssh\[203\.0\.113\.45\]: recovered" ||
    fail "the flood pushed the attacker out of the window: its finding recovered"
  local lines
  lines=$(tb journalctl -q -o cat --no-pager -u fake-sshd.service | grep -c "^Failed password" || true)
  echo "RESULT flood_distinct_addresses: $n distinct addresses + 10 attacker lines ($lines lines in the journal)" \
    "scanned in $((t1 - t0)) s; the attacker fired at its 10th line; vigil RssAnon $before -> $after KiB"
  ((after - before < 65536)) || fail "vigil's anonymous memory grew by $((after - before)) KiB under the flood"
}

# The central site cut off for FAULT_OUTAGE seconds while one incident fires and resolves and a
# second one fires and stays open. Then the link comes back: each page and the resolve are
# delivered once (Alertmanager's own counters), in order, and both peers agree.
case_central_outage() {
  local outage=${FAULT_OUTAGE:-600}
  page_begin
  write_page_config <<'TOML'
[[notify]]
name = "am"
kind = "alertmanager"
urls = ["http://10.77.0.1:9093", "http://10.77.0.1:9095"]
resend_every = "10s"
timeout = "2s"
TOML
  central_link_down
  local id1 id2 t0
  t0=$(date +%s)
  id1=$(page_fail_app)
  page_recover_app "$id1"
  id2=$(page_fail_app)
  local left=$((outage - ($(date +%s) - t0)))
  ((left > 0)) && sleep "$left"
  local attempts
  attempts=$(tb journalctl -u vigil -q -o cat --no-pager --grep "page.* failed \(attempt" | wc -l)
  ((attempts > 0)) || fail "no delivery attempt failed during the outage"
  (($(am_received a firing) == 0 && $(am_received a resolved) == 0)) ||
    fail "Alertmanager received something with the link down"
  central_link_up
  local t_up
  t_up=$(date +%s)
  both_have() { am_lists a "$id2" && am_lists b "$id2" && (($(am_received a resolved) >= 1 && $(am_received b resolved) >= 1)); }
  wait_until 330 both_have || fail "the pages queued during the outage were not all delivered"
  local caught_up=$(($(date +%s) - t_up))
  # The first heartbeat through (every 10 s here) wakes the queue: no page waits out its backoff
  # (up to 5 min after a long outage).
  ((caught_up <= 60)) || fail "the queued pages took ${caught_up} s after the link came back"
  sleep "$AM_SETTLE"
  local p
  for p in a b; do
    (($(am_received "$p" resolved) == 1)) || fail "peer $p received the resolve of $id1 $(am_received "$p" resolved) times"
    am_lists_not "$p" "$id1" || fail "incident $id1 is firing on $p after the outage"
    am_lists "$p" "$id2" || fail "incident $id2 is not firing on $p after the outage"
  done
  page_recover_app "$id2"
  wait_until 60 am_lists_not a "$id2" || fail "the resolve of $id2 did not arrive after the outage"
  echo "RESULT central_outage: ${outage} s cut off, $attempts failed attempts logged;" \
    "every page delivered within ${caught_up} s of the link coming back; each resolve received once per peer"
}

cmd=${1:-}
case "$cmd" in
  all)
    for c in "${FAULT_CASES[@]}"; do
      echo "=== $c"
      "$0" "$c" "$2" "$3"
    done
    ;;
  *)
    [[ " ${FAULT_CASES[*]} " == *" $cmd "* ]] || {
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 2
    }
    DEBDIR=$(realpath "${2:?DEBDIR}")
    SUPPORTDIR=$(realpath "${3:?SUPPORTDIR}")
    start_case "$cmd"
    "case_$cmd"
    echo "ok: $cmd"
    ;;
esac
