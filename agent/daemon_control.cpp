// What the daemon answers: the control socket's requests (`vigil status`, `incidents`,
// `incident`, `maintain`, `ack`), who may ask them being control_access.cpp's, and the metrics
// endpoint's text.
#include <malloc.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/daemon.h"
#include "agent/daemon_runner.h"
#include "agent/sys/log.h"

namespace vigil {

nlohmann::json Daemon::status_json(TimePoint now) const {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& [name, r] : runners_) {
    // A journal rule reports only when it fires: no observation yet means nothing matched.
    std::string state = r->runs == 0 && r->check.journal() == nullptr ? "unknown" : "ok";
    std::optional<Severity> sev;
    std::optional<TimePoint> since;
    int firing = 0;
    for (const auto& [key, c] : r->classifiers) {
      if (!c.state().firing) continue;
      ++firing;
      state = "firing";
      sev = sev ? worse(*sev, c.state().severity) : c.state().severity;
      since = since ? std::min(*since, c.state().since) : c.state().since;
    }
    for (const auto& [key, f] : r->flaps) {
      if (f.flapping()) state = "flapping";
    }
    nlohmann::json j = {{"name", name},
                        {"probe", r->check.probe},
                        {"state", state},
                        {"runs", r->runs},
                        {"failures", r->failures},
                        {"firing_keys", firing},
                        {"summary", r->last_summary},
                        {"service", r->check.service},
                        {"maintenance", in_maintenance(name, now)}};
    if (sev) j["severity"] = std::string(to_string(*sev));
    if (since) j["since"] = format_time(*since);
    checks.push_back(std::move(j));
  }
  nlohmann::json open = nlohmann::json::array();
  for (const Incident* inc : book_.open()) open.push_back(incident_summary_json(*inc));
  nlohmann::json windows = nlohmann::json::array();
  for (const Maintenance& m : maintenance_) {
    if (m.until <= now) continue;
    windows.push_back(
        {{"checks", m.checks}, {"until", format_time(m.until)}, {"reason", m.reason}});
  }
  nlohmann::json circuits = nlohmann::json::array();
  for (const auto& [key, c] : mitigator_.ledger().circuits()) {
    circuits.push_back({{"key", key}, {"reason", c.reason}, {"opened", format_time(c.opened)}});
  }
  nlohmann::json protection = nlohmann::json::array();
  if (const auto& view = mitigator_.protection()) {
    for (const std::string& w : view->warnings) protection.push_back(w);
  }
  nlohmann::json status = {{"ok", true},
                           {"version", VIGIL_VERSION},
                           {"protection_warnings", protection},
                           {"circuits", circuits},
                           {"mitigations_run", mitigator_.runs()},
                           {"paging", paging_.json(now)},
                           {"host", config_.agent.hostname},
                           {"config", options_.config_path},
                           {"started", format_time(started_)},
                           {"now", format_time(now)},
                           {"dry_run", config_.agent.dry_run == DryRun::yes},
                           {"checks", checks},
                           {"incidents", open},
                           {"maintenance", windows}};
  mitigator_.status(status);  // the block list
  if (fleet_) status["fleet"] = fleet_->status();
  return status;
}

ControlAnswer Daemon::control(const nlohmann::json& request, const ControlPeer& peer) {
  if (request.value("cmd", "") == "incidents") return incidents_answer();
  return control_json(request, peer);
}

// `vigil incidents`: every kept timeline's summary, the open ones from the book, the others from
// the summary cache (filled from the index at start), as text: one stat per file, no JSON tree
// built or copied per call. A timeline is parsed only when its file changed since its summary.
ControlAnswer Daemon::incidents_answer() {
  const std::vector<std::string> ids = store_.list();
  std::string out = "{\"incidents\":[";
  bool first = true;
  const auto add = [&](const std::string& text) {
    if (!first) out += ',';
    first = false;
    out += text;
  };
  for (const std::string& id : ids) {
    if (const Incident* inc = book_.find(id); inc != nullptr) {
      add(summary_text(incident_summary_json(*inc)));
      continue;
    }
    const auto stamp = store_.stamp(id);
    if (!stamp) continue;
    auto cached = summaries_.find(id);
    if (cached == summaries_.end() || cached->second.stamp != *stamp) {
      auto loaded = store_.load(id);
      if (!loaded) continue;
      if (!loaded->incident.open()) {
        index_resolved(loaded->incident);  // also fills the cache, for this very version
        cached = summaries_.find(id);
      }
      if (cached == summaries_.end() || cached->second.stamp != *stamp) {
        const nlohmann::json j = incident_summary_json(loaded->incident);
        cached = summaries_.insert_or_assign(id, Summary{*stamp, summary_text(j)}).first;
      }
    }
    add(cached->second.text);
  }
  // Forget deleted files (ids is sorted, as the map is).
  for (auto it = summaries_.begin(); it != summaries_.end();) {
    it = std::binary_search(ids.begin(), ids.end(), it->first) ? std::next(it)
                                                               : summaries_.erase(it);
  }
  return ControlAnswer::serialized(out + "],\"ok\":true}");
}

