#include "agent/daemon.h"

#include <malloc.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>

#include "actions/rollback.h"
#include "agent/daemon_runner.h"
#include "agent/detect/flap.h"
#include "agent/incidents/report.h"
#include "agent/load_config.h"
#include "agent/sys/files.h"
#include "agent/sys/groups.h"
#include "agent/sys/journal.h"
#include "agent/sys/journal_tail.h"
#include "agent/sys/log.h"
#include "agent/sys/notify.h"
#include "probes/register.h"

namespace vigil {

namespace asio = boost::asio;

namespace {

// Why 10: enough of a unit's last words to see why it died, short enough to read in a page.
constexpr int kEvidenceLines = 10;

// Why 1s: verification deadlines, cooldowns and block expiry are decided here.
constexpr std::chrono::seconds kHousekeepingEvery{1};

}  // namespace

Daemon::Daemon(asio::io_context& io, DaemonOptions options, Config config)
    : io_(io),
      options_(std::move(options)),
      config_(std::move(config)),
      http_(io),
      units_(io),
      signals_(io),
      watchdog_(io),
      book_(TriageSettings{config_.agent.hostname, config_.agent.upgrade_after}),
      store_(config_.agent.state_dir + "/incidents"),
      index_(config_.agent.state_dir + "/incident-index.jsonl"),
      control_(io, [this](const nlohmann::json& r, const ControlPeer& p) { return control(r, p); }),
      housekeeping_(io),
      commands_(io),
      mitigator_(book_, config_,
                 make_actions(ActionContext{
                     io_, units_, commands_, config_, [this] { return stopping_; },
                     [this](const std::string& incident, const std::string& text,
                            std::map<std::string, std::string> fields) {
                       TimelineEvent e;
                       e.at = Clock::now();
                       e.type = TimelineEvent::Type::note;
                       e.text = text;
                       e.fields = std::move(fields);
                       record(book_.record(incident, std::move(e)));
                     },
                     [this](const std::string& incident, const std::string& text) {
                       note_later(incident, text);
                     },
                     [this](const std::string& unit) -> std::optional<sys::UnitState> {
                       const auto o = owner_units_.find(unit);
                       if (o == owner_units_.end()) return std::nullopt;
                       return o->second.state;
                     }}),
                 mitigator_hooks()),
      paging_(book_, config_, paging_hooks()) {
  if (options_.force_dry_run == DryRun::yes) config_.agent.dry_run = DryRun::yes;
  book_.id_taken = [this](const std::string& id) { return store_.exists(id); };
}

Paging::Hooks Daemon::paging_hooks() {
  Paging::Hooks h;
  h.record = [this](std::vector<IncidentBook::Change> changes) { record(std::move(changes)); };
  h.send = [this](const sys::HttpRequest& request, sys::HttpClient::Callback done) {
    return http_.start(request, std::move(done));
  };
  h.close_circuit = [this](const std::string& key) { return mitigator_.close_circuit(key); };
  h.clock = [] { return Clock::now(); };
  return h;
}

Mitigator::Hooks Daemon::mitigator_hooks() {
  Mitigator::Hooks h;
  h.record = [this](std::vector<IncidentBook::Change> changes) { record(std::move(changes)); };
  h.append_closed = [this](const std::string& incident, const TimelineEvent& e) {
    if (auto w = store_.append(incident, {e}); !w) sys::log_error(w.error().message);
  };
  h.fresh = [this](const Incident& inc) { return fresh(inc); };
  h.in_maintenance = [this](const std::string& check, TimePoint now) {
    return in_maintenance(check, now);
  };
  h.fast_verify = [this](const std::string& incident, TimePoint until) {
    fast_verify(incident, until);
  };
  h.read_protected = [this] {
    return gather_protected(
        config_.mitigation.allow,
        config_.mitigation.protect_ssh_sessions ? ProtectSsh::yes : ProtectSsh::no,
        config_.mitigation.respect_ufw_allow ? ProtectFirewall::yes : ProtectFirewall::no);
  };
  h.release_switched = [](const std::string& dir) { return release_switched(dir); };
  h.clock = [] { return Clock::now(); };
  h.fleet_acquire = [this](const ActionConfig& a, const std::string& incident,
                           std::function<void(fleet::SlotAnswer)> done) {
    if (!fleet_) {
      fleet::SlotAnswer none;
      none.why = "no [fleet] in the configuration";
      done(std::move(none));
      return;
    }
    fleet_->acquire(a, incident, std::move(done));
  };
  h.fleet_release = [this](const std::string& ref, const std::string& incident) {
    if (fleet_) fleet_->release(ref, incident);
  };
  return h;
}

// The same [fleet]: the budget (its lease, the slots held) carries on.
// Otherwise the old one is dropped (its lease expires in etcd) and a new one starts.
void Daemon::apply_fleet(const FleetSettings& settings) {
  if (fleet_) {
    if (settings.enabled() && fleet_->settings() == settings) {
      return;
    }
    fleet_->stop();
    fleet_.reset();
    mitigator_.fleet_replaced();
  }
  if (!settings.enabled()) return;
  fleet_ = std::make_unique<fleet::Budget>(io_, http_, settings, config_.agent.hostname);
  fleet_->start();
  sys::log_info("fleet " + settings.name + ": budget kept in etcd at " + settings.etcd.front() +
                (settings.etcd.size() > 1
                     ? " (and " + std::to_string(settings.etcd.size() - 1) + " more)"
                     : std::string()));
}

Daemon::~Daemon() {
  for (auto& [name, r] : runners_) {
    if (r->probe) r->probe->cancel();
  }
}

void Daemon::start() {
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  arm_signals();
  started_ = Clock::now();
  apply(config_);
  paging_.load(started_);
  load_incidents(started_);
  prune_incidents(started_);
  paging_.reconcile();
  load_maintenance(started_);
  mitigator_.start();
  apply_fleet(config_.fleet);
  // A window that ended while vigil was down must not keep its incidents silenced.
  end_maintenance(started_, "maintenance window ended while vigil was stopped");
  control_.set_access(control_access(config_.agent));
  if (auto listening = control_.listen(config_.agent.control_socket); !listening) {
    // The checks still run: losing the CLI must not cost the monitoring.
    sys::log_error("control socket: " + listening.error().message +
                   "; `vigil status` will not answer");
  }
  if (!config_.agent.metrics_listen.empty()) {
    metrics_ = std::make_unique<MetricsServer>(io_, [this] { return metrics_text(); });
    if (auto listening = metrics_->listen(config_.agent.metrics_listen); !listening) {
      sys::log_error("metrics: " + listening.error().message);
      metrics_.reset();
    }
  }
  // Incidents continued from before the restart pick up their ladders where they stood.
  mitigator_.check_verifications(started_);
  mitigator_.mitigate_all(started_);
  arm_housekeeping();
  watchdog_every_ = sys::watchdog_timeout();
  if (watchdog_every_) arm_watchdog();
  const std::string status = "Watching " + std::to_string(runners_.size()) + " check(s)" +
                             (config_.agent.dry_run == DryRun::yes ? " (dry-run)" : "");
  sys::log(sys::LogLevel::info,
           "vigil " VIGIL_VERSION " started: " + status + " from " + options_.config_path,
           {{"MESSAGE_ID", std::string(sys::kMsgConfigLoaded)}});
  sys::notify_ready(status);
}

void Daemon::stop() {
  if (stopping_) return;
  drain();  // what this turn recorded is paged (queued durably) before the loop ends
  stopping_ = true;
  mitigator_.stop();
  if (fleet_) fleet_->stop();
  paging_.stop();
  sys::notify_stopping();
  sys::log_info("stopping: cancelling " + std::to_string(http_.in_flight()) +
                " request(s) in flight");
  for (auto& [name, r] : runners_) {
    r->timer.cancel();
    if (r->probe) r->probe->cancel();
  }
  runners_.clear();
  http_.cancel_all();
  watchdog_.cancel();
  housekeeping_.cancel();
  commands_.stop();
  control_.stop();
  if (metrics_) metrics_->stop();
  owner_units_.clear();
  units_.shutdown();
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  signals_.clear(ignored);
}

bool Daemon::reload() {
  sys::notify_reloading();
  LoadResult loaded = load_config_file(options_.config_path);
  if (!loaded.config) {
    for (const ConfigError& e : loaded.errors) {
      sys::log(sys::LogLevel::err, e.to_string(),
               {{"MESSAGE_ID", std::string(sys::kMsgConfigRejected)}});
    }
    sys::log(sys::LogLevel::err,
             "reload refused: " + std::to_string(loaded.errors.size()) + " error(s) in " +
                 options_.config_path + "; keeping the running configuration (" +
                 std::to_string(runners_.size()) + " check(s))",
             {{"MESSAGE_ID", std::string(sys::kMsgConfigRejected)}});
    sys::notify_ready("Reload refused; running the previous configuration");
    return false;
  }
  Config next = std::move(*loaded.config);
  if (options_.force_dry_run == DryRun::yes) next.agent.dry_run = DryRun::yes;
  // [agent] settings bound at start (files, sockets, identity) need a restart: say so rather
  // than pretend they were applied.
  const AgentSettings& was = config_.agent;
  const AgentSettings& now = next.agent;
  if (was.state_dir != now.state_dir || was.control_socket != now.control_socket ||
      was.hostname != now.hostname || was.metrics_listen != now.metrics_listen ||
      was.upgrade_after != now.upgrade_after) {
    sys::log_warning(
        "reload: changes to [agent] state_dir, control_socket, hostname, metrics and "
        "upgrade_after take effect at the next restart (systemctl restart vigil)");
    next.agent.state_dir = was.state_dir;
    next.agent.control_socket = was.control_socket;
    next.agent.hostname = was.hostname;
    next.agent.metrics_listen = was.metrics_listen;
    next.agent.upgrade_after = was.upgrade_after;
  }
  if (next.paging.outbox_max != config_.paging.outbox_max) {
    sys::log_warning("reload: [paging] outbox_max takes effect at the next restart");
    next.paging.outbox_max = config_.paging.outbox_max;
  }
  apply(next);
  config_ = std::move(next);
  apply_fleet(config_.fleet);
  control_.set_access(control_access(config_.agent));
  mitigator_.reloaded();
  const std::string status = "Watching " + std::to_string(runners_.size()) + " check(s)";
  sys::log(sys::LogLevel::info, "configuration reloaded: " + status,
           {{"MESSAGE_ID", std::string(sys::kMsgConfigLoaded)}});
  sys::notify_ready(status);
  return true;
}

// Who may use the control socket, the group names of `agent` looked up now (a group created
// after start counts from the next reload).
ControlAccess Daemon::control_access(const AgentSettings& agent) {
  ControlAccess a;
  a.read_gid = sys::group_id("vigil");
  a.admin_group = agent.admin_group;
  a.admin_gid = sys::group_id(agent.admin_group);
  if (!agent.admin_group.empty() && !a.admin_gid) {
    sys::log_warning("[agent] admin_group '" + agent.admin_group +
                     "' does not exist: only root may ack or start maintenance");
  }
  return a;
}

// Replaces the running checks by those of `config`. A check that keeps its name keeps its
// classifier state, so a reload neither re-fires nor silently "recovers" an ongoing problem.
void Daemon::apply(Config config) {
  std::map<std::string, std::shared_ptr<Runner>> next;
  ProbeContext ctx{io_, http_, units_, config.agent.state_dir};
  for (const CheckConfig& c : config.checks) {
    auto r = std::make_shared<Runner>(io_, c);
    r->probe = make_probe(ctx, c);
    if (!r->probe) {
      sys::log_error("check '" + c.name + "': no probe of kind \"" + c.probe + "\"");
      continue;
    }
    if (auto old = runners_.find(c.name); old != runners_.end()) {
      r->classifiers = old->second->classifiers;
      // The new probe starts without the old one's memory of failing keys: tell it, so their
      // recovery is still reported (the journal probe reports it only as a window running out).
      for (const auto& [key, k] : r->classifiers) {
        if (k.state().firing) r->probe->assume_failing(key);
      }
      r->flaps = old->second->flaps;
      r->runs = old->second->runs;
      r->runs_since_start = old->second->runs_since_start;
      r->failures = old->second->failures;
      r->latency = old->second->latency;
    }
    next.emplace(c.name, r);
  }
  std::vector<std::string> removed;
  for (auto& [name, r] : runners_) {
    r->timer.cancel();
    if (r->probe) r->probe->cancel();
    if (next.count(name) == 0) removed.push_back(name);
  }
  runners_ = std::move(next);
  // Incidents of checks that no longer exist would otherwise never resolve.
  for (const std::string& name : removed) {
    record(book_.retire(name, "check removed from the configuration", Clock::now()));
  }
  grid_start_ = asio::steady_timer::clock_type::now();
  for (auto& [name, r] : runners_) {
    if (r->probe->event_driven()) {
      r->probe->watch([this, weak = std::weak_ptr<Runner>(r)](Observation obs) {
        if (auto self = weak.lock()) observed(*self, obs);
      });
    } else {
      schedule_first(r);
    }
  }
  watch_owner_units(config);
  // The parsed TOML document and the old checks were freed just now; give the memory back
  // instead of keeping it in malloc's free lists for the life of the daemon.
  malloc_trim(0);
}

// The first run of each check is spread over its interval by a hash of its name, so a thousand
// checks do not fire in the same millisecond; after that each keeps its own absolute cadence.
// Offsets sit on a 10ms grid: checks that share a slot expire together and are served by one
// wake-up (one timerfd update, one epoll round) instead of one each. 10ms is far below any
// interval (>= 100ms) and any latency threshold worth paging on.
void Daemon::schedule_first(const std::shared_ptr<Runner>& r) {
  constexpr Duration kGrid{10};
  const auto slots = std::max<long long>(1, r->check.interval / kGrid);
  const auto slot = static_cast<long long>(std::hash<std::string>{}(r->check.name) %
                                           static_cast<std::size_t>(slots));
  r->timer.expires_at(grid_start_ + slot * kGrid);
  wait_tick(r);
}

void Daemon::schedule_next(const std::shared_ptr<Runner>& r) {
  auto interval = std::chrono::duration_cast<asio::steady_timer::duration>(r->check.interval);
  if (r->fast_until > asio::steady_timer::clock_type::now()) {
    // Verifying a mitigation: see recovery in seconds (daemon_verify.cpp).
    interval = std::min<asio::steady_timer::duration>(interval, std::chrono::seconds(1));
  }
  // Absolute rescheduling: the next tick is one interval after the previous *scheduled* tick,
  // so the cadence never drifts. If the loop fell behind, skip the missed ticks, not burst.
  auto next = r->timer.expiry() + interval;
  const auto now = asio::steady_timer::clock_type::now();
  if (next <= now) next += interval * ((now - next) / interval + 1);
  r->timer.expires_at(next);
  wait_tick(r);
}

void Daemon::wait_tick(const std::shared_ptr<Runner>& r) {
  r->timer.async_wait([this, weak = std::weak_ptr<Runner>(r)](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) tick(self);
  });
}

