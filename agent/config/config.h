// vigil.toml: typed configuration, loaded with toml++ and validated as a whole.
//
// Validation collects *all* errors, each with the file:line:col of the offending node, so an
// operator fixes a broken file in one pass. Unknown keys are errors: a typo such as `intreval`
// must never be silently ignored.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/http_method.h"
#include "agent/core/ip.h"
#include "agent/core/observation.h"

namespace re2 {
class RE2;
}

namespace vigil {

struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
};

struct ConfigError {
  SourcePos where;
  std::string message;
  // "FILE:LINE:COL: message" (systemd and compiler style, so editors can jump to it).
  std::string to_string() const;
};

enum class DryRun { no, yes };

struct AgentSettings {
  std::string hostname;  // defaults to gethostname()
  std::string state_dir = "/var/lib/vigil";
  DryRun dry_run = DryRun::no;
  // The CLI's Unix socket. /run/vigil is the unit's RuntimeDirectory.
  std::string control_socket = "/run/vigil/control.sock";
  // Prometheus metrics "ADDRESS:PORT" on a loopback address; "" = off (the default).
  std::string metrics_listen;
  // An incident still open after this long is raised one level. Zero: never.
  Duration upgrade_after = std::chrono::hours(1);
  // Who may change state over the control socket (ack, maintain): root, and the members of
  // this group ("": root only). Members of `vigil` may only read (status, incidents).
  std::string admin_group;
  // Retention of resolved incidents' timelines (state_dir/incidents): deleted once last written
  // this long ago (zero: kept forever), and the oldest beyond max_incidents files. Why 90 days
  // and 10,000: a quarter's postmortems, and `vigil incidents` stays fast on a small host.
  Duration keep_incidents = std::chrono::hours(24 * 90);
  int max_incidents = 10'000;
};

// Flap detection: percent of state changes among the last `window` results, with hysteresis
// (Nagios' method, unweighted): flapping starts above `high`, stops below `low`.
struct FlapSettings {
  int window = 20;    // results considered; at most 64
  double low = 0.25;  // stops flapping when the change rate falls below this
  double high = 0.5;  // starts flapping when the change rate rises above this
};

// An inclusive range of accepted HTTP status codes.
struct StatusRange {
  int low = 200;
  int high = 399;
  bool operator==(const StatusRange&) const = default;
};

struct HttpSettings {
  std::string url;
  HttpMethod method = HttpMethod::get;
  std::vector<StatusRange> expect_status{{200, 399}};  // 2xx and redirects are healthy by default
  std::string body_contains;
  std::string body_regex;  // source text, for display and comparison
  std::shared_ptr<const re2::RE2> body_regex_compiled;
  std::vector<std::pair<std::string, std::string>> headers;
  bool verify_tls = true;  // on by default: a MITM is an incident too

  bool status_expected(long status) const;
};

enum class UnitExpect { active, inactive };

