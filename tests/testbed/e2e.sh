#!/usr/bin/env bash
# End-to-end tests: vigil's .deb installed in a real systemd host (the nspawn test-bed) and run
# as the installed, sandboxed service. Each case boots its own throw-away container and checks,
# on the way out, that the host's netfilter state is what it was.
#
#   e2e.sh setup DEBDIR               build the .deb into DEBDIR and the cached root file system
#   e2e.sh CASE DEBDIR SUPPORTDIR     run one case (SUPPORTDIR holds vigil-sample-app)
#   e2e.sh all DEBDIR SUPPORTDIR      run every case
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/testbed.sh"

CASES=(install_ready security_score reload_invalid_keeps_old watchdog_restarts stop_is_clean
  http_fires_and_recovers peer_network unit_failures unit_bus_restart unit_template
  journal_counts_exactly incident_book incident_cli_access mitigate_rollback mitigate_rollback_app_owned mitigate_restart
  mitigate_block block_lifecycle mitigate_dry_run mitigate_ssh_session hostile_real_sshd protection_source_fails page_alertmanager page_outbox_faults
  page_formats fleet_one_at_a_time)

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
tb() { testbed_exec "$TB" "$@"; }
# Polls CMD every 0.2 s until it succeeds or SECONDS pass. Bounds a hung step, measures nothing.
wait_until() {
  local seconds=$1
  shift
  local i
  for i in $(seq $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}
# grep reads all of journalctl's output: with -q it could exit at the first line, and
# journalctl's next write would die of SIGPIPE and (pipefail) fail the pipeline.
journal_has() { tb journalctl --no-pager -q -o cat "$@" | grep . >/dev/null; }
unit_prop() { tb systemctl show -P "$2" "$1"; }

# Boots a container with the .deb and the sample app available, starts the sample app on
# 127.0.0.1:8080 (what the default /etc/vigil/vigil.toml watches) and installs the .deb.
start_case() {
  local short=${1//_/-}
  TB="e2e-${short:0:24}-$$" # a machine name: letters, digits and '-' only
  NETFILTER_BEFORE=$(testbed_netfilter)
  trap end_case EXIT
  trap 'exit 130' INT TERM
  local binds=("$DEBDIR:/opt/vigil-deb" "$SUPPORTDIR:/opt/vigil-test")
  # etcd for the fleet case: Debian's etcd-server unpacked on the host (scripts/test.sh).
  [[ -n "${VIGIL_TEST_ETCD:-}" ]] && binds+=("$(dirname "$VIGIL_TEST_ETCD"):/opt/etcd")
  testbed_up "$TB" "${binds[@]}"
  tb systemd-run --quiet --unit=sample-app -p Restart=no \
    /opt/vigil-test/vigil-sample-app --address 0.0.0.0 --port 8080
  wait_until 10 tb curl -fsS http://127.0.0.1:8080/health || fail "sample app did not start"
  local deb
  deb=$(cd "$DEBDIR" && ls vigil_*.deb | head -n 1)
  tb dpkg -i "/opt/vigil-deb/$deb" >/dev/null || fail "dpkg -i $deb failed"
  wait_until 20 tb systemctl is-active --quiet vigil || {
    tb systemctl status vigil --no-pager >&2 || true
    fail "vigil.service did not become active after dpkg -i"
  }
}

end_case() {
  local rc=$?
  trap - EXIT
  if ((rc != 0)) && [[ -n "${TB:-}" && -f "$TESTBED_RUN/$TB/leader" ]]; then
    echo "--- journal of vigil.service in $TB ---" >&2
    tb journalctl -u vigil --no-pager -n 40 >&2 || true
  fi
  [[ -n "${TB:-}" ]] && testbed_down "$TB"
  if [[ "$(testbed_netfilter)" != "$NETFILTER_BEFORE" ]]; then
    echo "FAIL: the host's netfilter state changed during the test" >&2
    rc=1
  fi
  exit "$rc"
}

case_install_ready() {
  [[ "$(unit_prop vigil ActiveState)/$(unit_prop vigil SubState)" == active/running ]] ||
    fail "vigil is not active (running)"
  # Type=notify: "active" is reached only through READY=1, whose STATUS= is shown here.
  [[ "$(unit_prop vigil Type)" == notify ]] || fail "unit is not Type=notify"
  unit_prop vigil StatusText | grep -q "Watching 1 check(s)" || fail "no READY status text"
  [[ "$(unit_prop vigil UnitFileState)" == enabled ]] || fail "unit not enabled by the package"
  journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e4 || fail "no 'started' entry"
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "shipped config is invalid"
  tb test -d /var/lib/vigil || fail "StateDirectory missing"
}

case_security_score() {
  local line score
  line=$(tb systemd-analyze security vigil.service --no-pager | grep "Overall exposure level")
  score=$(echo "$line" | sed -E 's/.*: ([0-9.]+) .*/\1/')
  echo "$line"
  awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }' || fail "exposure $score > 3.0"
}

case_reload_invalid_keeps_old() {
  local pid
  pid=$(unit_prop vigil MainPID)
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[[check]]
name = "app"
probe = "http"
url = "ftp://127.0.0.1/"
intreval = "1s"
[check.severity]
http_5xx = "SEV9"
TOML
  tb systemctl reload vigil
  wait_until 10 journal_has -u vigil --grep "reload refused: 3 error" || fail "no 'reload refused'"
  local errors
  errors=$(tb journalctl -u vigil --no-pager -q -o cat --grep '^/etc/vigil/vigil.toml:[0-9]+:[0-9]+: ' | wc -l)
  ((errors == 3)) || fail "expected 3 FILE:LINE:COL errors in the journal, got $errors"
  [[ "$(unit_prop vigil MainPID)" == "$pid" ]] || fail "vigil restarted on a bad reload"
  tb systemctl is-active --quiet vigil || fail "vigil not active after a bad reload"
  # The old config still runs: it sees the app go down.
  tb systemctl stop sample-app
  wait_until 10 journal_has -u vigil VIGIL_CHECK=app VIGIL_STATE=firing ||
    fail "the old configuration stopped watching after a refused reload"
}

case_watchdog_restarts() {
  # A short watchdog so the test is quick; the shipped unit uses 10s.
  tb mkdir -p /etc/systemd/system/vigil.service.d
  tb sh -c 'printf "[Service]\nWatchdogSec=2s\n" > /etc/systemd/system/vigil.service.d/wd.conf'
  tb systemctl daemon-reload
  tb systemctl restart vigil
  local pid
  pid=$(unit_prop vigil MainPID)
  tb kill -STOP "$pid"
  wait_until 20 journal_has -u vigil --grep "Watchdog timeout" || fail "no watchdog timeout"
  wait_until 20 sh -c "[ \"\$(nsenter --target $(testbed_leader "$TB") --all systemctl show -P MainPID vigil)\" != $pid ]" ||
    fail "vigil was not restarted"
  wait_until 20 tb systemctl is-active --quiet vigil || fail "vigil not active after the restart"
  (($(unit_prop vigil NRestarts) >= 1)) || fail "NRestarts did not go up"
}

case_stop_is_clean() {
  tb systemctl stop vigil
  [[ "$(unit_prop vigil ActiveState)" == inactive ]] || fail "not inactive after stop"
  [[ "$(unit_prop vigil Result)" == success ]] || fail "Result=$(unit_prop vigil Result) after stop"
  journal_has -u vigil --grep "^stopped$" || fail "no 'stopped' line"
  ! tb pgrep -x vigil || fail "a vigil process is left running"
}

case_http_fires_and_recovers() {
  wait_until 5 tb vigil test-check app || fail "the app is not healthy to start with"
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/fail
  wait_until 10 journal_has -u vigil VIGIL_CHECK=app VIGIL_SEVERITY=SEV1 VIGIL_STATE=firing \
    VIGIL_HTTP_STATUS=503 || fail "no SEV1 firing entry with VIGIL_HTTP_STATUS=503"
  journal_has -u vigil VIGIL_CHECK=app VIGIL_STATE=firing --grep "connection pool exhausted" ||
    fail "the firing entry lacks the body's evidence"
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
  wait_until 10 journal_has -u vigil VIGIL_CHECK=app VIGIL_STATE=recovered || fail "no recovery"
  tb systemctl kill -s KILL sample-app
  wait_until 10 journal_has -u vigil VIGIL_CHECK=app VIGIL_FAILURE=refused VIGIL_STATE=firing ||
    fail "no firing entry for the killed app"
  tb journalctl -u vigil --no-pager -o cat VIGIL_CHECK=app
}

case_peer_network() {
  testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
  ip netns exec "$TB-attacker" curl -fsS --max-time 5 http://203.0.113.10:8080/health >/dev/null ||
    fail "the attacker namespace cannot reach the container"
  # The veth lives only between the two namespaces, never on the host.
  ! ip link show | grep -q "v-attacker" || fail "a test link appeared on the host"
}

# Appends the check read from stdin to /etc/vigil/vigil.toml, reloads vigil and waits until it
# runs two checks (the shipped one and this one).
add_check() {
  tb sh -c 'cat >> /etc/vigil/vigil.toml'
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "$1: refused by check-config"
  tb systemctl reload vigil
  wait_until 10 journal_has -u vigil --grep "configuration reloaded: Watching 2 check" ||
    fail "vigil did not load $1"
}

# Adds a unit check over victim.service (stays up until killed) and crashy.service (crashes
# every 0.3 s; systemd gives up after 4 starts), and reloads vigil.
add_unit_check() {
  tb sh -c 'cat > /etc/systemd/system/victim.service' <<'UNIT'
[Service]
ExecStart=/bin/sleep infinity
UNIT
  tb sh -c 'cat > /etc/systemd/system/crashy.service' <<'UNIT'
[Unit]
StartLimitIntervalSec=60
StartLimitBurst=4
[Service]
ExecStart=/bin/sh -c 'echo "ERROR connection pool exhausted (max=20)"; sleep 0.3; exit 3'
Restart=on-failure
RestartSec=100ms
UNIT
  tb systemctl daemon-reload
  tb systemctl start victim
  add_check "the unit check" <<'TOML'

[[check]]
name = "units"
probe = "unit"
units = ["victim.service", "crashy.service", "dbus.service"]
interval = "500ms"
TOML
}

case_unit_failures() {
  add_unit_check
  # crashy is not started yet: inactive while expected active.
  wait_until 10 journal_has -u vigil VIGIL_KEY=crashy.service VIGIL_FAILURE=inactive ||
    fail "an inactive unit was not reported"
  # A killed unit (Restart=no) is failed.
  tb systemctl kill -s KILL victim
  wait_until 10 journal_has -u vigil VIGIL_CHECK=units VIGIL_KEY=victim.service \
    VIGIL_FAILURE=failed VIGIL_SEVERITY=SEV1 || fail "the killed unit was not seen as failed"
  # A crash loop: crashed, then a loop, then systemd gives up (start-limit-hit).
  tb systemctl start crashy || true
  wait_until 20 journal_has -u vigil VIGIL_KEY=crashy.service VIGIL_FAILURE=restart_loop ||
    fail "the restart loop was not seen"
  wait_until 20 journal_has -u vigil VIGIL_KEY=crashy.service VIGIL_FAILURE=start_limit ||
    fail "start-limit-hit was not seen"
  local evidence
  evidence=$(tb journalctl -u vigil -o json --no-pager VIGIL_KEY=crashy.service |
    grep -o '"VIGIL_EVIDENCE":"[^"]*"') || true
  grep -q 'connection pool exhausted' <<<"$evidence" || {
    echo "evidence: $evidence" >&2
    fail "the unit's last journal lines are not in the evidence"
  }
  # Recovery: victim back up.
  tb systemctl start victim
  wait_until 10 journal_has -u vigil VIGIL_KEY=victim.service VIGIL_STATE=recovered ||
    fail "the restarted unit did not recover"
  tb journalctl -u vigil --no-pager -o cat VIGIL_CHECK=units
}

case_unit_bus_restart() {
  add_unit_check
  local pid
  pid=$(unit_prop vigil MainPID)
  tb systemctl restart dbus
  wait_until 20 journal_has -u vigil --grep "reconnected to the system bus" ||
    fail "vigil did not reconnect after dbus restarted"
  [[ "$(unit_prop vigil MainPID)" == "$pid" ]] || fail "vigil restarted instead of reconnecting"
  tb systemctl kill -s KILL victim
  wait_until 15 journal_has -u vigil VIGIL_KEY=victim.service VIGIL_FAILURE=failed ||
    fail "after the reconnect, a killed unit was not seen"
}

# A glob over a template's instances: instances found at start and later ones are watched.
case_unit_template() {
  tb sh -c 'printf "[Service]\nExecStart=/bin/sleep infinity\n" > /etc/systemd/system/worker@.service'
  tb systemctl daemon-reload
  tb systemctl start worker@1 worker@2
  add_check "the glob unit check" <<'TOML'

[[check]]
name = "workers"
probe = "unit"
unit = "worker@*.service"
interval = "500ms"
TOML
  sleep 1
  tb systemctl kill -s KILL worker@2
  wait_until 10 journal_has -u vigil VIGIL_CHECK=workers VIGIL_KEY=worker@2.service \
    VIGIL_FAILURE=failed || fail "a killed instance of the template was not seen"
  # An instance started after vigil: picked up by the next listing (every 10 s).
  tb systemctl start worker@3
  sleep 11
  tb systemctl kill -s KILL worker@3
  wait_until 10 journal_has -u vigil VIGIL_KEY=worker@3.service VIGIL_FAILURE=failed ||
    fail "an instance started later was not watched"
  ! journal_has -u vigil VIGIL_KEY=worker@1.service VIGIL_STATE=firing ||
    fail "the healthy instance fired"
}

# A line as sshd writes it (journald records the unit and uid 0), and one forged by www-data.
sshd_says() { testbed_sshd_line "$TB" "$1"; }
ssh_line() { sshd_says "Failed password for root from $1 port 22 ssh2"; }
forged_line() { testbed_forged_sshd_line "$TB" "$1"; }
firing_count() {
  tb journalctl -u vigil -q -o cat --no-pager VIGIL_CHECK=ssh VIGIL_STATE=firing "$@" | wc -l
}

# Counts per IP through the real journald, across a vigil restart, a journal rotation and a
# journald restart: the 10th line fires, not the 9th (nothing counted twice) and not the 11th
# (nothing missed).
case_journal_counts_exactly() {
  add_check "the journal check" <<'TOML'

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # stands in for ssh.service (testbed_sshd_line)
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 10
window = "1h"
interval = "500ms"
# A short catch-up: only the saved position (and the warm-up from it) can bring back the lines
# seen before the restart.
catch_up = "1s"
TOML
  local i
  for i in 1 2 3 4 5 6; do ssh_line 203.0.113.45; done
  ssh_line 198.51.100.7
  ssh_line ::ffff:198.51.100.7 # the same address, IPv4-mapped
  ssh_line '1.2.3.4;reboot'    # hostile: never a key, never passed on
  wait_until 10 journal_has -u vigil --grep "is not an IP address" ||
    fail "the hostile line was not rejected"
  tb test -s /var/lib/vigil/journal/ssh.cursor || fail "no saved journal position"

  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  for i in 7 8 9; do ssh_line 203.0.113.45; done
  tb journalctl --rotate
  tb systemctl restart systemd-journald
  sleep 2
  (($(firing_count VIGIL_KEY=203.0.113.45) == 0)) ||
    fail "fired before the 10th line: something was counted twice"
  ssh_line 203.0.113.45 # the 10th
  wait_until 10 journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing ||
    fail "the 10th line did not fire: a line was missed"
  journal_has -u vigil VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing --grep "10 matches within 1h" ||
    fail "the finding does not say 10 matches"
  (($(firing_count VIGIL_KEY=198.51.100.7) == 0)) || fail "198.51.100.7 fired with 2 matches"
  (($(firing_count) == 1)) || fail "expected exactly one firing entry"
  tb vigil replay --config /etc/vigil/vigil.toml ssh | tee /dev/stderr | grep "203.0.113.45  10" >/dev/null ||
    fail "vigil replay does not count 10 for 203.0.113.45"
}

# The seed's first scenario, as the issue's "done when": the sample app answers 503 while its
# unit logs "ERROR connection pool exhausted (max=20)". The HTTP check and the journal check of
# the same service give exactly one SEV1 incident holding both facts; it survives kill -9 of
# vigil with the same id and timeline; after recovery the postmortem has both facts and the
# detection time.
write_app_config() {
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"

[[check]]
name = "app-http"
probe = "http"
service = "app"
team = "payments"
unit = "sample-app.service"
url = "http://127.0.0.1:8080/health"
interval = "500ms"
timeout = "400ms"
recover_after = 2

[[check]]
name = "app-log"
probe = "journal"
service = "app"
team = "payments"
unit = "sample-app.service"
pattern = "connection pool exhausted"
window = "5s"
interval = "500ms"
recover_after = 1
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the app config is refused"
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  wait_until 10 tb vigil status || fail "vigil status does not answer (or the app is unhealthy)"
}

open_ids() { tb vigil incidents --open --json | grep -o '"id": "[^"]*"' | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//'; }
incident_sev() { tb vigil incidents | awk -v id="$1" '$1 == id {print $2}'; }
incident_is() { [[ $(incident_sev "$1") == "$2" ]]; }

case_incident_book() {
  write_app_config
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/fail
  local ids id
  wait_until 15 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e6 ||
    fail "no incident was opened"
  # Both checks fire; they must land in the one incident of service app.
  wait_until 15 journal_has -u vigil VIGIL_CHECK=app-log VIGIL_STATE=firing ||
    fail "the journal check did not fire on the app's log line"
  # The journal line can beat the HTTP check's confirmation: wait for both before judging severity.
  wait_until 15 journal_has -u vigil VIGIL_CHECK=app-http VIGIL_STATE=firing ||
    fail "the HTTP check did not fire on the 503"
  ids=$(open_ids)
  [[ $(wc -w <<<"$ids") == 1 ]] || fail "expected exactly one open incident, got: $ids"
  id=$ids
  wait_until 5 incident_is "$id" SEV1 || fail "incident $id is not SEV1 (it is $(incident_sev "$id"))"
  local status
  status=$(tb vigil status) && fail "vigil status exits 0 with an incident open"
  echo "$status"
  grep -q "^$id  *SEV1  *triaged" <<<"$status" || fail "vigil status does not show $id as SEV1"
  local show
  show=$(tb vigil incident show "$id")
  grep -q "503" <<<"$show" || fail "the incident's evidence lacks the 503"
  grep -q "ERROR connection pool exhausted (max=20)" <<<"$show" ||
    fail "the incident's evidence lacks the journal line"
  grep -q "sample-app.service: active (running)" <<<"$show" ||
    fail "the incident's evidence lacks the owner unit's state"

  # kill -9 mid-incident: systemd restarts vigil, which continues the same incident.
  local lines_before pid
  lines_before=$(tb sh -c "wc -l < /var/lib/vigil/incidents/$id.jsonl")
  pid=$(unit_prop vigil MainPID)
  tb kill -KILL "$pid"
  wait_until 20 sh -c "[ \"\$(nsenter --target $(testbed_leader "$TB") --all systemctl show -P MainPID vigil)\" != $pid ]" ||
    fail "vigil was not restarted after kill -9"
  wait_until 20 journal_has -u vigil --grep "incident $id .* is still open: continuing it" ||
    fail "vigil did not continue incident $id after kill -9"
  [[ $(open_ids) == "$id" ]] || fail "after kill -9: open incidents are '$(open_ids)', not $id"
  (($(tb sh -c "wc -l < /var/lib/vigil/incidents/$id.jsonl") >= lines_before)) ||
    fail "the timeline lost lines across kill -9"

  # Recovery: both checks must recover (the journal window of 5 s runs out) before it resolves.
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
  wait_until 30 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8 VIGIL_INCIDENT="$id" ||
    fail "incident $id was not resolved after recovery"
  [[ -z "$(open_ids)" ]] || fail "incidents still open after recovery: $(open_ids)"
  (($(tb sh -c 'ls /var/lib/vigil/incidents | wc -l') == 1)) ||
    fail "expected one incident file, got: $(tb ls /var/lib/vigil/incidents)"
  local pm
  pm=$(tb vigil postmortem "$id")
  echo "$pm" | head -n 60
  grep -q "503" <<<"$pm" || fail "the postmortem lacks the 503"
  grep -q "ERROR connection pool exhausted (max=20)" <<<"$pm" || fail "the postmortem lacks the journal line"
  grep -q "Time to detect" <<<"$pm" || fail "the postmortem lacks the detection time"
  grep -q "^## Timeline" <<<"$pm" || fail "the postmortem has no timeline"
  grep -q "^## Root cause" <<<"$pm" || fail "the postmortem has no root-cause section"
  # The same postmortem while vigil is stopped, from the timeline file.
  tb systemctl stop vigil
  # Output first, then grep: with pipefail, grep -q leaving early could SIGPIPE the writer.
  pm=$(tb vigil postmortem "$id") || fail "vigil postmortem failed while vigil is stopped"
  grep -q "ERROR connection pool exhausted (max=20)" <<<"$pm" ||
    fail "vigil postmortem does not work while vigil is stopped"
}

# The control socket is for root and the vigil group only; maintenance windows work and end.
case_incident_cli_access() {
  tb test -S /run/vigil/control.sock || fail "no control socket"
  [[ $(tb stat -c '%a %G' /run/vigil/control.sock) == "660 vigil" ]] ||
    fail "control socket is $(tb stat -c '%a %G' /run/vigil/control.sock), not 660 vigil"
  tb useradd --no-create-home ops-member -G vigil
  tb useradd --no-create-home outsider
  tb runuser -u ops-member -- vigil status >/dev/null || fail "a vigil group member cannot run vigil status"
  local out
  out=$(tb runuser -u outsider -- vigil status 2>&1) && fail "an outsider could run vigil status"
  grep -q "permission denied" <<<"$out" || fail "the outsider's error does not say why: $out"
  tb vigil maintain --for 2s app | grep "until" >/dev/null || fail "vigil maintain failed"
  local status
  status=$(tb vigil status) || true
  grep -q "^Maintenance: app until" <<<"$status" || fail "vigil status does not show the window: $status"
  out=$(tb vigil maintain --for 1m no-such-check 2>&1) && fail "maintain accepted an unknown check"
  grep -q "no check named 'no-such-check'" <<<"$out" || fail "maintain's refusal does not say why: $out"
  wait_until 15 journal_has -u vigil --grep "maintenance window ended" ||
    fail "the maintenance window did not end by itself"
}

# ---------------------------------------------------------------------------------------------
# Mitigations (issue 6): real symlinks, real systemd jobs, real ufw inside the container.

# An app deployed as /srv/app/releases/{A,B} with /srv/app/current -> releases/A. Release A is
# healthy; release B answers 503 ("mode" file). app.service reads the mode of `current` at start.
setup_releases() {
  tb mkdir -p /srv/app/releases/A /srv/app/releases/B
  tb sh -c 'echo ok > /srv/app/releases/A/mode; echo fail > /srv/app/releases/B/mode'
  tb ln -sfn releases/A /srv/app/current
  tb sh -c 'cat > /etc/systemd/system/app.service' <<'UNIT'
[Service]
ExecStart=/bin/sh -c 'exec /opt/vigil-test/vigil-sample-app --address 127.0.0.1 --port 8081 --mode "$(cat /srv/app/current/mode)"'
UNIT
  tb systemctl daemon-reload
  tb systemctl start app
  wait_until 10 tb curl -fsS http://127.0.0.1:8081/health || fail "app (release A) did not start"
}

# The vigil config for the rollback scenarios; $1 = extra [agent] lines (e.g. dry_run = true).
write_rollback_config() {
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<TOML
[agent]
state_dir = "/var/lib/vigil"
$1

[action.rollback.app]
dir = "/srv/app"
unit = "app.service"
verify_within = "30s"

[action.restart.app]
verify_within = "30s"

[[check]]
name = "app"
probe = "http"
service = "app"
unit = "app.service"
url = "http://127.0.0.1:8081/health"
interval = "500ms"
timeout = "400ms"
recover_after = 2
mitigate = ["rollback:app", "restart:app"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the rollback config is refused"
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  wait_until 10 journal_has -u vigil --grep "release A of app is known good" ||
    fail "release A was not recorded as known good"
}

# Deploys release B by hand, as a careless deploy script would.
deploy_b() {
  tb ln -sfn releases/B /srv/app/current
  tb systemctl restart app
}

case_mitigate_rollback() {
  setup_releases
  write_rollback_config ""
  # A reader that must never find `current` missing while vigil switches it.
  tb systemd-run --quiet --unit=reader /bin/sh -c \
    'while :; do [ -e /srv/app/current/mode ] || echo MISSING >> /run/reader.log; done'
  deploy_b
  wait_until 30 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8 ||
    fail "the bad deploy's incident was not resolved"
  local id
  id=$(tb sh -c 'ls /var/lib/vigil/incidents | sed "s/.jsonl$//"')
  [[ $(wc -w <<<"$id") == 1 ]] || fail "expected one incident, got: $id"
  [[ $(tb readlink /srv/app/current) == releases/A ]] ||
    fail "current is $(tb readlink /srv/app/current), not releases/A"
  tb curl -fsS http://127.0.0.1:8081/health >/dev/null || fail "the app is not healthy after rollback"
  local show
  show=$(tb vigil incident show "$id")
  echo "$show" | grep -i -E "mitig|rolled|verif|resolved" >&2
  grep -q "rolled back app from B to A" <<<"$show" || grep -q "B -> A" <<<"$show" ||
    fail "the timeline does not say from B to A"
  grep -q "verified: the checks pass again after rollback:app" <<<"$show" ||
    fail "the rollback was not verified"
  tb systemctl stop reader
  tb test ! -s /run/reader.log || fail "a reader saw current missing: $(tb cat /run/reader.log | wc -l) times"
  grep -q "rollback" <<<"$(tb vigil postmortem "$id")" || fail "the postmortem does not mention the rollback"
}

# The usual deploy: the app's user owns DIR and releases/ (Capistrano, a CI job as www-data).
# vigil has no CAP_DAC_OVERRIDE, so root cannot write there; it switches `current` as the
# directory's owner instead (a transient unit with User=, started over D-Bus), and nothing of that
# helper is left behind.
case_mitigate_rollback_app_owned() {
  setup_releases
  tb chown -R www-data:www-data /srv/app
  tb chmod 0755 /srv/app /srv/app/releases
  write_rollback_config ""
  deploy_b
  wait_until 30 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8 ||
    fail "the bad deploy's incident was not resolved (rollback of a www-data tree)"
  [[ $(tb readlink /srv/app/current) == releases/A ]] ||
    fail "current is $(tb readlink /srv/app/current), not releases/A"
  [[ $(tb stat -c %U /srv/app/current) == www-data ]] ||
    fail "the new current link is owned by $(tb stat -c %U /srv/app/current), not www-data"
  local left
  left=$(tb find /srv/app -maxdepth 1 -name '.current.*')
  [[ -z $left ]] || fail "temporary links left behind: $left"
  local id show
  id=$(tb sh -c 'ls /var/lib/vigil/incidents | sed "s/.jsonl$//"')
  show=$(tb vigil incident show "$id")
  grep -q "B -> A" <<<"$show" || fail "the timeline does not say B -> A"
  grep -q "as www-data" <<<"$show" || fail "the timeline does not say the switch ran as www-data"
  grep -q "verified: the checks pass again after rollback:app" <<<"$show" ||
    fail "the rollback was not verified"
  local units
  units=$(tb systemctl list-units --all --no-legend 'vigil-switch-*')
  [[ -z $units ]] || fail "the switch helper's unit was left behind: $units"
}

case_mitigate_dry_run() {
  setup_releases
  write_rollback_config "dry_run = true"
  deploy_b
  wait_until 20 journal_has -u vigil --grep "dry-run: rollback app: would switch B -> A" || fail "no 'would do' in dry-run"
  sleep 2
  [[ $(tb readlink /srv/app/current) == releases/B ]] || fail "dry-run changed current"
  local starts
  starts=$(tb journalctl -q -o cat -u app --no-pager | grep -c "^Started" || true)
  ((starts == 2)) || fail "dry-run restarted app.service ($starts starts, expected 2)"
  local id
  id=$(open_ids)
  grep -q "would switch B -> A, then restart app.service" <<<"$(tb vigil incident show "$id")" ||
    fail "the timeline does not record what would have been done"
}

# A crashed service is restarted and verified. One that dies again right after its restart is
# restarted once more, not verified, and vigil escalates instead of looping; once its budget
# (max_runs = 2 per hour, kept across vigil's restarts) is spent, a new crash gets no restart.
case_mitigate_restart() {
  tb sh -c 'cat > /etc/systemd/system/worker.service' <<'UNIT'
[Service]
ExecStartPre=/bin/sh -c 'echo start >> /var/lib/worker.starts'
ExecStart=/bin/sh -c 'if [ -e /run/worker.crash ]; then sleep 0.2; exit 3; fi; exec sleep infinity'
UNIT
  tb systemctl daemon-reload
  tb systemctl start worker
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"
metrics = "127.0.0.1:9717"

[action.restart.worker]
max_runs = 2
per = "1h"
cooldown = "0s"
verify_within = "8s"

[[check]]
name = "worker"
probe = "unit"
unit = "worker.service"
interval = "500ms"
recover_after = 2
mitigate = ["restart:worker"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the restart config is refused"
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  sleep 1
  starts() { tb sh -c 'wc -l < /var/lib/worker.starts'; }
  # 1. A crash: restarted, verified, resolved.
  tb systemctl kill -s KILL worker
  wait_until 30 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8 ||
    fail "the crash was not mitigated and resolved"
  tb systemctl is-active --quiet worker || fail "worker is not running after the restart"
  journal_has -u vigil --grep "verified: the checks pass again after restart:worker" ||
    fail "the restart was not verified"
  (($(starts) == 2)) || fail "worker started $(starts) times; expected 2"
  # The metrics count the steps, the verification (written when the checks pass again) too.
  local metrics outcome
  metrics=$(tb curl -fsS http://127.0.0.1:9717/metrics) || fail "no metrics"
  for outcome in started ok verified; do
    grep -qx "vigil_mitigations_total{action=\"restart:worker\",outcome=\"$outcome\"} 1" <<<"$metrics" ||
      fail "vigil_mitigations_total does not count one '$outcome': $(grep '^vigil_mitigations' <<<"$metrics")"
  done
  # 2. It now dies 0.2 s after every start: one restart, not verified, escalated; no storm.
  tb touch /run/worker.crash
  tb systemctl kill -s KILL worker
  wait_until 40 journal_has -u vigil --grep "escalated: the only mitigation did not help" ||
    fail "vigil did not escalate the crash loop"
  sleep 3
  (($(starts) == 3)) || fail "worker started $(starts) times; expected 3 (no restart storm)"
  local id
  id=$(open_ids)
  [[ $(wc -w <<<"$id") == 1 ]] || fail "expected one open incident, got: $id"
  # 3. A human acks (closing the circuit), fixes and starts it; vigil restarts meanwhile.
  tb vigil ack "$id" >/dev/null || fail "vigil ack $id failed"
  journal_has -u vigil --grep "circuit closed by the ack" || fail "the ack did not close the circuit"
  tb systemctl restart vigil
  tb rm /run/worker.crash
  tb systemctl start worker
  wait_until 20 tb sh -c "[ -z \"\$(vigil incidents --open --json | grep '\"id\"')\" ]" ||
    fail "the incident did not resolve once the worker ran"
  # 4. Another crash within the hour: the budget (2 runs, persisted) is spent.
  tb systemctl kill -s KILL worker
  wait_until 20 journal_has -u vigil --grep "budget exhausted: restart:worker ran 2 time" ||
    fail "the budget was not enforced after vigil's restart"
  sleep 3
  (($(starts) == 4)) || fail "worker started $(starts) times; expected 4 (the test's 2, vigil's 2)"
}

attacker_curl() { ip netns exec "$TB-attacker" curl -fsS --max-time 3 --interface "$1" http://203.0.113.10:8080/health; }

case_mitigate_block() {
  testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
  ip netns exec "$TB-attacker" ip addr add 203.0.113.46/24 dev eth0
  ip netns exec "$TB-attacker" ip addr add 203.0.113.47/24 dev eth0
  tb ufw allow 8080/tcp >/dev/null
  tb ufw --force enable >/dev/null
  attacker_curl 203.0.113.45 >/dev/null || fail ".45 cannot reach the app before the test"
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"

[mitigation]
allow = ["203.0.113.47"]

[action.block.ssh]
block_for = "20s"

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # stands in for ssh.service (testbed_sshd_line)
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "10s"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the block config is refused"
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw" || fail "no reconcile at start"
  # An open connection from .45 that the block must cut (ufw accepts ESTABLISHED first).
  ip netns exec "$TB-attacker" bash -c 'exec 3<>/dev/tcp/203.0.113.10/8080; cat <&3' &
  local held=$!
  sleep 0.5
  kill -0 "$held" || fail "could not hold a connection open from .45"
  # Hostile lines: never reach a shell, never block a wrong address.
  sshd_says 'Failed password for root from 1.2.3.4; reboot port 22 ssh2'
  sshd_says 'Failed password for root from $(id) port 22 ssh2'
  sshd_says "$(printf 'Failed password for root from 203.0.113.9\377 port 22 ssh2')"
  sshd_says "Failed password for root from $(head -c 10000 /dev/zero | tr '\0' a) port 22 ssh2"
  # Issue 13: user names that name .46, and lines forged by www-data as "sshd", never aim a
  # block at .46; the injected lines still count for .45, the address sshd wrote last.
  local i
  for i in 1 2 3 4 5; do
    forged_line 'Failed password for root from 203.0.113.46 port 22 ssh2'
  done
  sshd_says 'Failed password for invalid user x from 203.0.113.46 port 22 from 203.0.113.45 port 5555 ssh2'
  ssh_line 203.0.113.45
  for i in 1 2 3; do
    ssh_line 203.0.113.47
    ssh_line '1.2.3.4;reboot'
  done
  # The third for .45, the one that fires: its line (the evidence) holds ANSI escapes.
  sshd_says "$(printf 'Failed password for invalid user \033[2J\033]0;x\007 from 203.0.113.46 port 22 from 203.0.113.45 port 5556 ssh2')"
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail ".45 was not blocked"
  ! attacker_curl 203.0.113.45 >/dev/null 2>&1 || fail ".45 still gets an answer after the block"
  attacker_curl 203.0.113.46 >/dev/null || fail ".46 was blocked too"
  wait_until 10 journal_has -u vigil --grep "never blocked: 203.0.113.47 is allow-listed" ||
    fail "the allow-listed address was not refused with its reason"
  attacker_curl 203.0.113.47 >/dev/null || fail "the allow-listed .47 was blocked"
  wait_until 5 sh -c "! kill -0 $held" || fail "the established connection from .45 survived the block"
  local rules
  rules=$(tb ufw status)
  echo "$rules"
  ! grep -q -E "1\.2\.3\.4|reboot|id\)|aaaa" <<<"$rules" || fail "a hostile line reached ufw"
  ! grep -q "203.0.113.46" <<<"$rules" || fail "a forged or injected line blocked .46"
  ! journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=203.0.113.46 ||
    fail "a forged or injected line was counted for .46"
  # The ANSI escapes in the user name never reach a terminal through the CLI.
  local shown
  shown=$(tb vigil incidents; tb vigil status || true)
  ! grep -q $'\033' <<<"$shown" || fail "the CLI printed a raw ESC from a journal line"
  shown=$(tb sh -c 'for f in /var/lib/vigil/incidents/*.jsonl; do vigil incident show "$(basename "$f" .jsonl)"; done')
  grep -q '\\x1b\[2J' <<<"$shown" || fail "the injected line is not in the evidence, escaped"
  ! grep -q $'\033' <<<"$shown" || fail "vigil incident show printed a raw ESC"
  (($(grep -c "203.0.113" <<<"$rules") == 1)) || fail "expected exactly one rule for 203.0.113.x"
  # Restart mid-block: reconciled, no duplicate rule.
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw: 1 active" ||
    fail "the block was not reconciled after a restart"
  rules=$(tb ufw status)
  (($(grep -c "203.0.113.45" <<<"$rules") == 1)) || fail "duplicate rule after restart: $rules"
  # Expiry: unblocked after block_for (20s).
  wait_until 40 journal_has -u vigil --grep "block of 203.0.113.45 expired: unblocked" ||
    fail "the block did not expire"
  rules=$(tb ufw status)
  ! grep -q "203.0.113.45" <<<"$rules" || fail "the rule is still there after expiry: $rules"
  attacker_curl 203.0.113.45 >/dev/null || fail ".45 is still blocked after expiry"
  kill "$held" 2>/dev/null || true
}

# Issue 13: the admin's firewall and the package's lifecycle. An address ufw allows from a given
# source is never blocked; a block that expired while vigil was stopped is lifted at the next
# start; removing the package lifts vigil's blocks and leaves the admin's own rules alone.
case_block_lifecycle() {
  tb ufw allow 8080/tcp >/dev/null
  tb ufw allow proto tcp from 203.0.113.48 to any port 5432 >/dev/null
  tb ufw deny from 192.0.2.99 >/dev/null # the admin's own deny: must survive the removal
  # Tagged "vigil:" by hand, in a shape vigil never writes (a network): never touched, warned.
  tb ufw deny from 198.51.100.0/24 comment 'vigil: by hand' >/dev/null
  tb ufw --force enable >/dev/null
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"

[action.block.ssh]
block_for = "5s"

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # stands in for ssh.service (testbed_sshd_line)
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "1m"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw" || fail "no reconcile at start"
  journal_has -u vigil --grep 'tagged "vigil:" but not of the shape vigil writes.*198\.51\.100\.0/24' ||
    fail "the hand-tagged rule was not warned about"
  tb sh -c 'ufw status | grep -q "198.51.100.0/24"' || fail "vigil touched the hand-tagged rule"
  tb ufw delete deny from 198.51.100.0/24 >/dev/null
  local i
  for i in 1 2 3; do
    ssh_line 203.0.113.48
    ssh_line 203.0.113.45
  done
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail ".45 was not blocked"
  wait_until 10 journal_has -u vigil --grep \
    "never blocked: 203\.0\.113\.48 is allowed by the firewall \(ufw: allow tcp 5432 from 203\.0\.113\.48/32\)" ||
    fail "the address ufw allows was not refused with its reason"
  ! tb sh -c 'ufw status | grep "203.0.113.48" | grep -q DENY' || fail "ufw's allowed .48 was blocked"
  # Stopped before the 5 s block ends: the rule stays (nobody lifts it) ...
  tb systemctl stop vigil
  sleep 7
  tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail "the rule went away while vigil was stopped"
  # ... until the next start, which lifts it before anything else.
  tb systemctl start vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw: 0 active, 1 stale removed" ||
    fail "the block that expired while vigil was stopped was not lifted at start"
  ! tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail "the expired rule is still there after start"
  # A fresh block, then the package goes: vigil's rules go with it, the admin's stay.
  for i in 1 2 3; do ssh_line 203.0.113.46; done
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.46"' || fail ".46 was not blocked"
  # A truncated blocks.json at start: logged, and vigil's rule in ufw is kept, not lifted.
  tb systemctl stop vigil
  tb sh -c 'head -c 20 /var/lib/vigil/blocks.json > /tmp/b && cat /tmp/b > /var/lib/vigil/blocks.json'
  tb systemctl start vigil
  wait_until 10 journal_has -u vigil --grep "blocks.json" ||
    fail "the truncated blocks.json was not reported"
  wait_until 10 journal_has -u vigil --grep "rule for 203\.0\.113\.46 .* was not in the block list .*: kept, until" ||
    fail "vigil's rule for .46 was not adopted after blocks.json was lost"
  tb sh -c 'ufw status | grep "203.0.113.46" | grep -q DENY' ||
    fail "a truncated blocks.json unblocked .46"
  tb dpkg -r vigil >/dev/null || fail "dpkg -r vigil failed"
  local rules
  rules=$(tb ufw status)
  echo "$rules"
  ! grep -q "# vigil:" <<<"$rules" || fail "a vigil rule survived the package's removal"
  grep -q "192.0.2.99" <<<"$rules" || fail "the admin's own deny rule was removed"
  grep -q "203.0.113.48" <<<"$rules" || fail "the admin's allow rule was removed"
}

# The peer of a live, authenticated SSH session is never blocked, even when its own address
# brute-forces: a real key-only root login over sshd from .46 (a pty, so both logind, through
# pam_systemd, and utmp hold it). The same burst from .45 is blocked; .46's is refused with its
# reason and the admin's session survives. Once the session has ended, .46 is blocked like anyone.
# Then, without pam_systemd (no logind session), utmp alone protects .47's session.
SSH_KEYDIR=""
SSH_PID=""
ssh_session_cleanup() {
  if [[ -n "$SSH_PID" ]]; then kill "$SSH_PID" 2>/dev/null || true; fi
  if [[ -n "$SSH_KEYDIR" ]]; then rm -rf "$SSH_KEYDIR"; fi
}
# Opens a root session from the attacker namespace's address $1, with a pty (so sshd writes a
# utmp USER_PROCESS record), running until ssh_session_end; its client's pid is SSH_PID.
ssh_session_open() {
  ip netns exec "$TB-attacker" timeout 300 ssh -tt -F /dev/null -b "$1" -i "$SSH_KEYDIR/id" \
    -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o ServerAliveInterval=5 \
    -o LogLevel=ERROR root@203.0.113.10 'sleep 280' </dev/null >"$SSH_KEYDIR/ssh.log" 2>&1 &
  SSH_PID=$!
}
ssh_session_end() {
  kill "$SSH_PID" 2>/dev/null || true
  wait "$SSH_PID" 2>/dev/null || true
  SSH_PID=""
}
ssh_session_debug() {
  cat "$SSH_KEYDIR/ssh.log" >&2
  tb who >&2 || true
  tb loginctl list-sessions --no-pager >&2 || true
  tb journalctl -u ssh --no-pager -n 20 >&2 || true
}
# The container's logind sessions, one line each: "Service=sshd RemoteHost=... State=active".
logind_sessions() {
  tb sh -c "for s in \$(loginctl list-sessions --no-legend | awk '{print \$1}'); do
      loginctl show-session \"\$s\" -p Service -p RemoteHost -p State | tr '\n' ' '; echo; done"
}
# Whether utmp (`who`), or logind, holds a live login from $1: 0 yes, 1 no, 2 cannot tell.
ssh_in_utmp() {
  local who
  who=$(tb who) || return 2
  grep -qF "($1)" <<<"$who"
}
ssh_in_logind() {
  local sessions
  sessions=$(logind_sessions) || return 2
  grep "Service=sshd" <<<"$sessions" | grep "RemoteHost=$1 " | grep -v "State=closing" >/dev/null
}
ssh_session_seen() { ssh_in_utmp "$1" && ssh_in_logind "$1"; }
ssh_session_gone() {
  ssh_in_utmp "$1" && return 1
  (($? == 1)) || return 1
  ssh_in_logind "$1" && return 1
  (($? == 1))
}
incident_closed() { [[ " $(open_ids) " != *" $1 "* ]]; }
# The one incident whose timeline has the refusal of $1.
refused_incident() {
  local id
  id=$(tb sh -c "grep -l 'never blocked: $1 ' /var/lib/vigil/incidents/*.jsonl" |
    xargs -r -n1 basename | sed 's/\.jsonl$//') || true
  [[ $(wc -w <<<"$id") == 1 ]] || fail "expected one incident with the refusal of $1, got: '$id'"
  echo "$id"
}

case_mitigate_ssh_session() {
  # end_case reads the exit status from $?; set +e, or a failing (exit "$rc") ends the trap.
  trap 'rc=$?; set +e; ssh_session_cleanup; (exit "$rc"); end_case' EXIT
  if ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null; then
    TESTBED_HOST_PACKAGES=(openssh-client)
    testbed_install_host_packages
  fi
  testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
  ip netns exec "$TB-attacker" ip addr add 203.0.113.46/24 dev eth0
  ip netns exec "$TB-attacker" ip addr add 203.0.113.47/24 dev eth0
  tb ufw allow 22/tcp >/dev/null
  tb ufw allow 8080/tcp >/dev/null
  tb ufw --force enable >/dev/null
  attacker_curl 203.0.113.45 >/dev/null || fail ".45 cannot reach the app before the test"

  # sshd with key-only root login, and a throw-away key pair.
  SSH_KEYDIR=$(mktemp -d /tmp/vigil-e2e-ssh.XXXXXX)
  ssh-keygen -q -t ed25519 -N '' -C vigil-e2e -f "$SSH_KEYDIR/id"
  tb install -d -m 700 /root/.ssh
  tb sh -c 'cat > /root/.ssh/authorized_keys; chmod 600 /root/.ssh/authorized_keys' <"$SSH_KEYDIR/id.pub"
  tb sh -c 'cat > /etc/ssh/sshd_config.d/vigil-e2e.conf' <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM yes
UseDNS no
CONF
  tb sshd -t || fail "sshd refuses its configuration"
  tb systemctl restart ssh
  wait_until 10 tb systemctl is-active --quiet ssh || fail "sshd did not start"

  # 1. The admin's live session from .46: in utmp and in logind.
  ssh_session_open 203.0.113.46
  wait_until 30 ssh_session_seen 203.0.113.46 || {
    ssh_session_debug
    fail "the SSH session from .46 is not in both utmp and logind"
  }
  tb who
  logind_sessions

  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"

# No allow-list; protect_ssh_sessions at its default (true).

[action.block.ssh]
block_for = "10m"

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # stands in for ssh.service (testbed_sshd_line)
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "10s"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the block config is refused"
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw" || fail "no reconcile at start"

  for _ in 1 2 3; do
    ssh_line 203.0.113.46
    ssh_line 203.0.113.45
  done
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail ".45 was not blocked"
  ! attacker_curl 203.0.113.45 >/dev/null 2>&1 || fail ".45 still gets an answer after the block"
  # logind's reader names the session by its id (a number), utmp's by its line (pts/N).
  wait_until 10 journal_has -u vigil \
    --grep "never blocked: 203\.0\.113\.46 is peer of a live SSH session \(session [0-9]+, user root\)" ||
    fail "the SSH session's peer was not refused with its reason (from logind)"
  ! journal_has -u vigil --grep "protected addresses: " ||
    fail "a reader of protected addresses failed in the sandbox"
  local rules
  rules=$(tb ufw status)
  echo "$rules"
  ! grep -q "203.0.113.46" <<<"$rules" || fail "ufw has a rule for the admin's .46"
  attacker_curl 203.0.113.46 >/dev/null || fail ".46 cannot reach the app"
  kill -0 "$SSH_PID" 2>/dev/null || fail "the SSH client from .46 is gone: $(cat "$SSH_KEYDIR/ssh.log")"
  ssh_session_seen 203.0.113.46 || fail "the SSH session from .46 did not survive"
  local id show
  id=$(refused_incident 203.0.113.46)
  show=$(tb vigil incident show "$id")
  grep -E "never blocked|human" <<<"$show" >&2 || true
  grep -q "never blocked: 203.0.113.46 is peer of a live SSH session" <<<"$show" ||
    fail "the timeline of incident $id lacks the refusal"

  # 2. The session ends: .46 is an address like any other once its incident is over.
  ssh_session_end
  wait_until 20 ssh_session_gone 203.0.113.46 || fail "the ended session is still in utmp or logind"
  wait_until 40 incident_closed "$id" || fail "incident $id (.46) did not resolve"
  for _ in 1 2 3; do ssh_line 203.0.113.46; done
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.46"' ||
    fail ".46 was not blocked after its session ended"
  ! attacker_curl 203.0.113.46 >/dev/null 2>&1 || fail ".46 still gets an answer after the block"

  # 3. A host without pam_systemd: no logind session, utmp alone protects .47's session.
  tb sed -i 's/^session[[:space:]].*pam_systemd\.so/# &/' /etc/pam.d/common-session
  ssh_session_open 203.0.113.47
  wait_until 30 ssh_in_utmp 203.0.113.47 || {
    ssh_session_debug
    fail "the SSH session from .47 is not in utmp"
  }
  ! ssh_in_logind 203.0.113.47 || fail "logind registered .47's session without pam_systemd"
  for _ in 1 2 3; do ssh_line 203.0.113.47; done
  wait_until 10 journal_has -u vigil \
    --grep "never blocked: 203\.0\.113\.47 is peer of a live SSH session \(session pts/[0-9]+, user root\)" ||
    fail "the SSH session's peer was not refused with its reason (from utmp)"
  sleep 1
  rules=$(tb ufw status)
  echo "$rules"
  ! grep -q "203.0.113.47" <<<"$rules" || fail "ufw has a rule for .47, the peer of a utmp session"
  kill -0 "$SSH_PID" 2>/dev/null || fail "the SSH client from .47 is gone: $(cat "$SSH_KEYDIR/ssh.log")"
  ! journal_has -u vigil --grep "protected addresses: " ||
    fail "a reader of protected addresses failed in the sandbox"
  tb journalctl -u vigil --no-pager -q -o cat --grep "never blocked|protected addresses"
  ssh_session_end
}

# Issue 13: a never-block source vigil cannot read (here ufw's rules, mode 000: root without
# CAP_DAC_OVERRIDE, as vigil.service runs, cannot open them) stops blocking instead of blocking
# blind (an allow rule might cover the address), and says so four ways: an error in the
# journal, the incident's refusal and its escalation to a human, "Blocks held" in
# `vigil status`, vigil_protection_read_errors_total in the metrics. Once the file can be read
# again, the next attacker is blocked.
case_protection_source_fails() {
  testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
  ip netns exec "$TB-attacker" ip addr add 203.0.113.46/24 dev eth0
  tb ufw allow 8080/tcp >/dev/null
  tb ufw --force enable >/dev/null
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<'TOML'
[agent]
state_dir = "/var/lib/vigil"
metrics = "127.0.0.1:9717"

[action.block.ssh]
block_for = "10m"

[[check]]
name = "ssh"
probe = "journal"
unit = "fake-sshd.service" # stands in for ssh.service (testbed_sshd_line)
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "1m"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the block config is refused"
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw" || fail "no reconcile at start"
  tb chmod 000 /etc/ufw/user.rules
  for _ in 1 2 3; do ssh_line 203.0.113.45; done
  wait_until 20 journal_has -u vigil -p err \
    --grep "protected addresses: ufw's allow rules are not protected: /etc/ufw/user\.rules: .*; no address is blocked" ||
    fail "the unreadable ufw rules were not reported at error level"
  wait_until 10 journal_has -u vigil \
    --grep "never blocked: 203\.0\.113\.45 is possibly protected \(cannot tell: ufw's allow rules" ||
    fail "the incident does not say why .45 was not blocked"
  wait_until 10 journal_has -u vigil --grep "no mitigation could apply: a human is needed" ||
    fail "the incident was not escalated to a human"
  local status metrics
  status=$(tb vigil status) && fail "vigil status exits 0 with an escalated incident open"
  echo "$status"
  grep -q "^Blocks held: ufw's allow rules are not protected: /etc/ufw/user\.rules" <<<"$status" ||
    fail "vigil status does not say blocks are held"
  metrics=$(tb curl -fsS http://127.0.0.1:9717/metrics)
  grep -E "^vigil_protection_read_errors_total [1-9]" <<<"$metrics" ||
    fail "vigil_protection_read_errors_total did not count the failure"
  ! tb sh -c 'ufw status | grep "203.0.113.45"' || fail ".45 was blocked while vigil could not read ufw's rules"
  tb chmod 640 /etc/ufw/user.rules
  for _ in 1 2 3; do ssh_line 203.0.113.46; done
  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.46"' ||
    fail "no block once the rules could be read again"
}

# Issue 13 with the real sshd, not a stand-in: a client that logs in as the user
# "x from 203.0.113.46 port 22" makes sshd itself write the injected text into its own line. The
# shipped patterns, matched on what journald records of ssh.service (unit, uid 0), count the
# client's own address (.45, the last "from ADDR port N", which sshd writes) and never aim a
# block at .46. The user names come from the network; nothing else in this case is forged.
SSH_ASKDIR=""
sshd_password_try() {
  ip netns exec "$TB-attacker" env SSH_ASKPASS="$SSH_ASKDIR/pass" SSH_ASKPASS_REQUIRE=force \
    timeout 30 ssh -F /dev/null -b 203.0.113.45 -l "$1" -o PreferredAuthentications=password \
    -o PubkeyAuthentication=no -o NumberOfPasswordPrompts=1 -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR \
    203.0.113.10 true </dev/null >>"$SSH_ASKDIR/ssh.log" 2>&1 || true
}
case_hostile_real_sshd() {
  trap 'rc=$?; set +e; [[ -n "$SSH_ASKDIR" ]] && rm -rf "$SSH_ASKDIR"; (exit "$rc"); end_case' EXIT
  if ! command -v ssh >/dev/null; then
    TESTBED_HOST_PACKAGES=(openssh-client)
    testbed_install_host_packages
  fi
  testbed_peer "$TB" attacker 203.0.113.45/24 203.0.113.10/24
  ip netns exec "$TB-attacker" ip addr add 203.0.113.46/24 dev eth0
  tb ufw allow 22/tcp >/dev/null
  tb ufw allow 8080/tcp >/dev/null
  tb ufw --force enable >/dev/null
  attacker_curl 203.0.113.46 >/dev/null || fail ".46 cannot reach the app before the test"

  SSH_ASKDIR=$(mktemp -d /tmp/vigil-e2e-askpass.XXXXXX)
  printf '#!/bin/sh\necho wrong-password\n' >"$SSH_ASKDIR/pass"
  chmod 755 "$SSH_ASKDIR/pass"
  tb sh -c 'cat > /etc/ssh/sshd_config.d/vigil-e2e.conf' <<'CONF'
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
UseDNS no
CONF
  tb sshd -t || fail "sshd refuses its configuration"
  tb systemctl restart ssh
  wait_until 10 tb systemctl is-active --quiet ssh || fail "sshd did not start"

  # The pattern the package ships (the commented ssh example of the installed
  # /etc/vigil/vigil.toml), with a lower count: each try writes one Failed password line.
  local shipped
  shipped=$(tb sed -n '/^# name = "ssh"/,/^# key/s/^# pattern = //p' /etc/vigil/vigil.toml)
  [[ $shipped == "'^Failed "* ]] || fail "no shipped sshd pattern in /etc/vigil/vigil.toml: '$shipped'"
  tb sh -c 'cat > /etc/vigil/vigil.toml' <<TOML
[agent]
state_dir = "/var/lib/vigil"

[action.block.ssh]
block_for = "10m"

[[check]]
name = "ssh"
probe = "journal"
unit = "ssh.service"
uid = 0
pattern = $shipped
key = "ip"
count = 2
window = "1m"
interval = "500ms"
mitigate = ["block:ssh"]
TOML
  tb vigil check-config /etc/vigil/vigil.toml >/dev/null || fail "the sshd config is refused"
  tb systemctl restart vigil
  wait_until 10 journal_has -u vigil --grep "blocks reconciled with ufw" || fail "no reconcile at start"

  # Two user names that each name .46 where a careless pattern looks for the address.
  sshd_password_try 'x from 203.0.113.46 port 22'
  sshd_password_try 'root from 203.0.113.46 port 22 ssh2'
  wait_until 20 journal_has -u ssh \
    --grep '^Failed password for invalid user x from 203\.0\.113\.46 port 22 from 203\.0\.113\.45 port [0-9]+ ssh2$' || {
    cat "$SSH_ASKDIR/ssh.log" >&2
    tb journalctl -u ssh --no-pager -n 20 >&2 || true
    fail "sshd did not write the injected user name into its Failed password line"
  }
  journal_has -u ssh --grep '^Invalid user root from 203\.0\.113\.46 port 22 ssh2 from 203\.0\.113\.45 port [0-9]+$' ||
    fail "sshd did not write the injected user name into its Invalid user line"
  tb journalctl -u ssh --no-pager -q -o cat --grep 'from 203\.0\.113\.46'

  wait_until 20 tb sh -c 'ufw status | grep -q "203.0.113.45"' || fail ".45, the real client, was not blocked"
  wait_until 10 journal_has -u vigil VIGIL_CHECK=ssh VIGIL_KEY=203.0.113.45 VIGIL_STATE=firing ||
    fail "no firing entry for .45"
  sleep 1
  local rules
  rules=$(tb ufw status)
  echo "$rules"
  ! grep -q "203.0.113.46" <<<"$rules" || fail "an injected user name blocked .46"
  (($(firing_count VIGIL_KEY=203.0.113.46) == 0)) || fail "an injected user name was counted for .46"
  attacker_curl 203.0.113.46 >/dev/null || fail ".46 cannot reach the app"
  ! attacker_curl 203.0.113.45 >/dev/null 2>&1 || fail ".45 still gets an answer after the block"
}

# ---------------------------------------------------------------------------------------------
# Paging (issue 7): vigil in the container pages a "central" site (tests/testbed/central.sh): two
# clustered real Alertmanagers and a capture server standing in for PagerDuty, OnCall, a status
# page and webhooks. Asserted through Alertmanager's own API and what the capture server received.
source "$here/central.sh"

PAGE_ART=""
# Starts the central site; its logs and capture go to $PAGE_ART, kept when the case fails.
page_begin() {
  PAGE_ART="${VIGIL_E2E_ARTIFACTS:-/tmp/vigil-e2e}/$TB"
  rm -rf "$PAGE_ART"
  mkdir -p "$PAGE_ART"
  # end_case reads the exit status from $?; set +e, or a failing (exit "$rc") ends the trap.
  trap 'rc=$?; set +e; page_end "$rc"; (exit "$rc"); end_case' EXIT
  central_up "$TB" "$PAGE_ART" || fail "the central site did not come up (logs: $PAGE_ART)"
  tb curl -fsS --max-time 5 -o /dev/null "$CENTRAL_AM_URL_A/-/ready" ||
    fail "the container cannot reach Alertmanager a"
}
page_end() {
  if (($1 != 0)); then
    echo "--- central site: artifacts kept in $PAGE_ART; Alertmanager notifications:" >&2
    central_am_notifications >&2
    echo "--- vigil's paging lines:" >&2
    tb journalctl -u vigil --no-pager -q -o cat --grep '(?i)page|notif|outbox|deliver|alertmanager' |
      tail -n 40 >&2
  fi
  central_down
  if (($1 == 0)); then rm -rf "$PAGE_ART"; fi
}

# The app's HTTP check (its 503 is SEV1) with [paging] and the [[notify]] tables read from stdin.
write_page_config() {
  {
    cat <<'TOML'
[agent]
state_dir = "/var/lib/vigil"

[paging]
link_base = "http://vigil.example/incidents/"
heartbeat_every = "10s"

[[check]]
name = "app-http"
probe = "http"
service = "app"
team = "payments"
unit = "sample-app.service"
url = "http://127.0.0.1:8080/health"
interval = "500ms"
timeout = "400ms"
recover_after = 2

TOML
    cat
  } | tb sh -c 'cat > /etc/vigil/vigil.toml'
  tb vigil check-config /etc/vigil/vigil.toml >&2 || fail "the paging config is refused"
  tb systemctl restart vigil
  wait_until 10 tb systemctl is-active --quiet vigil || fail "vigil did not restart"
  wait_until 10 tb vigil status || fail "vigil status does not answer (or the app is unhealthy)"
}

has_open_incident() { [[ -n "$(open_ids)" ]]; }
# Makes the app answer 503; prints the id of the one incident that opens.
page_fail_app() {
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/fail
  wait_until 15 has_open_incident || fail "no incident opened on the app's 503"
  local id
  id=$(open_ids)
  [[ $(wc -w <<<"$id") == 1 ]] || fail "expected one open incident, got: $id"
  echo "$id"
}
# Makes the app healthy again and waits until incident $1 is resolved.
page_recover_app() {
  tb curl -fsS -o /dev/null http://127.0.0.1:8080/_mode/ok
  wait_until 30 journal_has -u vigil MESSAGE_ID=5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8 VIGIL_INCIDENT="$1" ||
    fail "incident $1 was not resolved after the app recovered"
}

# The value of the `incident` label vigil gives incident $1 in Alertmanager: its id (notify/page.cpp;
# PagerDuty's dedup_key and OnCall's alert_uid are "vigil/HOST/ID").
page_am_incident() { echo "$1"; }
# Runs Python CODE with J = the JSON on stdin and A = the other arguments; an AssertionError
# (its message) fails the case.
pycheck() {
  local code=$1
  shift
  python3 -c "import json, sys, time, datetime, hmac, hashlib, re
def ts(s): return datetime.datetime.fromisoformat(re.sub(r'(\.[0-9]{6})[0-9]+', r'\1', s.replace('Z', '+00:00'))).timestamp()
J = json.load(sys.stdin)
A = sys.argv[1:]
$code" "$@"
}
# Runs Python CODE with E = the capture server's requests (dicts, in order of arrival).
capcheck() {
  local code=$1
  shift
  python3 -c "import json, sys, time, datetime, hmac, hashlib, re
def ts(s): return datetime.datetime.fromisoformat(re.sub(r'(\.[0-9]{6})[0-9]+', r'\1', s.replace('Z', '+00:00'))).timestamp()
E = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8') if l.strip()]
A = sys.argv[2:]
$code" "$PAGE_ART/capture.jsonl" "$@"
}
# Whether peer $1 lists incident $2's VigilIncident alert as active.
am_lists() {
  central_alerts -p "$1" 'alertname="VigilIncident"' "incident=\"$(page_am_incident "$2")\"" |
    pycheck 'sys.exit(0 if len(J) == 1 and J[0]["status"]["state"] == "active" else 1)'
}
am_lists_not() { ! am_lists "$@"; }
# Alertmanager's notifications (both peers) about incident $1, in order: "firing resolved ...".
am_note_seq() {
  central_am_notifications | awk -v i="$(page_am_incident "$1")" '$3 == "VigilIncident" && $4 == i {print $2}' |
    tr '\n' ' ' | sed 's/ $//'
}
am_note_count() { # STATUS ID
  central_am_notifications | awk -v s="$1" -v i="$(page_am_incident "$2")" '$2 == s && $4 == i' | wc -l
}
am_noted() { (($(am_note_count "$1" "$2") >= 1)); }
am_received() { central_am_metric "$1" alertmanager_alerts_received_total "status=\"$2\""; }
# A settle longer than group_interval (10s) + peer-timeout (2s): a duplicate would show by then.
AM_SETTLE=14

# An incident fires: the alert is on both peers with its labels and annotations, re-sent while
# it lasts, and Alertmanager notifies it once; the heartbeat is there too; on recovery it is
# resolved (gone from both peers' API) and notified resolved, once.
case_page_alertmanager() {
  page_begin
  write_page_config <<'TOML'
[[notify]]
name = "am"
kind = "alertmanager"
urls = ["http://10.77.0.1:9093", "http://10.77.0.1:9095"]
resend_every = "10s"
heartbeat = true
timeout = "2s"
TOML
  local host
  host=$(tb hostname)
  heartbeat_on() {
    central_alerts -p "$1" 'alertname="VigilHeartbeat"' |
      pycheck 'assert len(J) == 1 and J[0]["labels"]["host"] == A[0], J' "$host"
  }
  wait_until 20 heartbeat_on a || fail "no VigilHeartbeat alert on peer a"
  wait_until 20 heartbeat_on b || fail "no VigilHeartbeat alert on peer b"

  local id inc
  id=$(page_fail_app)
  inc=$(page_am_incident "$id")
  wait_until 20 am_lists a "$id" || fail "incident $id is not active on Alertmanager a"
  wait_until 20 am_lists b "$id" || fail "incident $id is not active on Alertmanager b"
  local p alert
  for p in a b; do
    alert=$(central_alerts -p "$p" 'alertname="VigilIncident"' "incident=\"$inc\"")
    echo "peer $p: $alert"
    pycheck '
a = J[0]
l, an = a["labels"], a["annotations"]
want = {"alertname": "VigilIncident", "severity": "SEV1", "host": A[0], "check": "app-http",
        "service": "app", "team": "payments", "incident": A[1]}
assert l == want, "labels %r, expected %r" % (l, want)
for k in ("summary", "evidence"):
    assert an.get(k), "annotation %s missing: %r" % (k, an)
assert "503" in an["evidence"], "the evidence lacks the 503: %r" % an["evidence"]
assert len(an["summary"]) <= 1024, an["summary"]
assert A[2] in a.get("generatorURL", ""), "generatorURL %r lacks the incident" % a.get("generatorURL")
# vigil sets endsAt ahead (4 x resend_every), so the alert outlives a lost re-send, not an hour.
assert time.time() < ts(a["endsAt"]) <= time.time() + 60, "endsAt %s" % a["endsAt"]
assert ts(a["startsAt"]) <= time.time(), a["startsAt"]
' "$host" "$inc" "$id" <<<"$alert" || fail "peer $p: the alert of incident $id is not as documented"
  done
  # Re-sent while firing: the alert's updatedAt moves; Alertmanager still notifies it once.
  local updated
  updated=$(central_alerts -p a "incident=\"$inc\"" | pycheck 'print(J[0]["updatedAt"])')
  resent() {
    central_alerts -p a "incident=\"$inc\"" | pycheck 'sys.exit(0 if ts(J[0]["updatedAt"]) > ts(A[0]) else 1)' "$updated"
  }
  wait_until 25 resent || fail "incident $id was not re-sent within resend_every"
  wait_until 20 am_noted firing "$id" || fail "Alertmanager did not notify incident $id"
  sleep "$AM_SETTLE"
  [[ $(am_note_seq "$id") == firing ]] ||
    fail "expected one firing notification of $id, got: $(am_note_seq "$id")"
  # A silence in Alertmanager is an acknowledgement: vigil reads it (every 10 s) into the timeline.
  local silence
  silence=$(central_amtool silence add "incident=$inc" -a e2e -c "on it" -d 10m) ||
    fail "amtool could not add a silence"
  wait_until 25 journal_has -u vigil --grep "incident $id: acknowledged by Alertmanager silence $silence" ||
    fail "vigil did not take silence $silence as the ack of $id"
  grep -q "acknowledged by Alertmanager silence" <<<"$(tb vigil incident show "$id")" ||
    fail "the ack is not in the timeline of $id"
  # Expired again, so Alertmanager notifies the resolve below (a silenced alert is muted).
  central_amtool silence expire "$silence" || fail "amtool could not expire silence $silence"

  page_recover_app "$id"
  wait_until 20 am_lists_not a "$id" || fail "incident $id is still active on Alertmanager a"
  wait_until 20 am_lists_not b "$id" || fail "incident $id is still active on Alertmanager b"
  wait_until 30 am_noted resolved "$id" || fail "Alertmanager did not notify the resolve of $id"
  sleep "$AM_SETTLE"
  [[ $(am_note_seq "$id") == "firing resolved" ]] ||
    fail "expected one firing then one resolved notification of $id, got: $(am_note_seq "$id")"
  capcheck '
n = [e for e in E if e["path"].startswith("/am/") and any(x["labels"].get("incident") == A[0] for x in e["json"]["alerts"])]
r = [x for x in n[-1]["json"]["alerts"] if x["labels"].get("incident") == A[0]][0]
assert r["status"] == "resolved" and ts(r["endsAt"]) <= n[-1]["t"], r
' "$inc" || fail "the resolved notification has no endsAt in the past"
  for p in a b; do
    (($(central_am_metric "$p" alertmanager_alerts_invalid_total) == 0)) ||
      fail "Alertmanager $p refused alerts from vigil as invalid"
  done
  heartbeat_on a || fail "the heartbeat stopped"
}

# Pages survive the central site being cut off, vigil's kill -9 and one Alertmanager being down:
# each is delivered, in order, and Alertmanager notifies it once.
case_page_outbox_faults() {
  page_begin
  write_page_config <<'TOML'
[[notify]]
name = "am"
kind = "alertmanager"
urls = ["http://10.77.0.1:9093", "http://10.77.0.1:9095"]
resend_every = "10s"
timeout = "2s"
TOML
  # 1. The site is cut off while an incident fires and resolves; then it comes back.
  central_link_down
  local id1
  id1=$(page_fail_app)
  sleep 3 # attempts fail meanwhile (connect timeouts: the link is down, nothing answers)
  page_recover_app "$id1"
  local before_a before_b
  before_a=$(am_received a resolved)
  before_b=$(am_received b resolved)
  ((before_a == 0 && before_b == 0)) || fail "Alertmanager received a resolve with the link down"
  central_link_up
  both_resolved() { (($(am_received a resolved) >= 1 && $(am_received b resolved) >= 1)); }
  wait_until 90 both_resolved || fail "the resolve of $id1 was not delivered after the link came back"
  sleep "$AM_SETTLE"
  local p
  local n got sent
  for p in a b; do
    # Delivery is at least once: an attempt whose request reached Alertmanager but whose answer
    # did not come back within the timeout is retried, and Alertmanager counts both (it dedupes
    # them: the notifications below stay one firing, one resolve). So the peer may have received
    # the resolve as many times as vigil sent it, never more (a resend of a delivered page).
    # Every attempt of the resolve came after the link was up: pages of one incident go in
    # order, and the resolve waits for its trigger, which was delivered only then.
    n=0
    [[ $p == b ]] && n=1
    got=$(am_received "$p" resolved)
    sent=$(tb journalctl -u vigil --no-pager -q -o cat \
      --grep "^resolve page of incident $id1 to am#$n delivered after [0-9]+ attempts" |
      sed -n 's/.* delivered after \([0-9]*\) attempts.*/\1/p' | tail -n 1 || true)
    sent=${sent:-1} # delivered at the first attempt: no "after N attempts"
    ((got >= 1 && got <= sent)) ||
      fail "peer $p received the resolve $got times, vigil sent it $sent times"
    ((got == 1)) || echo "NOTE: peer $p received the resolve of $id1 $got times: $sent attempts, a timed-out one had reached it" >&2
    # A resolve delivered before its trigger would leave the alert firing (until its endsAt).
    am_lists_not "$p" "$id1" || fail "incident $id1 is firing on $p: pages delivered out of order"
  done
  # Both arrived at once: Alertmanager notifies the firing then the resolve, or nothing at all.
  [[ $(am_note_seq "$id1") == "firing resolved" || -z $(am_note_seq "$id1") ]] ||
    fail "notifications of $id1 after the outage: $(am_note_seq "$id1")"
  echo "after the outage, Alertmanager notified $id1: '$(am_note_seq "$id1")'"

  # 2. vigil is killed (-9) with the trigger still queued: delivered after its restart.
  central_link_down
  local id2 pid
  id2=$(page_fail_app)
  sleep 2
  pid=$(unit_prop vigil MainPID)
  tb kill -KILL "$pid"
  wait_until 20 sh -c "[ \"\$(nsenter --target $(testbed_leader "$TB") --all systemctl show -P MainPID vigil)\" != $pid ]" ||
    fail "vigil was not restarted after kill -9"
  wait_until 20 tb systemctl is-active --quiet vigil || fail "vigil not active after kill -9"
  ! am_lists a "$id2" || fail "incident $id2 reached Alertmanager with the link down"
  central_link_up
  wait_until 90 am_lists a "$id2" || fail "the queued trigger of $id2 was not delivered to a after kill -9"
  wait_until 30 am_lists b "$id2" || fail "the queued trigger of $id2 was not delivered to b after kill -9"
  wait_until 20 am_noted firing "$id2" || fail "Alertmanager did not notify $id2"
  page_recover_app "$id2"
  wait_until 30 am_lists_not a "$id2" || fail "incident $id2 still active on a after its resolve"
  wait_until 30 am_lists_not b "$id2" || fail "incident $id2 still active on b after its resolve"
  wait_until 30 am_noted resolved "$id2" || fail "Alertmanager did not notify the resolve of $id2"
  sleep "$AM_SETTLE"
  [[ $(am_note_seq "$id2") == "firing resolved" ]] ||
    fail "notifications of $id2: '$(am_note_seq "$id2")', expected 'firing resolved'"

  # 3. One peer down: the other one gets every page, and notifies it once.
  central_am_stop b
  local id3
  id3=$(page_fail_app)
  wait_until 20 am_lists a "$id3" || fail "incident $id3 is not active on a with b down"
  wait_until 20 am_noted firing "$id3" || fail "a did not notify $id3 with b down"
  page_recover_app "$id3"
  wait_until 30 am_lists_not a "$id3" || fail "incident $id3 still active on a"
  wait_until 30 am_noted resolved "$id3" || fail "a did not notify the resolve of $id3"
  [[ $(am_note_seq "$id3") == "firing resolved" ]] ||
    fail "notifications of $id3: '$(am_note_seq "$id3")', expected 'firing resolved'"
  # b comes back (its alerts were in memory: gone): vigil's queue for b catches up with the
  # resolve, never leaving it firing there.
  central_am_start b
  b_got_resolve() { (($(am_received b resolved) >= 1)); }
  wait_until 90 b_got_resolve || fail "the resolve of $id3 was not delivered to b after it came back"
  sleep "$AM_SETTLE"
  am_lists_not b "$id3" || fail "incident $id3 is firing on b after it caught up"
  local seq
  seq=$(am_note_seq "$id3")
  [[ $seq == *resolved ]] || fail "the last notification of $id3 is not its resolve: $seq"
  if [[ $seq != "firing resolved" ]]; then
    # b, second in the cluster, took a snapshot with the replayed trigger and compared it with
    # a's log, which already says resolved: Alertmanager's own dedupe cannot hide that.
    echo "NOTE: b catching up re-notified $id3: $seq (replaying a superseded trigger to Alertmanager)" >&2
  fi
}

# Each of the other notifiers, field by field against its documented format, through faults:
# PagerDuty answers 429 with Retry-After then accepts; a second PagerDuty target answers 400
# (never retried); OnCall answers 500 twice; the webhook hangs once, a second one is slow once.
case_page_formats() {
  page_begin
  local key=Abcdefghijklmnopqrstuvwxyz012345 # 32 letters and digits, as PagerDuty's
  tb sh -c "umask 077; printf %s '$key' > /etc/vigil/pd.key; printf %s 'statuspage-api-key' > /etc/vigil/sp.key; printf %s 'hook-hmac-secret' > /etc/vigil/hook.key"
  central_capture_mode /pd 429 retry_after=3 count=1
  central_capture_mode /pdbad 400
  central_capture_mode /oncall 500 count=2
  central_capture_mode /hook hang count=1
  central_capture_mode /slowhook slow slow_ms=3000 count=1
  write_page_config <<'TOML'
[[notify]]
name = "pd"
kind = "pagerduty"
url = "http://10.77.0.1:8088/pd"
routing_key_file = "/etc/vigil/pd.key"
timeout = "2s"

[[notify]]
name = "pd-bad"
kind = "pagerduty"
url = "http://10.77.0.1:8088/pdbad"
routing_key_file = "/etc/vigil/pd.key"
timeout = "2s"

[[notify]]
name = "oncall"
kind = "oncall"
url = "http://10.77.0.1:8088/oncall"
timeout = "2s"

[[notify]]
name = "status"
kind = "statuspage"
url = "http://10.77.0.1:8088/sp"
page_id = "PAGE"
api_key_file = "/etc/vigil/sp.key"
timeout = "2s"

[[notify]]
name = "hook"
kind = "webhook"
url = "http://10.77.0.1:8088/hook"
hmac_key_file = "/etc/vigil/hook.key"
timeout = "2s"

[[notify]]
name = "slowhook"
kind = "webhook"
url = "http://10.77.0.1:8088/slowhook"
timeout = "2s"
TOML
  local host id dedup
  host=$(tb hostname)
  id=$(page_fail_app)
  dedup="vigil/$host/$id"
  # Every target got the trigger through its fault: 429 -> 202, 500, 500 -> 200, hang -> 200.
  delivered() { capcheck 'sys.exit(0 if any(e["path"].startswith(A[0]) and e["answered"] == int(A[1]) for e in E) else 1)' "$@"; }
  wait_until 30 delivered /pd/v2/enqueue 202 || fail "PagerDuty's trigger was not delivered after the 429"
  wait_until 30 delivered /oncall 200 || fail "OnCall's alert was not delivered after two 500s"
  wait_until 30 delivered /sp/v1/pages/PAGE/incidents 201 || fail "no status page incident was created"
  wait_until 30 delivered /hook 200 || fail "the webhook was not delivered after its hung attempt"
  wait_until 30 delivered /slowhook 200 || fail "the webhook was not delivered after its slow attempt"
  page_recover_app "$id"
  resolved_everywhere() {
    capcheck '
pd = [e for e in E if e["path"] == "/pd/v2/enqueue" and e["answered"] == 202 and e["json"]["event_action"] == "resolve"]
oc = [e for e in E if e["path"] == "/oncall" and e["answered"] == 200 and e["json"]["state"] == "ok"]
sp = [e for e in E if e["method"] == "PATCH" and e["answered"] == 200 and e["json"]["incident"].get("status") == "resolved"]
hk = [e for e in E if e["path"] == "/hook" and e["answered"] == 200 and e["json"]["event"] == "resolve"]
sys.exit(0 if pd and oc and sp and hk else 1)'
  }
  wait_until 60 resolved_everywhere || fail "not every target got the resolve"
  sleep 8 # a 400 retried, or a late duplicate, would show by now

  echo "--- PagerDuty"
  capcheck '
key, dedup, host = A
pd = [e for e in E if e["path"].startswith("/pd/")]
assert pd[0]["answered"] == 429, "the first PD request was answered %r, expected the 429" % pd[0]["answered"]
ok = [e for e in pd if e["answered"] == 202]
trig = [e for e in ok if e["json"]["event_action"] == "trigger"]
res = [e for e in ok if e["json"]["event_action"] == "resolve"]
assert trig and res, [e["json"]["event_action"] for e in ok]
# Retry-After: 3 honoured: the retry of the trigger is not before 3 s after the 429.
assert trig[0]["body"] == pd[0]["body"] or trig[0]["json"]["dedup_key"] == pd[0]["json"]["dedup_key"]
gap = trig[0]["t"] - pd[0]["t"]
assert gap >= 2.9, "retried %.2fs after a 429 with Retry-After: 3" % gap
for e in pd:
    assert e["method"] == "POST" and e["headers"].get("Content-Type", "").startswith("application/json"), e["headers"]
    j = e["json"]
    assert j["routing_key"] == key, "routing_key"
    assert j["dedup_key"] == dedup, "dedup_key %r, expected %r" % (j["dedup_key"], dedup)
    assert len(j["dedup_key"]) <= 255
t = trig[0]["json"]
p = t["payload"]
assert 0 < len(p["summary"]) <= 1024, p["summary"]
assert p["source"] == host, "payload.source %r" % p["source"]
assert p["severity"] == "critical", "SEV1 must be critical, got %r" % p["severity"]
assert ts(p["timestamp"]) <= trig[0]["t"], p["timestamp"]
for k in ("component", "group", "class"):
    assert p.get(k), "payload.%s missing" % k
assert "503" in json.dumps(p["custom_details"]), "custom_details lack the evidence: %r" % p["custom_details"]
assert res[-1]["t"] > trig[0]["t"], "the resolve overtook the trigger"
assert max(e["t"] for e in trig) < res[0]["t"], "a trigger after the resolve"
print("PD:", [(e["json"]["event_action"], e["answered"]) for e in pd], "retry gap %.2fs" % gap)
' "$key" "$dedup" "$host" || fail "PagerDuty's requests are not as documented"
  capcheck '
bad = [e for e in E if e["path"].startswith("/pdbad/")]
trig = [e for e in bad if e["json"]["event_action"] == "trigger"]
assert len(trig) == 1, "a trigger answered 400 was sent %d times (a 400 is permanent)" % len(trig)
assert all(e["answered"] == 400 for e in bad)
print("PD (400):", [(e["json"]["event_action"], e["answered"]) for e in bad])
' || fail "a 400 from PagerDuty was retried"
  journal_has -u vigil --grep "pd-bad.*400|400.*pd-bad" || fail "the 400 was not logged with its target"

  echo "--- OnCall"
  capcheck '
dedup, base, id = A
oc = [e for e in E if e["path"] == "/oncall"]
assert [e["answered"] for e in oc[:3]] == [500, 500, 200], [e["answered"] for e in oc]
assert len(set(e["body"] for e in oc[:3])) == 1, "the retries did not resend the same alert"
ok = [e for e in oc if e["answered"] == 200]
first, last = ok[0]["json"], ok[-1]["json"]
assert first["state"] == "alerting" and last["state"] == "ok", [e["json"]["state"] for e in ok]
assert first["alert_uid"] == last["alert_uid"] == dedup, (first["alert_uid"], last["alert_uid"])
assert first["title"] and last["title"] == first["title"], "the resolve does not repeat the title"
assert "503" in first["message"], first["message"]
assert first["link_to_upstream_details"] == base + id, first["link_to_upstream_details"]
print("OnCall:", [(e["answered"], e["json"]["state"]) for e in oc])
' "$dedup" "http://vigil.example/incidents/" "$id" || fail "OnCall's requests are not as documented"

  echo "--- status page"
  capcheck '
sp = [e for e in E if e["path"].startswith("/sp/")]
order = ["investigating", "identified", "monitoring", "resolved"]
assert sp[0]["method"] == "POST" and sp[0]["path"] == "/sp/v1/pages/PAGE/incidents", (sp[0]["method"], sp[0]["path"])
assert sp[0]["answered"] == 201
inc = sp[0]["json"]["incident"]
assert inc["name"] and inc["status"] == "investigating" and inc.get("body"), inc
patches = sp[1:]
assert patches and all(e["method"] == "PATCH" for e in patches), [e["method"] for e in patches]
want = "/sp/v1/pages/PAGE/incidents/" + sp[0]["reply"]["id"]
assert all(e["path"] == want for e in patches), "PATCHes not to %s (the created one): %r" % (want, [e["path"] for e in patches])
st = [order.index(e["json"]["incident"]["status"]) for e in patches]
assert st == sorted(st) and order[st[-1]] == "resolved", [order[i] for i in st]
for e in sp:
    assert e["headers"].get("Authorization") == "OAuth statuspage-api-key", "Authorization header"
print("status page:", [(e["method"], e["json"]["incident"].get("status"), e["answered"]) for e in sp])
' || fail "the status page requests are not as documented"

  echo "--- webhooks"
  capcheck '
secret = A[0].encode()
hk = [e for e in E if e["path"] == "/hook"]
assert hk[0]["answered"] == "hang" and hk[1]["answered"] == 200, [e["answered"] for e in hk]
gap = hk[1]["t"] - hk[0]["t"]
assert gap >= 1.9, "retried %.2fs after a hung attempt with timeout = 2s" % gap
for e in hk:
    sig = {k.lower(): v for k, v in e["headers"].items()}.get("x-vigil-signature")
    assert sig, "no X-Vigil-Signature header"
    mac = hmac.new(secret, e["body"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(sig.split("=", 1)[-1].lower(), mac), "bad signature %r (expected %s)" % (sig, mac)
    assert e["json"] is not None, "not JSON"
assert A[1] in hk[1]["body"], "the webhook does not name the incident"
# The slow one answers after 3 s, past the 2 s timeout: given up, tried again, delivered.
slow = [e for e in E if e["path"] == "/slowhook"]
assert [e["mode"] for e in slow[:2]] == ["slow", "ok"], [(e["answered"], e["mode"]) for e in slow]
assert slow[1]["t"] - slow[0]["t"] >= 1.9, "retried %.2fs after a slow attempt" % (slow[1]["t"] - slow[0]["t"])
assert all("x-vigil-signature" not in {k.lower() for k in e["headers"]} for e in slow), "signed without a key"
print("webhook:", [(e["answered"], e["mode"]) for e in hk], "retry gap %.2fs; slow:", [e["mode"] for e in slow])
' "hook-hmac-secret" "$id" || fail "the webhook requests are not as documented"
  # No secret in the journal.
  ! journal_has -u vigil --grep "$key|statuspage-api-key|hook-hmac-secret" || fail "a secret was logged"
}

# The fleet budget (docs/FLEET.md) in the test-bed: a real etcd and three more vigil processes
# (hosts a, b, c) with their own state and config, each watching one shared dependency with a
# rollback capped at fleet_max = 1. Release B goes out to all three as the dependency fails:
# they must roll back strictly one after the other (each start after the previous one's end in
# the journal), the others logging "held: fleet budget".
case_fleet_one_at_a_time() {
  [[ -n "${VIGIL_TEST_ETCD:-}" ]] || fail "VIGIL_TEST_ETCD is not set (scripts/test.sh sets it)"
  testbed_fleet_up "$TB" e2e 8082 || fail "etcd or the dependency did not start"
  local host
  for host in a b c; do
    wait_until 20 journal_has -u "vigil-fleet-$host" --grep "release A of app is known good" ||
      fail "host $host did not see release A healthy"
  done
  for host in a b c; do tb ln -sfn releases/B "/srv/fleet-$host/current"; done
  tb curl -fsS -o /dev/null http://127.0.0.1:8082/_mode/fail
  for host in a b c; do
    wait_until 60 journal_has -u "vigil-fleet-$host" --grep "started rollback:app" ||
      fail "host $host never rolled back"
  done
  for host in a b c; do
    wait_until 20 journal_has -u "vigil-fleet-$host" --grep "did not help" ||
      fail "host $host's rollback never ended"
  done
  # START END per host (journal timestamps, one clock), sorted by start: no overlap.
  local spans prev_end="" start end
  spans=$(for host in a b c; do
    start=$(tb journalctl -u "vigil-fleet-$host" -o short-unix --no-pager -q --grep "started rollback:app" | head -n 1 | cut -d' ' -f1)
    end=$(tb journalctl -u "vigil-fleet-$host" -o short-unix --no-pager -q --grep "did not help" | head -n 1 | cut -d' ' -f1)
    echo "$start $end $host"
  done | sort -n)
  echo "$spans" >&2
  while read -r start end host; do
    # short-unix stamps have six decimals: without the dot they compare as integers.
    if [[ -n "$prev_end" ]] && ((10#${start/./} < 10#${prev_end/./})); then
      fail "host $host started its rollback at $start, before the previous one ended at $prev_end"
    fi
    prev_end=$end
  done <<<"$spans"
  local held
  held=$(tb journalctl -u 'vigil-fleet-*' -o cat --no-pager -q --grep "held: fleet budget: slots for rollback:app: 1 of 1 taken" | wc -l)
  ((held >= 2)) || fail "expected the waiting hosts to log the fleet hold, got $held line(s)"
  # `vigil status` exits 1 while incidents are open: its output is read whole first.
  local status
  status=$(tb vigil status --socket /run/vigil-fleet-a.sock || true)
  grep -q "Fleet: e2e (etcd http://127.0.0.1:2379; lease live)" <<<"$status" ||
    fail "vigil status does not show the fleet: $status"
  # The metrics of each agent (testbed_fleet_up: a on 9721, b 9722, c 9723): etcd up, its
  # rollback counted, and the slot requests, of which the waiting hosts' were answered "full".
  local port metrics value full=0
  for port in 9721 9722 9723; do
    metrics=$(tb curl -fsS "http://127.0.0.1:$port/metrics") || fail "no metrics on $port"
    grep -qx 'vigil_fleet_etcd_up{fleet="e2e"} 1' <<<"$metrics" ||
      fail "agent on $port: etcd not up in its metrics"
    grep -qE '^vigil_mitigations_total\{action="rollback:app",outcome="started"\} [1-9]' <<<"$metrics" ||
      fail "agent on $port: its rollback is not in vigil_mitigations_total: $(grep '^vigil_mitigations' <<<"$metrics")"
    grep -qE '^vigil_fleet_slot_requests_total\{fleet="e2e",action="rollback:app",answer="granted"\} [1-9]' <<<"$metrics" ||
      fail "agent on $port: no granted slot request in its metrics"
    value=$(sed -n 's/^vigil_fleet_slot_requests_total{fleet="e2e",action="rollback:app",answer="full"} //p' <<<"$metrics")
    full=$((full + ${value:-0}))
  done
  ((full >= 2)) || fail "the agents' metrics count $full slot request(s) answered full, expected at least 2"
}

# tests/testbed/faults.sh reuses the helpers above.
[[ ${E2E_AS_LIBRARY:-} == 1 ]] && return 0

cmd=${1:-}
case "$cmd" in
  setup)
    DEBDIR=$(realpath -m "${2:?DEBDIR}")
    "$here/../../scripts/build-deb.sh" "$DEBDIR" >/dev/null
    testbed_build >/dev/null
    ;;
  all)
    for c in "${CASES[@]}"; do
      echo "=== $c"
      "$0" "$c" "$2" "$3"
    done
    ;;
  *)
    [[ " ${CASES[*]} " == *" $cmd "* ]] || {
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 2
    }
    DEBDIR=$(realpath "${2:?DEBDIR}")
    SUPPORTDIR=$(realpath "${3:?SUPPORTDIR}")
    start_case "$cmd"
    "case_$cmd"
    echo "ok: $cmd"
    ;;
esac