void Daemon::tick(const std::shared_ptr<Runner>& r) {
  schedule_next(r);
  if (r->probe->running()) {
    // A slow run (timeout plus confirmations) overlaps its next tick: skip, never pile up.
    ++r->skipped;
    sys::log_debug("check '" + r->check.name + "': previous run still in progress, tick skipped");
    return;
  }
  r->probe->run([this, weak = std::weak_ptr<Runner>(r)](Observation obs) {
    if (auto self = weak.lock()) observed(*self, obs);
  });
}

void Daemon::observed(Runner& r, const Observation& obs) {
  // Every probe passes here (a thousand a second): the line is built only when it is logged.
  if (sys::debug_enabled()) sys::log_debug(obs.check + ": " + obs.summary);
  ++r.runs;
  ++r.runs_since_start;
  if (!obs.ok()) ++r.failures;
  if (obs.http.attempts > 0) r.latency.observe(obs.latency);
  r.last_summary = obs.summary;
  r.last_at = obs.at;
  const std::optional<Severity> rated = rate(r.check, obs);
  const InMaintenance maintenance =
      in_maintenance(r.check.name, obs.at) ? InMaintenance::yes : InMaintenance::no;
  const Health health = rated.has_value() ? Health::failing : Health::healthy;

  if (r.check.journal() == nullptr) {
    auto flap = r.flaps.find(obs.key);
    if (flap == r.flaps.end()) flap = r.flaps.emplace(obs.key, FlapDetector(r.check.flap)).first;
    if (const std::optional<Flapping> change = flap->second.add(health)) {
      const int percent = static_cast<int>(flap->second.rate() * 100 + 0.5);
      const std::string why = std::to_string(percent) + "% state changes over the last " +
                              std::to_string(flap->second.results()) + " results";
      sys::log(sys::LogLevel::warning,
               r.check.name + (obs.key.empty() ? "" : " " + obs.key) +
                   (*change == Flapping::started ? " is flapping: " : " stopped flapping: ") + why,
               {{"VIGIL_CHECK", r.check.name}});
      record(book_.on_flapping(r.check, obs.key, *change,
                               rated.value_or(r.check.severity.for_failure(obs.failure)), why,
                               obs.at, maintenance));
    }
  }

  if (health == Health::healthy) mitigator_.check_passed(r.check, obs.at);
  auto it = r.classifiers.find(obs.key);
  if (it == r.classifiers.end()) {
    if (!rated) return;  // a healthy key with no history needs no state
    it = r.classifiers.emplace(obs.key, Classifier{}).first;
  }
  std::optional<Finding> f = it->second.observe(r.check, obs);
  // A key that is healthy and not firing needs no state: per-IP keys come and go by the
  // thousand, and their classifiers must not pile up.
  if (!it->second.state().firing && it->second.state().bad_streak == 0) r.classifiers.erase(it);
  if (!f) return;
  f->key = obs.key;
  // The finding is declared now; `since` keeps when the failure was first observed, so the
  // incident's time to detect covers confirmations and fail_after.
  f->at = std::max(f->at, Clock::now());
  log_finding(*f);
  const std::string dkey = book_.dedupe_key(r.check, f->key);
  const Incident* before = book_.open_for(dkey);
  // Only the first time the (check, key) joins: a flapping member that fires again and again
  // must not re-read the journal on the loop each time, nor pile up copies of the same lines.
  const bool joined = f->kind == Finding::Kind::firing &&
                      (before == nullptr || before->members.count({r.check.name, f->key}) == 0);
  std::vector<IncidentBook::Change> changes = book_.on_finding(r.check, *f, maintenance);
  std::set<std::string> touched;
  for (const auto& c : changes) touched.insert(c.incident);
  // Pages go out at the end of this turn (drain()), so they carry the evidence read below.
  record(std::move(changes));
  // Mitigate first, diagnose later: the ladder is asked right away, on the finding's own turn
  // of the loop (bench/ measures this path), before the evidence is read.
  if (f->kind != Finding::Kind::recovered) {
    for (const std::string& id : touched) mitigator_.mitigate(id, f->at);
  }
  // Evidence for triage, gathered once when a (check, key) joins the incident: the unit that
  // serves the endpoint and what it wrote to the journal just before.
  if (joined) gather_evidence(r.check, f->key, f->at);
  if (on_finding) on_finding(*f);
}