struct UnitSettings {
  std::vector<std::string> units;  // one check may watch several units
  UnitExpect expect = UnitExpect::active;
  // A restart loop: this many restarts by the unit's own Restart= within restart_loop_window.
  // Why 3 in 1m: one restart is systemd doing its job; three in a minute is a crash loop.
  int restart_loop_count = 3;
  Duration restart_loop_window{60'000};
};

struct JournalPattern {
  std::string source;
  std::shared_ptr<const re2::RE2> re;
};

struct JournalSettings {
  // Which entries are read: those of the units OR those of the identifiers, each narrowed by
  // every one of comms, exes, uids and transports that is given. Every field but
  // SYSLOG_IDENTIFIER is one journald sets itself from the kernel's view of the sender; a
  // check that can act (issue 13) must not rest on SYSLOG_IDENTIFIER, which any process sets.
  std::vector<std::string> units;        // _SYSTEMD_UNIT= matches (any of them)
  std::vector<std::string> identifiers;  // SYSLOG_IDENTIFIER= matches (any of them)
  std::vector<std::string> comms;        // _COMM= (any of them)
  std::vector<std::string> exes;         // _EXE= (any of them)
  std::vector<std::string> uids;         // _UID= (decimal, any of them)
  std::vector<std::string> transports;   // _TRANSPORT= (any of them)
  std::optional<int> max_priority;       // only entries with PRIORITY <= this
  std::vector<JournalPattern> patterns;  // an entry counts if any pattern matches ...
  std::vector<JournalPattern> ignore;    // ... and no ignore pattern does
  std::string key;                       // named capture that keys the count; "" = whole check
  int count = 1;                         // matches within `window` (per key) that fire
  Duration window{600'000};              // fail2ban's findtime: 10 minutes
  // Why 100k: a spoofed flood must not grow memory without bound; 100k keys is ~20 MiB worst
  // case and far above any real attack's distinct sources within one window.
  std::size_t max_keys = 100'000;
  // On first start (no saved cursor), read back this far, so a restart after an upgrade or a
  // crash does not miss what happened meanwhile, yet never replays days of history.
  Duration catch_up{600'000};
};

// Severity per kind of failure, plus the two latency thresholds.
struct SeverityRules {
  // Indexed by FailureKind: a flat array, not a map, since a thousand checks each carry a copy.
  std::array<Severity, kFailureKindCount> on_failure{};
  Severity latency_warn = Severity::sev3;
  Severity latency_crit = Severity::sev2;

  // Defaults: a service that cannot be reached or answers 5xx is down for everyone (SEV1);
  // a wrong answer (4xx, unexpected status or body) is a broken feature (SEV2). A failed,
  // crash-looping or given-up unit is SEV1; one merely not running is SEV2; a unit name that
  // does not exist is a config mistake (SEV3). A journal rule is SEV2 unless configured.
  static SeverityRules defaults();
  Severity for_failure(FailureKind k) const { return on_failure[static_cast<std::size_t>(k)]; }
  void set(FailureKind k, Severity s) { on_failure[static_cast<std::size_t>(k)] = s; }
};

// A mitigation, defined once as [action.KIND.NAME] and named "KIND:NAME" in checks' ladders.
enum class ActionKind { restart, rollback, block };
std::string_view to_string(ActionKind k);

struct ActionConfig {
  ActionKind kind = ActionKind::restart;
  std::string name;  // NAME of [action.KIND.NAME]
  // restart: the unit to restart. rollback: the unit restarted after the switch ("": none).
  std::string unit;
  std::string dir;  // rollback: the deploy directory (releases/ and current)
  // rollback: only when `current` was switched less than this long ago. Why 1h: a bad deploy
  // shows itself within minutes; a failure hours later is more likely a dependency, and rolling
  // back then would only walk the app into old code.
  Duration deployed_within{3'600'000};
  bool reset_failed = false;  // restart: clear a unit's start-limit-hit before restarting it
  // restart: how long the restart job may take. Why 90s: systemd's own default start timeout.
  Duration job_timeout{90'000};
  // block: for how long, doubling for a repeat offender up to max_block_for.
  Duration block_for{3'600'000};
  Duration max_block_for{86'400'000};
  bool kill_connections = true;  // block: also cut the address's established connections
  // Budget: at most max_runs runs per target within `per` (counted across vigil restarts).
  // Why 3 per hour: a restart that did not hold three times is not going to; a human is needed.
  int max_runs = 3;
  Duration per{3'600'000};
  // After a run, no other run of this action on the same target for this long. Why 1m: a
  // restarted service needs a moment to warm up before a second restart could tell anything.
  Duration cooldown{60'000};
  // After a run, how long the incident's checks have to pass again before it counts as failed.
  // Why 2m: longer than a typical service start plus recover_after healthy results; short
  // enough that the next rung (or a human) is not kept waiting on a fix that did not work.
  Duration verify_within{120'000};
  std::optional<DryRun> dry_run;  // per action; unset: [agent] dry_run
  // The fleet's cap ([fleet], docs/FLEET.md): at most this many hosts run this action (by ref)
  // at once, or this percentage of the fleet's live hosts (at least one). 0: no cap.
  int fleet_max = 0;
  int fleet_max_percent = 0;
  SourcePos where;

  bool fleet_capped() const { return fleet_max > 0 || fleet_max_percent > 0; }

  std::string ref() const { return std::string(to_string(kind)) + ":" + name; }
};

// Guards that apply to every mitigation.
struct MitigationSettings {
  // Addresses and blocks never to be blocked (besides loopback, the host's own addresses and
  // its default gateways, which are never blocked at all).
  std::vector<Cidr> allow;
  // The peer of a live (authenticated) SSH session is never blocked: fail2ban's worst day is
  // the one it locks out the admin who is fixing the incident.
  bool protect_ssh_sessions = true;
  // An address that an `allow` rule of ufw lets in from a given source (not from anywhere) is
  // never blocked: the admin's firewall already says it is trusted (issue 13).
  bool respect_ufw_allow = true;
  // Why 10 a minute: a real brute force comes from a few addresses; more than ten new
  // offenders a minute is a botnet (ufw is the wrong tool) or a parsing mistake.
  int max_blocks_per_minute = 10;
  // An open circuit (a target vigil gave up on) closes after a human acks its incident or
  // after the target has been healthy this long. Why 1h: the same budget window as max_runs;
  // a service healthy for an hour has earned its automation back.
  Duration circuit_reset{3'600'000};
};

// Paging (issue 7): where pages go. Defined as [[notify]] tables; routed by severity and team.
enum class NotifierKind { alertmanager, pagerduty, oncall, statuspage, webhook };
std::string_view to_string(NotifierKind k);

struct NotifyConfig {
  std::string name;  // unique; defaults to the kind ("alertmanager", ...) when there is one
  NotifierKind kind = NotifierKind::webhook;
  // alertmanager: every peer of the HA cluster, base URLs ("http://am1:9093"); vigil posts to
  // each, as Prometheus does, and the cluster deduplicates. pagerduty: the Events API base
  // (default "https://events.pagerduty.com"). oncall, webhook: the URL posted to. statuspage:
  // the API base (default "https://api.statuspage.io").
  std::vector<std::string> urls;
  // Routing: incidents at this severity or worse are paged here (SEV3: every incident).
  Severity severity = Severity::sev3;
  // Routing: only incidents of these teams (a check's `team`); empty: every team.
  std::vector<std::string> teams;
  // pagerduty: routing key (32 chars); statuspage: API key; webhook: HMAC-SHA256 key ("": no
  // signature). Read from `*_file` (must not be readable by group or others) or inline. Never
  // logged, never written to the outbox.
  std::string secret;
  std::string secret_file;                 // where it came from, for messages ("" when inline)
  std::string page_id;                     // statuspage
  std::vector<std::string> component_ids;  // statuspage
  // alertmanager: re-send every firing alert this often (Prometheus' default is 1m), so the
  // alert never times out while the incident is open; endsAt is set 4 of these ahead.
  Duration resend_every{60'000};
  // statuspage: post an update this often while the incident is open, even with no news.
  // webhook: re-page an unacknowledged SEV1 this often.
  Duration update_every{1'800'000};
  Duration timeout{10'000};  // one delivery attempt
  // At most this many deliveries a minute to this target (PagerDuty allows ~120 per routing
  // key); more wait in the outbox, none is dropped for it. Alertmanager's default is 6000 (per
  // peer): it deduplicates and groups by itself, and a burst must not wait minutes.
  int max_per_minute = 60;
  bool heartbeat = false;  // alertmanager: keep an always-firing VigilHeartbeat alert
  std::string signature_header = "X-Vigil-Signature";        // webhook, with `secret`
  std::vector<std::pair<std::string, std::string>> headers;  // webhook: extra headers
  bool verify_tls = true;
  SourcePos where;
};

// An escalation chain for a team, for targets that do not escalate on their own (webhooks):
// step 0 is paged when the incident is paged; each next step after its `after` (counted from
// the previous step) unless a human acknowledged meanwhile.
struct EscalationStep {
  std::string notify;  // a [[notify]] of kind webhook
  Duration after{0};
};
struct EscalationConfig {
  std::string team;  // "" = every team without a chain of its own
  std::vector<EscalationStep> steps;
  SourcePos where;
};

struct PagingSettings {
  // Why 10000: a day of a bad outage at a few pages a minute; a page is ~2 KiB on disk.
  std::size_t outbox_max = 10'000;
  // A dead agent must be noticed centrally: heartbeat alerts (notify.heartbeat) and the
  // heartbeat URL are sent this often.
  Duration heartbeat_every{60'000};
  std::string heartbeat_url;  // GET this every heartbeat_every ("": none)
  // Where a human reads the incident ("https://vigil.example/incidents/"): the incident id is
  // appended for links in pages ("": "vigil incident show ID" on the host).
  std::string link_base;
};

struct CheckConfig {
  std::string name;
  std::string probe;  // "http"
  Duration interval{10'000};
  Duration timeout{5'000};
  int fail_after = 1;
  int recover_after = 2;
  int confirm = 2;  // extra re-probes before a failure counts
  Duration confirm_interval{200};
  std::optional<Duration> latency_warn;
  std::optional<Duration> latency_crit;
  SeverityRules severity = SeverityRules::defaults();
  // Routing and correlation: checks naming the same service share one incident; the team is
  // who gets paged; owner_unit (HTTP checks) is the unit serving the endpoint, whose state and
  // journal lines go into the incident's evidence.
  std::string service;
  std::string team;
  std::string owner_unit;
  FlapSettings flap;
  // The mitigation ladder, "KIND:NAME" refs into Config::actions, tried in order.
  std::vector<std::string> mitigate;
  std::variant<HttpSettings, UnitSettings, JournalSettings> settings;
  SourcePos where;

  const HttpSettings* http() const { return std::get_if<HttpSettings>(&settings); }
  const UnitSettings* unit() const { return std::get_if<UnitSettings>(&settings); }
  const JournalSettings* journal() const { return std::get_if<JournalSettings>(&settings); }
};

// What a capped action does while etcd cannot be reached.
enum class FleetUnreachable { hold, act };

// [fleet]: one budget for the automated actions of many hosts, kept in etcd (docs/FLEET.md).
struct FleetSettings {
  std::string name;               // keys live under /vigil/NAME/
  std::vector<std::string> etcd;  // client URLs ("http://10.0.0.1:2379"); empty: no fleet
  // A host that dies holding a slot frees it after this. Why 30s: long enough to ride out a
  // brief etcd election (keep-alives go every third of it), short enough that a dead host does
  // not keep the fleet's budget for long.
  Duration lease_ttl{30'000};
  // One etcd request. Why 2s: etcd answers in milliseconds; longer means it is in trouble, and
  // a held action is asked again anyway.
  Duration timeout{2'000};
  // A held action asks again this often while its incident lasts. Why 5s: a slot freed by a
  // verified recovery is taken within seconds, and 500 waiting hosts cost etcd 100 requests/s.
  Duration retry{5'000};
  // Why hold by default: a fleet-wide outage is exactly when etcd may be unreachable too, and
  // then 500 hosts acting at once is the storm the cap exists to prevent.
  FleetUnreachable unreachable = FleetUnreachable::hold;
  // TLS to etcd (https:// endpoints): a CA bundle, and a client certificate with its key.
  std::string ca_file, cert_file, key_file;

  bool enabled() const { return !etcd.empty(); }
  bool operator==(const FleetSettings&) const = default;
};

std::string_view to_string(FleetUnreachable u);

struct Config {
  std::string path;
  AgentSettings agent;
  std::vector<CheckConfig> checks;
  MitigationSettings mitigation;
  std::map<std::string, ActionConfig> actions;  // by ref "KIND:NAME"
  std::vector<NotifyConfig> notify;             // in file order
  std::vector<EscalationConfig> escalations;
  PagingSettings paging;
  FleetSettings fleet;

  const CheckConfig* find_check(std::string_view name) const;
  const ActionConfig* find_action(std::string_view ref) const;
  const NotifyConfig* find_notify(std::string_view name) const;
  // The chain for `team` (its own, else the catch-all one with team ""), or nullptr.
  const EscalationConfig* escalation_for(std::string_view team) const;
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // sorted by position
};

// parse_config() and load_config_file() are in kinds.h (with the kinds of probes, actions and
// notifiers to read) and agent/load_config.h (with the built-in ones).

// The default config location.
inline constexpr const char* kDefaultConfigPath = "/etc/vigil/vigil.toml";

}  // namespace vigil
