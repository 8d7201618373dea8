# shellcheck shell=bash
# The "central" paging site for vigil's paging tests (issue 7), sourced after testbed.sh: a
# network namespace NAME-central wired to the test-bed container NAME, holding
#   - two real Prometheus Alertmanagers (Debian's 0.25, run from the test-bed's cached root file
#     system: never installed on the host), clustered:
#       peer a  web 10.77.0.1:9093   gossip 127.0.0.1:9094
#       peer b  web 10.77.0.1:9095   gossip 127.0.0.1:9096
#   - a capture server (tests/support/capture_server.py) on 10.77.0.1:8088, standing in for
#     PagerDuty (/pd), OnCall (/oncall), a status page (/sp), webhooks (/hook), and receiving what
#     the Alertmanagers notify: peer a posts to /am/a, peer b to /am/b (heartbeats: /hb/a, /hb/b).
# The container reaches them at 10.77.0.1 (its own address on that link: 10.77.0.2). Inside the
# namespace, gossip and notifications go over loopback, so central_link_down (the site cut off
# from the container) does not split the cluster or lose its notifications.
#
#   central_up NAME ARTIFACT_DIR   start it all; waits until both peers are ready and clustered
#   central_down                   stop every process (the namespace goes with testbed_down);
#                                  call it from the caller's EXIT trap, before testbed_down
#   central_am_stop a|b            stop one peer (it leaves the cluster)
#   central_am_start a|b           start it again; waits until it has rejoined
#   central_capture_mode PATH MODE [retry_after=S] [slow_ms=MS] [count=N]
#                                  fault mode for requests under PATH: ok|500|429|slow|hang|400
#   central_capture_reset          empty the capture file, clear the fault modes
#   central_alerts [-p a|b] [FILTER...]
#                                  GET /api/v2/alerts (peer a by default), FILTER like
#                                  'alertname="VigilIncident"'; prints the JSON
#   central_captured [PATH_PREFIX] the captured requests, one JSON line each
#   central_am_notifications       one line per alert in each Alertmanager notification, in order:
#                                  "PEER STATUS ALERTNAME INCIDENT"
#   central_am_metric a|b NAME [LABEL_REGEX]
#                                  a counter from the peer's /metrics, e.g. the alerts it received:
#                                  alertmanager_alerts_received_total 'status="resolved"'
#   central_link_down / central_link_up
#                                  take the site's end of the link down / up
# Artifacts in ARTIFACT_DIR: am-a.log, am-b.log (Alertmanager, --log.level=info), am-a.yml,
# am-b.yml, capture.jsonl, capture.log, pids/.

CENTRAL_IP=10.77.0.1
CENTRAL_CONTAINER_IP=10.77.0.2
CENTRAL_CAPTURE_PORT=8088
CENTRAL_CAPTURE_URL="http://$CENTRAL_IP:$CENTRAL_CAPTURE_PORT"
CENTRAL_AM_URL_A="http://$CENTRAL_IP:9093"
CENTRAL_AM_URL_B="http://$CENTRAL_IP:9095"
central_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CENTRAL_TB=""
CENTRAL_NS=""
CENTRAL_DIR=""
CENTRAL_ROOTFS=""
CENTRAL_TMP=""

central_log() { printf 'central: %s\n' "$*" >&2; }

# Runs CMD in the central namespace.
central_exec() { ip netns exec "$CENTRAL_NS" "$@"; }
central_curl() { central_exec curl -fsS --max-time 5 "$@"; }

central_am_web_port() { case $1 in a) echo 9093 ;; b) echo 9095 ;; *) return 1 ;; esac; }
central_am_gossip_port() { case $1 in a) echo 9094 ;; b) echo 9096 ;; *) return 1 ;; esac; }
central_other() { case $1 in a) echo b ;; b) echo a ;; esac; }