void Daemon::record(std::vector<IncidentBook::Change> changes) {
  // Durable first: the timeline must hold what vigil did even if it dies the next instant.
  // One write and one fdatasync per incident for the whole batch, in the events' order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<TimelineEvent>> batches;
  for (const IncidentBook::Change& c : changes) {
    auto [it, fresh] = batches.try_emplace(c.incident);
    if (fresh) order.push_back(c.incident);
    it->second.push_back(c.event);
  }
  for (const std::string& id : order) {
    if (auto written = store_.append(id, batches[id]); !written) {
      sys::log_error("incident " + id + ": " + written.error().message);
    }
    // A resolved incident's timeline changed: its index entry follows (open ones are always
    // read at start).
    if (const Incident* inc = book_.find(id); inc != nullptr && !inc->open()) index_resolved(*inc);
  }
  // What the action kinds keep follows what was recorded (a verified rollback).
  mitigator_.recorded(changes);
  for (const IncidentBook::Change& c : changes) {
    const TimelineEvent& e = c.event;
    using T = TimelineEvent::Type;
    std::string_view message_id;
    sys::LogLevel level = sys::LogLevel::info;
    if (e.type == T::opened) {
      ++incidents_opened_;
      message_id = sys::kMsgIncidentOpened;
      level = sys::LogLevel::warning;
    } else if (e.type == T::severity) {
      message_id = sys::kMsgIncidentSeverity;
      level = sys::LogLevel::warning;
    } else if (e.type == T::state && e.state == IncidentState::resolved) {
      message_id = sys::kMsgIncidentResolved;
      level = sys::LogLevel::notice;
    } else if (e.type == T::mitigation) {
      const auto o = e.fields.find("outcome");
      const std::string outcome = o == e.fields.end() ? "" : o->second;
      level = outcome == "failed" || outcome == "escalated" ? sys::LogLevel::warning
                                                            : sys::LogLevel::notice;
    } else if (e.type == T::finding || e.type == T::evidence) {
      continue;  // the finding was logged already; evidence is in the timeline file
    } else if (e.type == T::page) {
      // Deliveries are logged (the bench reads them); queued pages and refusals were already.
      const auto d = e.fields.find("delivery");
      if (d == e.fields.end() || d->second != "delivered") continue;
    }
    const Incident* inc = book_.find(c.incident);
    const std::string sev = inc != nullptr ? std::string(to_string(inc->severity)) : "";
    const std::string text = "incident " + c.incident + ": " + e.text;
    if (message_id.empty()) {
      sys::log(level, text,
               {{"VIGIL_INCIDENT", c.incident},
                {"VIGIL_EVENT", std::string(to_string(e.type))},
                {"VIGIL_SEVERITY", sev}});
    } else {
      sys::log(level, text,
               {{"VIGIL_INCIDENT", c.incident},
                {"VIGIL_EVENT", std::string(to_string(e.type))},
                {"VIGIL_SEVERITY", sev},
                {"MESSAGE_ID", std::string(message_id)}});
    }
  }
  // Then the pages these events call for, at the end of this turn (drain()).
  paging_.recorded(changes);
  if (paging_.pending() && !drain_posted_) {
    drain_posted_ = true;
    boost::asio::post(io_, [this] { drain(); });
  }
}

