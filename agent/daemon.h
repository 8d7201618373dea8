// The daemon: one io_context on one thread runs every check on its own absolute-time timer,
// feeds observations to the classifier, logs findings, and talks to systemd (ready, watchdog,
// reload, stop). SIGHUP reloads; an invalid new config is refused and the old one keeps running.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actions/register.h"
#include "agent/config/config.h"
#include "agent/control.h"
#include "agent/detect/classifier.h"
#include "agent/fleet/budget.h"
#include "agent/incidents/incident.h"
#include "agent/incidents/incident_index.h"
#include "agent/incidents/timeline.h"
#include "agent/metrics.h"
#include "agent/mitigator.h"
#include "agent/sys/http.h"
#include "agent/sys/process.h"
#include "agent/sys/units.h"
#include "notify/paging.h"
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
  void load_incidents(TimePoint now);
  // Writes the index entry of resolved incident `inc` for the current version of its timeline.
  void index_resolved(const Incident& inc);
  void record(std::vector<IncidentBook::Change> changes);
  void gather_evidence(const CheckConfig& check, const std::string& key, TimePoint at);
  void watch_owner_units(const Config& config);
  bool in_maintenance(const std::string& check, TimePoint now) const;
  void save_maintenance() const;
  void load_maintenance(TimePoint now);
  // Incidents whose maintenance window is over (at `now`) get a maintenance event saying `text`.
  void end_maintenance(TimePoint now, const std::string& text);
  void arm_housekeeping();
  void housekeeping();

  // Mitigation: the Mitigator executes (agent/mitigator.h) and holds the action kinds with
  // their state; daemon_verify.cpp answers what it asks of the checks.
  // Every member check reported since vigil started.
  bool fresh(const Incident& inc) const;
  Mitigator::Hooks mitigator_hooks();
  // While a mitigation is verified, the incident's HTTP checks run every second.
  void fast_verify(const std::string& incident, TimePoint until);
  // A note about an incident that may be resolved by now: in its timeline while it is open,
  // else in its file only.
  void note_later(const std::string& incident, const std::string& text);

  // Paging (notify/paging.h) drains what record() noted, once at the end of the loop turn
  // (posted by record(); also run by stop(), so nothing is left unqueued).
  Paging::Hooks paging_hooks();
  void drain();

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
  // Runs the ladder's decisions through one Action per kind, over units_ and commands_
  // (declared before it).
  Mitigator mitigator_;
  // `vigil incidents`: the summary of each resolved timeline, by the file version it came from.
  struct Summary {
    std::pair<std::uintmax_t, std::int64_t> stamp;
    std::string text;  // the summary's JSON, serialized as the control socket sends it
  };
  std::map<std::string, Summary> summaries_;
  std::uint64_t housekeeping_ticks_ = 0;

  Paging paging_;
  bool drain_posted_ = false;  // drain() is posted for the end of this turn
  // The fleet's budget when [fleet] names an etcd cluster (agent/fleet/); rebuilt by a reload
  // that changes [fleet]. Declared after http_, which it uses to the end.
  std::unique_ptr<fleet::Budget> fleet_;
  void apply_fleet(const FleetSettings& settings);
};

}  // namespace vigil