// As control_reply() serializes answers.
std::string Daemon::summary_text(const nlohmann::json& summary) {
  return summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json Daemon::control_json(const nlohmann::json& request, const ControlPeer& peer) {
  const TimePoint now = Clock::now();
  const std::string cmd = request.value("cmd", "");
  const auto fail = [](const std::string& why) {
    return nlohmann::json{{"ok", false}, {"error", why}};
  };
  if (cmd == "status") return status_json(now);
  if (cmd == "incident") {
    const std::string id = request.value("id", "");
    if (!valid_incident_id(id) || !store_.exists(id)) return fail("no incident " + id);
    std::ifstream in(store_.dir() + "/" + id + ".jsonl");
    nlohmann::json lines = nlohmann::json::array();
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return {{"ok", true}, {"id", id}, {"lines", lines}};
  }
  if (cmd == "maintain") {
    const long long ms = request.contains("for_ms") && request["for_ms"].is_number_integer()
                             ? request["for_ms"].get<long long>()
                             : 0LL;
    if (ms <= 0 || ms > kMaxMaintenanceMs) {
      return fail("a maintenance window lasts between 1ms and 7 days");
    }
    const auto active = std::count_if(maintenance_.begin(), maintenance_.end(),
                                      [now](const Maintenance& w) { return w.until > now; });
    if (static_cast<std::size_t>(active) >= kMaxMaintenanceWindows) {
      return fail("already " + std::to_string(active) +
                  " maintenance windows: at most 32 at once; let one end or use a wider one");
    }
    Maintenance m;
    m.until = now + Duration(ms);
    if (request.contains("reason")) {
      if (!request["reason"].is_string()) return fail("the reason must be a string");
      m.reason = request["reason"].get<std::string>();
      if (m.reason.size() > kMaxMaintenanceReason) {
        return fail("the reason is " + std::to_string(m.reason.size()) + " bytes: at most 512");
      }
    }
    if (request.contains("checks") && request["checks"].is_array()) {
      for (const auto& c : request["checks"]) {
        if (!c.is_string()) return fail("check names must be strings");
        if (runners_.count(c.get<std::string>()) == 0) {
          return fail("no check named '" + c.get<std::string>() + "'");
        }
        m.checks.insert(c.get<std::string>());
      }
    }
    const std::string what = m.checks.empty() ? std::string("all checks")
                                              : std::to_string(m.checks.size()) + " check(s)";
    sys::log(sys::LogLevel::notice, "maintenance window for " + what + " until " +
                                        format_time(m.until) + " (uid " + std::to_string(peer.uid) +
                                        "): observe and record; no pages, no mitigations");
    maintenance_.push_back(m);
    save_maintenance();
    for (const Incident* inc : book_.open()) {
      const bool covered = std::any_of(
          inc->members.begin(), inc->members.end(),
          [&](const auto& x) { return m.checks.empty() || m.checks.count(x.second.check) > 0; });
      if (!covered || inc->maintenance) continue;
      TimelineEvent e;
      e.at = now;
      e.type = TimelineEvent::Type::maintenance;
      e.text = "maintenance window until " + format_time(m.until) + " (uid " +
               std::to_string(peer.uid) + ")";
      e.fields["maintenance"] = "yes";
      e.fields["uid"] = std::to_string(peer.uid);
      record(book_.record(inc->id, e));
    }
    return {{"ok", true}, {"until", format_time(m.until)}, {"checks", m.checks}};
  }
  if (cmd == "ack") {
    const std::string id = request.value("id", "");
    if (book_.find(id) == nullptr || !book_.find(id)->open()) return fail("no open incident " + id);
    TimelineEvent e;
    e.at = now;
    e.type = TimelineEvent::Type::ack;
    e.text = "acknowledged (uid " + std::to_string(peer.uid) + ")";
    e.fields["uid"] = std::to_string(peer.uid);
    paging_.acknowledge(id, e.text, e.fields, now);
    return {{"ok", true}, {"id", id}};
  }
  return fail("unknown command '" + cmd + "'");
}

std::string Daemon::metrics_text() const {
  MetricsSnapshot s;
  s.version = VIGIL_VERSION;
  s.start_time_seconds = std::chrono::duration<double>(started_.time_since_epoch()).count();
  const nlohmann::json st = status_json(Clock::now());
  for (const auto& [name, r] : runners_) {
    MetricsSnapshot::Check c;
    c.name = name;
    c.probe = r->check.probe;
    c.runs = r->runs;
    c.failures = r->failures;
    if (r->latency.count() > 0) c.latency = &r->latency;
    for (const auto& j : st["checks"]) {
      if (j["name"] != name) continue;
      c.state = j["state"].get<std::string>();
      if (j.contains("severity")) c.severity = parse_severity(j["severity"].get<std::string>());
    }
    s.checks.push_back(std::move(c));
  }
  for (const Incident* inc : book_.open()) ++s.open_incidents[inc->severity];
  s.incidents_opened = incidents_opened_;
  s.protection_read_errors = mitigator_.protection_failures();
  s.pages = paging_.counts();
  s.mitigations = mitigator_.outcomes();
  if (fleet_) {
    MetricsSnapshot::Fleet f;
    f.name = fleet_->settings().name;
    f.etcd_up = fleet_->etcd_up();
    const std::vector<std::string> held = fleet_->held();
    f.held.insert(held.begin(), held.end());
    f.answers = fleet_->answers();
    s.fleet = std::move(f);
  }
  return render_metrics(s);
}

}  // namespace vigil