void Daemon::drain() {
  drain_posted_ = false;
  paging_.drain(Clock::now());
}

void Daemon::gather_evidence(const CheckConfig& check, const std::string& key, TimePoint at) {
  if (check.owner_unit.empty()) return;
  std::vector<std::string> lines;
  const auto o = owner_units_.find(check.owner_unit);
  if (o != owner_units_.end() && o->second.state.known) {
    lines.push_back(check.owner_unit + ": " + sys::describe(o->second.state));
  } else {
    lines.push_back(check.owner_unit + ": state not known yet");
  }
  for (std::string& l : sys::journal_tail(check.owner_unit, kEvidenceLines)) {
    lines.push_back(std::move(l));
  }
  record(book_.add_evidence(check, key, "unit " + check.owner_unit + " at detection",
                            std::move(lines), at));
}

void Daemon::watch_owner_units(const Config& config) {
  std::set<std::string> wanted;
  for (const CheckConfig& c : config.checks) {
    if (!c.owner_unit.empty()) wanted.insert(c.owner_unit);
  }
  // A rollback's unit too: a release counts as known good only when the process that passed
  // was started after `current` was switched to it (see mark_releases).
  for (const auto& [ref, a] : config.actions) {
    if (a.kind == ActionKind::rollback && !a.unit.empty()) wanted.insert(a.unit);
  }
  for (auto it = owner_units_.begin(); it != owner_units_.end();) {
    if (wanted.count(it->first) == 0) {
      units_.unwatch(it->second.watch);
      it = owner_units_.erase(it);
    } else {
      ++it;
    }
  }
  for (const std::string& u : wanted) {
    if (owner_units_.count(u) > 0) continue;
    OwnerUnit& o = owner_units_[u];
    o.watch = units_.watch(u, [this, u](const sys::UnitState& s) {
      if (auto it = owner_units_.find(u); it != owner_units_.end()) it->second.state = s;
    });
  }
}