# Polls CMD every 0.1 s for up to SECONDS.
central_wait() {
  local seconds=$1 i
  shift
  for i in $(seq $((seconds * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  return 1
}

central_write_config() {
  local peer=$1
  # group_interval must stay well above --cluster.peer-timeout (central_am_launch): the second
  # peer snapshots its alerts, waits peer-timeout, then compares the snapshot with the first
  # peer's notification log; with group_interval 1s its flushes run back to back, any change the
  # first peer notifies meanwhile (a resolve) looks new, and it sends a stale "firing", then
  # "resolved" again (seen with 1s/2s and 1s/5s). Groups are per incident, created on both peers
  # by the same (concurrent) send, so their ticks stay in phase: 10s leaves an 8s margin. A peer
  # that joins mid-incident ticks out of phase: a ~(2s/10s)^2/2 chance of that stale duplicate.
  # The price: a resolved notification comes up to 10s after the resolve.
  cat >"$CENTRAL_DIR/am-$peer.yml" <<YAML
# Written by tests/testbed/central.sh for peer $peer. The peers differ only in the receiver's URL
# path, so the capture shows which peer notified; the cluster dedupes on the receiver's name.
global:
  resolve_timeout: 5m
route:
  receiver: capture
  group_by: [incident]
  group_wait: 1s
  group_interval: 10s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="VigilHeartbeat"']
      receiver: heartbeat
      group_by: [host]
      group_wait: 1s
      group_interval: 10s
      repeat_interval: 1h
receivers:
  - name: capture
    webhook_configs:
      - url: http://127.0.0.1:$CENTRAL_CAPTURE_PORT/am/$peer
        send_resolved: true
  - name: heartbeat
    webhook_configs:
      - url: http://127.0.0.1:$CENTRAL_CAPTURE_PORT/hb/$peer
        send_resolved: true
YAML
  "$CENTRAL_ROOTFS/usr/bin/amtool" check-config "$CENTRAL_DIR/am-$peer.yml" >/dev/null
}

central_am_launch() {
  local peer=$1 other
  other=$(central_other "$peer")
  local web gossip other_gossip
  web=$(central_am_web_port "$peer")
  gossip=$(central_am_gossip_port "$peer")
  other_gossip=$(central_am_gossip_port "$other")
  mkdir -p "$CENTRAL_TMP/am-$peer"
  # Each peer names the other, so either can be restarted and rejoin. Gossip and push-pull are
  # fast and the settle short, so a (re)started peer takes part within a second or two.
  # peer-timeout: the second peer (by position among the live members: peers sort by a name
  # that starts with their start time, so a, started first, is first until it restarts) waits
  # that long for the first's notification log before notifying itself; free when one peer is
  # down (the survivor is then first). See central_write_config for its bound.
  # Debian's build reads its templates from /usr/share/prometheus/alertmanager (compiled in):
  # it runs chrooted in the cached root file system, in a mount namespace of its own where the
  # per-test temp dir is bound on /mnt (the cache itself is never written).
  echo "=== $(date -Is) start" >>"$CENTRAL_DIR/am-$peer.log"
  cp "$CENTRAL_DIR/am-$peer.yml" "$CENTRAL_TMP/am-$peer.yml"
  # Started straight from `ip netns exec` (no shell function in between), so $! is the
  # Alertmanager itself: every step execs the next.
  ip netns exec "$CENTRAL_NS" unshare --mount --propagation private -- sh -c \
    'root=$2 && mount --bind "$1" "$root/mnt" && shift 2 && exec chroot "$root" "$@"' \
    central-am "$CENTRAL_TMP" "$CENTRAL_ROOTFS" /usr/bin/prometheus-alertmanager \
    --config.file="/mnt/am-$peer.yml" \
    --storage.path="/mnt/am-$peer" \
    --web.listen-address="0.0.0.0:$web" \
    --web.external-url="http://$CENTRAL_IP:$web" \
    --cluster.listen-address="127.0.0.1:$gossip" \
    --cluster.advertise-address="127.0.0.1:$gossip" \
    --cluster.peer="127.0.0.1:$other_gossip" \
    --cluster.gossip-interval=100ms \
    --cluster.pushpull-interval=1s \
    --cluster.settle-timeout=1s \
    --cluster.probe-interval=200ms \
    --cluster.probe-timeout=100ms \
    --cluster.reconnect-interval=500ms \
    --cluster.peer-timeout=2s \
    --log.level=info \
    </dev/null >>"$CENTRAL_DIR/am-$peer.log" 2>&1 &
  echo $! >"$CENTRAL_DIR/pids/am-$peer"
}

# Whether peer $1 is ready and sees a cluster of $2 members.
central_am_clustered() {
  local peer=$1 want=$2 status
  status=$(central_curl "http://127.0.0.1:$(central_am_web_port "$peer")/api/v2/status") || return 1
  python3 -c '
import json, sys
c = json.loads(sys.argv[1])["cluster"]
sys.exit(0 if c.get("status") == "ready" and len(c.get("peers") or []) == int(sys.argv[2]) else 1)
' "$status" "$want"
}
central_am_ready() { central_curl "http://127.0.0.1:$(central_am_web_port "$1")/-/ready"; }
# The pid kept for peer $1 is the Alertmanager itself (so stopping it stops the peer).
central_am_pid_ok() {
  [[ "$(cat "/proc/$(central_pid "am-$1")/comm" 2>/dev/null)" == prometheus-ale* ]] || {
    central_log "pid $(central_pid "am-$1") of peer $1 is not the Alertmanager"
    return 1
  }
}

central_up() {
  local name=$1 dir=$2
  CENTRAL_TB=$name
  CENTRAL_NS="$name-central"
  CENTRAL_DIR=$(realpath -m "$dir")
  CENTRAL_ROOTFS=$(testbed_rootfs_dir)
  [[ -x "$CENTRAL_ROOTFS/usr/bin/prometheus-alertmanager" ]] || {
    central_log "no Alertmanager in $CENTRAL_ROOTFS (is prometheus-alertmanager in TESTBED_PACKAGES?)"
    return 1
  }
  mkdir -p "$CENTRAL_DIR/pids"
  CENTRAL_TMP=$(mktemp -d /tmp/vigil-central.XXXXXX)
  echo "$CENTRAL_TMP" >"$CENTRAL_DIR/tmpdir"
  testbed_peer "$name" central "$CENTRAL_IP/24" "$CENTRAL_CONTAINER_IP/24"
  central_write_config a
  central_write_config b
  : >"$CENTRAL_DIR/capture.jsonl"
  ip netns exec "$CENTRAL_NS" python3 "$central_here/../support/capture_server.py" \
    --listen "0.0.0.0:$CENTRAL_CAPTURE_PORT" --out "$CENTRAL_DIR/capture.jsonl" \
    </dev/null >>"$CENTRAL_DIR/capture.log" 2>&1 &
  echo $! >"$CENTRAL_DIR/pids/capture"
  central_am_launch a
  central_am_launch b
  if ! central_wait 20 central_curl "http://127.0.0.1:$CENTRAL_CAPTURE_PORT/_health"; then
    central_log "the capture server did not start:"
    cat "$CENTRAL_DIR/capture.log" >&2
    central_down
    return 1
  fi
  local p
  for p in a b; do
    if ! central_wait 30 central_am_ready "$p" || ! central_wait 30 central_am_clustered "$p" 2; then
      central_log "Alertmanager peer $p is not ready and clustered; its log:"
      tail -n 30 "$CENTRAL_DIR/am-$p.log" >&2
      central_down
      return 1
    fi
    central_am_pid_ok "$p" || {
      central_down
      return 1
    }
  done
}

central_pid() { cat "$CENTRAL_DIR/pids/$1" 2>/dev/null; }

# Stops the process whose pid is in pids/$1: SIGTERM, then SIGKILL after 10 s.
central_stop_proc() {
  local pid i
  pid=$(central_pid "$1") || return 0
  rm -f "$CENTRAL_DIR/pids/$1"
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

central_am_stop() {
  local peer=$1 other
  other=$(central_other "$peer")
  central_stop_proc "am-$peer"
  # A clean shutdown leaves the cluster: the other peer sees one member.
  central_wait 15 central_am_clustered "$other" 1 || {
    central_log "peer $other still counts $peer as a member"
    return 1
  }
}

central_am_start() {
  local peer=$1 other
  other=$(central_other "$peer")
  [[ -z "$(central_pid "am-$peer")" ]] || {
    central_log "peer $peer is already running"
    return 1
  }
  central_am_launch "$peer"
  if ! central_wait 30 central_am_ready "$peer" || ! central_wait 30 central_am_clustered "$peer" 2 ||
    ! central_wait 30 central_am_clustered "$other" 2; then
    central_log "peer $peer did not rejoin the cluster; its log:"
    tail -n 30 "$CENTRAL_DIR/am-$peer.log" >&2
    return 1
  fi
  central_am_pid_ok "$peer"
}

central_down() {
  [[ -n "$CENTRAL_DIR" ]] || return 0
  local f
  for f in "$CENTRAL_DIR"/pids/*; do
    [[ -e "$f" ]] && central_stop_proc "$(basename "$f")"
  done
  # Anything else this test started in the namespace (a stray curl): by pid, never by name.
  if [[ -n "$CENTRAL_NS" && -e "/run/netns/$CENTRAL_NS" ]]; then
    local pid
    for pid in $(ip netns pids "$CENTRAL_NS" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
  fi
  if [[ -n "$CENTRAL_TMP" && "$CENTRAL_TMP" == /tmp/vigil-central.* ]]; then rm -rf "$CENTRAL_TMP"; fi
  CENTRAL_TMP=""
}

central_capture_mode() {
  local path=$1 mode=$2 kv
  shift 2
  local body
  body=$(python3 -c '
import json, sys
d = {"path": sys.argv[1], "mode": sys.argv[2]}
for kv in sys.argv[3:]:
    k, _, v = kv.partition("=")
    d[k] = int(v) if k in ("count", "slow_ms") else v
print(json.dumps(d))' "$path" "$mode" "$@")
  central_curl -o /dev/null -X POST -H 'Content-Type: application/json' --data "$body" \
    "http://127.0.0.1:$CENTRAL_CAPTURE_PORT/_mode"
}

central_capture_reset() {
  central_curl -o /dev/null -X POST "http://127.0.0.1:$CENTRAL_CAPTURE_PORT/_reset"
}

central_alerts() {
  local peer=a
  if [[ "${1:-}" == -p ]]; then
    peer=$2
    shift 2
  fi
  local args=() f
  for f in "$@"; do args+=(--data-urlencode "filter=$f"); done
  central_curl -G "${args[@]}" "http://127.0.0.1:$(central_am_web_port "$peer")/api/v2/alerts"
}

central_captured() {
  python3 - "$CENTRAL_DIR/capture.jsonl" "${1:-}" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    if line.strip() and json.loads(line)["path"].startswith(sys.argv[2]):
        print(line, end="")
PY
}

central_am_notifications() {
  python3 - "$CENTRAL_DIR/capture.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    e = json.loads(line)
    if not e["path"].startswith("/am/") or not isinstance(e["json"], dict):
        continue
    peer = e["path"].split("/")[2]
    for a in e["json"].get("alerts", []):
        l = a.get("labels", {})
        print(peer, a.get("status"), l.get("alertname", "-"), l.get("incident", "-"))
PY
}

# The value of a counter of peer $1's /metrics summed over its label sets matching $3 (a regex
# over the labels, e.g. 'status="resolved"'): central_am_metric a alertmanager_alerts_received_total 'status="firing"'
central_am_metric() {
  central_curl "http://127.0.0.1:$(central_am_web_port "$1")/metrics" | python3 -c '
import re, sys
name, want, total = sys.argv[1], re.compile(sys.argv[2]), 0.0
for line in sys.stdin:
    m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", line.strip())
    if m and m.group(1) == name and want.search(m.group(2) or ""):
        total += float(m.group(3))
print(int(total) if total.is_integer() else total)' "$2" "${3:-}"
}

central_link_down() { ip -n "$CENTRAL_NS" link set eth0 down; }
central_link_up() { ip -n "$CENTRAL_NS" link set eth0 up; }

# amtool (from the test-bed's root file system) against peer a, e.g. `central_amtool alert query`.
central_amtool() {
  central_exec "$CENTRAL_ROOTFS/usr/bin/amtool" --alertmanager.url="http://127.0.0.1:9093" "$@"
}
