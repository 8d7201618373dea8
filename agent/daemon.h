// The daemon: one io_context on one thread runs every check on its own absolute-time timer,
// feeds observations to the classifier, logs findings, and talks to systemd (ready, watchdog,
// reload, stop). SIGHUP reloads; an invalid new config is refused and the old one keeps running.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "actions/block.h"
#include "actions/protect.h"
#include "actions/register.h"
#include "actions/rollback.h"
#include "agent/config/config.h"
#include "agent/control.h"
#include "agent/detect/classifier.h"
#include "agent/incidents/incident.h"
#include "agent/incidents/incident_index.h"
#include "agent/incidents/timeline.h"
#include "agent/metrics.h"
#include "agent/mitigate/mitigation.h"
#include "agent/sys/http.h"
#include "agent/sys/process.h"
#include "agent/sys/units.h"
#include "notify/outbox.h"
#include "notify/pager.h"
#include "probes/probe.h"

namespace vigil {

struct DaemonOptions {
  std::string config_path;
  // Set by `--dry-run`: forces dry-run whatever the file says, also across reloads.
  DryRun force_dry_run = DryRun::no;
};

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, DaemonOptions options, Config config);
  ~Daemon();

  // Starts the checks, signal handling and the watchdog, and tells systemd we are ready.
  void start();
  // Stops everything: in-flight requests are cancelled, timers and signals released, so the
  // io_context runs out of work and io.run() returns.
  void stop();
  // Re-reads the config file. Returns false (and keeps the running config) if it is invalid.
  bool reload();

  const Config& config() const { return config_; }
  const IncidentBook& incidents() const { return book_; }
  // Observer for tests and future consumers: called for every finding after it is logged.
  std::function<void(const Finding&)> on_finding;

 private:
  struct Runner;

  void apply(Config config);
  static ControlAccess control_access(const AgentSettings& agent);
  void prune_incidents(TimePoint now);
  void schedule_first(const std::shared_ptr<Runner>& r);
  void schedule_next(const std::shared_ptr<Runner>& r);
  void wait_tick(const std::shared_ptr<Runner>& r);  // runs tick() when the timer expires
  void tick(const std::shared_ptr<Runner>& r);
  void observed(Runner& r, const Observation& obs);
  void arm_signals();
  void arm_watchdog();

  // The incident book: findings and flapping go in; every event that comes out is written to
  // the incident's timeline file (durably, before anything acts on it) and logged.
  void load_incidents();
  // Writes the index entry of resolved incident `inc` for the current version of its timeline.
  void index_resolved(const Incident& inc);
  void record(std::vector<IncidentBook::Change> changes);
  void gather_evidence(const CheckConfig& check, const std::string& key, TimePoint at);
  void watch_owner_units(const Config& config);
  bool in_maintenance(const std::string& check, TimePoint now) const;
  void save_maintenance() const;
  void load_maintenance();
  void arm_housekeeping();
  void housekeeping();

  // Mitigations (daemon_actions.cpp): the ladder decides, the actions execute, every step is
  // written to the incident's timeline, and the ledger keeps budgets across restarts.
  void mitigate(const std::string& incident);
  void mitigate_all();
  // Runs the decided action through its kind's Action (actions/), or records what a dry run
  // would do; its result comes back through action_done().
  void run_action(const std::string& incident, Decision d);
  void action_done(const std::string& incident, const Decision& d, ActionResult result,
                   const std::string& text);
  void check_verifications(TimePoint now);
  // A healthy result of `check`: the releases its rollback actions point at are known good.
  void mark_release_healthy(const CheckConfig& check, TimePoint at);
  void load_mitigation_state();
  bool save_ledger() const;                       // false (and logged) when it could not be written
  bool fresh(const Incident& inc) const;          // every member check reported since vigil started
  std::string lock_key(const Decision& d) const;  // what an action holds: a unit, app or address
  void load_release_histories();
  void forget_rolled_back(const std::string& incident, const TimelineEvent& e);
  void save_blocks() const;
  void reconcile_blocks();
  void expire_blocks(TimePoint now);
  void close_healthy_circuits(TimePoint now);
  std::vector<IncidentBook::Change> mitigation_event(const std::string& incident, const Decision& d,
                                                     const char* outcome, const std::string& text,
                                                     TimePoint at);
  // Records "on hold: WHY" once per reason (the ladder is asked every second).
  void hold(const std::string& incident, const Decision& d, const std::string& why, TimePoint at);
  void set_state(const std::string& incident, IncidentState s, const std::string& why,
                 TimePoint at);
  void fast_verify(const std::string& incident, TimePoint until);

  // Paging (daemon_pages.cpp): the pager decides, the outbox keeps every page durably until a
  // target accepted it, the HTTP client delivers; each queued page is a timeline event.
  void load_outbox();
  void page(const std::string& incident);  // plans and queues what one incident needs now
  void page_all();
  void page_incident(const Incident& inc);
  void queue_pages(const Incident& inc, std::vector<PlannedPage> planned);
  // At start: a page in the outbox whose timeline event was lost (a crash between the two
  // writes) gets its event now, so the pager does not plan it a second time.
  void reconcile_outbox();
  // PagerDuty change events for the mitigation events recorded meanwhile (held_changes_).
  void flush_change_pages();
  // The end of a loop turn: pages what the turn's recorded changes call for (to_page_, then
  // held_changes_). Posted by record(); also run by stop(), so nothing is left unqueued.
  void drain();
  void deliver();
  void delivery_done(std::uint64_t seq, const sys::HttpResponse& resp);
  void send_heartbeats(TimePoint now);
  void poll_silences(TimePoint now);
  nlohmann::json paging_json(TimePoint now) const;
  // An ack (CLI or Alertmanager silence): recorded, pages acknowledged, circuit closed.
  void acknowledge(const std::string& id, const std::string& text,
                   std::map<std::string, std::string> fields, TimePoint now);

  // The control socket (CLI) and the metrics endpoint.
  ControlAnswer control(const nlohmann::json& request, const ControlPeer& peer);
  nlohmann::json control_json(const nlohmann::json& request, const ControlPeer& peer);
  ControlAnswer incidents_answer();
  static std::string summary_text(const nlohmann::json& summary);
  nlohmann::json status_json(TimePoint now) const;
  std::string metrics_text() const;

  boost::asio::io_context& io_;
  DaemonOptions options_;
  Config config_;
  sys::HttpClient http_;
  sys::UnitWatcher units_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_;
  std::optional<Duration> watchdog_every_;
  std::map<std::string, std::shared_ptr<Runner>> runners_;
  boost::asio::steady_timer::time_point grid_start_{};  // origin of the first-run grid
  bool stopping_ = false;

  IncidentBook book_;
  IncidentStore store_;
  IncidentIndex index_;         // summaries of resolved timelines, by file version
  bool index_failing_ = false;  // the last index write failed (logged once)
  ControlServer control_;
  std::unique_ptr<MetricsServer> metrics_;
  boost::asio::steady_timer housekeeping_;
  struct Maintenance {
    std::set<std::string> checks;  // empty: every check
    TimePoint until{};
    std::string reason;
  };
  std::vector<Maintenance> maintenance_;
  // Units that own HTTP endpoints (owner_unit), watched so their state is at hand as evidence.
  struct OwnerUnit {
    sys::UnitWatcher::WatchId watch = 0;
    sys::UnitState state;
  };
  std::map<std::string, OwnerUnit> owner_units_;
  TimePoint started_{};
  std::uint64_t incidents_opened_ = 0;

  sys::CommandRunner commands_;
  MitigationLedger ledger_;
  BlockList blocks_;
  bool blocks_reconciled_ = false;  // no block/unblock before ufw and the list agree
  std::map<std::string, ReleaseHistory> releases_;  // by rollback action name
  // One Action per kind, over units_, commands_, blocks_ and releases_ (declared before it).
  std::map<ActionKind, std::unique_ptr<Action>> actions_;
  std::map<std::string, std::string> last_wait_;    // incident -> last "waiting" reason logged
  std::map<std::string, TimePoint> healthy_since_;  // circuit key -> no open incident since
  std::set<std::string> acting_;                    // incidents with an action in flight
  std::uint64_t mitigations_run_ = 0;
  std::set<std::string> busy_;                   // lock_key()s of actions in flight
  std::optional<ProtectedAddresses> protected_;  // the never-block view, read <= 1/s if whole
  TimePoint protected_at_{};
  // `vigil incidents`: the summary of each resolved timeline, by the file version it came from.
  struct Summary {
    std::pair<std::uintmax_t, std::int64_t> stamp;
    std::string text;  // the summary's JSON, serialized as the control socket sends it
  };
  std::map<std::string, Summary> summaries_;
  std::uint64_t protection_failures_ = 0;  // reader failures since start (metrics)
  std::uint64_t housekeeping_ticks_ = 0;

  Outbox outbox_;
  bool paging_ready_ = false;  // the outbox is loaded: pages may be queued
  // What record() leaves for paging, drained once at the end of the loop turn (drain()):
  // incidents whose timelines changed, in order, and the mitigation events to send as change
  // events. record() never pages itself, so paging never re-enters record().
  std::vector<std::string> to_page_;
  std::vector<std::pair<std::string, TimelineEvent>> held_changes_;
  bool drain_posted_ = false;  // drain() is posted for the end of this turn
  std::map<std::uint64_t, sys::HttpClient::RequestId> sending_;         // seq -> request
  std::map<std::pair<std::string, std::string>, TimePoint> last_sent_;  // (notifier, incident)
  std::map<std::string, std::deque<TimePoint>> sent_recently_;  // target -> sends in the last 60s
  std::mt19937_64 rng_{std::random_device{}()};
  std::uint64_t pages_delivered_ = 0, pages_failed_ = 0, pages_queued_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> page_counts_;  // (notifier, outcome)
  TimePoint heartbeat_at_{}, silences_at_{};
  std::set<std::string> heartbeat_failing_;  // targets whose last heartbeat failed (logged once)
};

}  // namespace vigil