void Daemon::arm_housekeeping() {
  housekeeping_.expires_after(kHousekeepingEvery);
  housekeeping_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    housekeeping();
    arm_housekeeping();
  });
}

void Daemon::housekeeping() {
  const TimePoint now = Clock::now();
  record(book_.tick(now));
  mitigator_.check_verifications(now);
  mitigator_.mitigate_all(now);
  paging_.page_all(now);
  paging_.persist();
  paging_.deliver(now);
  paging_.send_heartbeats(now);
  paging_.poll_silences(now);
  mitigator_.tick(now);
  mitigator_.close_healthy_circuits(now);
  // Once a minute: forget runs older than any budget window, and block history past its
  // memory, so the state files stay small.
  if (++housekeeping_ticks_ % 60 == 0) {
    mitigator_.prune(now);
    paging_.forget_gone();
  }
  if (housekeeping_ticks_ % 3600 == 0) prune_incidents(now);
  const auto ended = std::partition(maintenance_.begin(), maintenance_.end(),
                                    [now](const Maintenance& m) { return m.until > now; });
  if (ended != maintenance_.end()) {
    for (auto m = ended; m != maintenance_.end(); ++m) {
      sys::log_info("maintenance window ended" + (m->reason.empty() ? "" : ": " + m->reason));
    }
    maintenance_.erase(ended, maintenance_.end());
    save_maintenance();
    end_maintenance(now, "maintenance window ended: pages and mitigations apply again");
  }
}

void Daemon::arm_signals() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      sys::log_info("SIGHUP: reloading " + options_.config_path);
      reload();
      arm_signals();
      return;
    }
    sys::log_info(std::string("received ") + (signo == SIGINT ? "SIGINT" : "SIGTERM"));
    stop();
  });
}

void Daemon::arm_watchdog() {
  // Ping at half of WatchdogSec (sd_watchdog_enabled(3)): one late tick is not yet a restart.
  watchdog_.expires_after(*watchdog_every_ / 2);
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    sys::notify_watchdog();
    arm_watchdog();
  });
}

}  // namespace vigil
