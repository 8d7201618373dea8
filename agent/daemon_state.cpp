// What the daemon keeps on disk besides the mitigator's and its actions' state (agent/mitigator.h)
// and the outbox (notify/paging.cpp): the incidents' timelines read back at start, their index
// and retention, and the maintenance windows.
#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/daemon.h"
#include "agent/daemon_runner.h"
#include "agent/sys/files.h"
#include "agent/sys/log.h"

namespace vigil {

// Deletes resolved incidents' timelines past retention ([agent] keep_incidents, max_incidents);
// open incidents are never touched.
void Daemon::prune_incidents(TimePoint now) {
  std::set<std::string> open;
  for (const Incident* inc : book_.open()) open.insert(inc->id);
  const Duration keep = config_.agent.keep_incidents;
  const TimePoint older_than = keep.count() == 0 ? TimePoint::min() : now - keep;
  const std::vector<std::string> gone =
      store_.prune(older_than, static_cast<std::size_t>(config_.agent.max_incidents), open);
  if (gone.empty()) return;
  for (const std::string& id : gone) summaries_.erase(id);
  sys::log_info("incident retention: deleted " + std::to_string(gone.size()) +
                " resolved timeline(s), oldest " + gone.front() + ", newest " + gone.back());
}

// Open incidents continue across a restart: the book takes them back from their timelines, and
// each firing member's classifier is seeded as firing, so its recovery is seen and resolves the
// incident (instead of a second incident, or one that never closes).
void Daemon::load_incidents(TimePoint now) {
  if (auto l = index_.load(); !l) {
    sys::log_warning("incident index: " + l.error().message +
                     "; every timeline is read once instead");
  } else if (l->skipped > 0) {
    sys::log_warning("incident index " + index_.path() + ": " + std::to_string(l->skipped) +
                     " damaged line(s) skipped; their timelines are read instead");
  }
  int restored = 0;
  std::size_t indexed = 0, read = 0;
  std::set<std::string> ids;
  for (const std::string& id : store_.list()) {
    ids.insert(id);
    // A resolved incident whose timeline is the version its index entry describes, with no page
    // owed: nothing to continue, nothing to send; its summary is all `vigil incidents` needs.
    if (const auto stamp = store_.stamp(id)) {
      if (const IncidentIndex::Entry* e = index_.find(id, *stamp); e != nullptr && !e->owed) {
        summaries_.insert_or_assign(id, Summary{*stamp, summary_text(e->summary)});
        ++indexed;
        continue;
      }
    }
    ++read;
    auto loaded = store_.load(id);
    if (!loaded) {
      sys::log_warning("incident " + id + ": " + loaded.error().message);
      continue;
    }
    for (const std::string& w : loaded->warnings) sys::log_warning("incident " + id + ": " + w);
    Incident inc = std::move(loaded->incident);
    if (!inc.open()) {
      // Resolved while vigil was down (or right before it died): its resolve pages may be owed.
      PagerInput in;
      in.config = &config_;
      in.incident = &inc;
      in.now = now;
      const KeepResolved owed = plan_pages(in).empty() ? KeepResolved::no : KeepResolved::yes;
      index_resolved(inc);
      book_.restore(std::move(inc), owed);  // keeps its id taken
      continue;
    }
    std::set<std::string> gone;
    for (const auto& [k, m] : inc.members) {
      const auto r = runners_.find(m.check);
      if (r == runners_.end()) {
        if (m.firing || m.flapping) gone.insert(m.check);
        continue;
      }
      if (m.flapping && r->second->check.journal() == nullptr) {
        auto f = r->second->flaps.emplace(m.key, FlapDetector(r->second->check.flap)).first;
        f->second.restore_flapping();
      }
      if (!m.firing) continue;
      Classifier::State st;
      st.firing = true;
      st.severity = m.severity;
      st.since = m.since;
      st.failure = parse_failure_kind(m.failure).value_or(FailureKind::error);
      r->second->classifiers[m.key].restore(st);
      r->second->probe->assume_failing(m.key);
    }
    sys::log_info("incident " + id + " (" + std::string(to_string(inc.severity)) +
                  ") is still open: continuing it");
    book_.restore(std::move(inc));
    ++restored;
    for (const std::string& check : gone) {
      record(book_.retire(check, "check no longer in the configuration", now));
    }
  }
  // An incident whose timeline ends before any member failed (a crash between its first
  // events) has nothing that could ever recover: close it rather than keep it open forever.
  record(book_.resolve_idle("nothing was failing in it when vigil restarted", now));
  if (restored > 0) sys::log_info("continuing " + std::to_string(restored) + " open incident(s)");
  if (auto c = index_.compact(ids); !c) sys::log_warning("incident index: " + c.error().message);
  if (!ids.empty()) {
    sys::log_info("incidents at start: " + std::to_string(ids.size()) + " timeline(s), " +
                  std::to_string(indexed) + " from the index, " + std::to_string(read) + " read");
  }
}

void Daemon::index_resolved(const Incident& inc) {
  const auto stamp = store_.stamp(inc.id);
  if (!stamp) return;
  PagerInput in;
  in.config = &config_;
  in.incident = &inc;
  in.now = Clock::now();
  IncidentIndex::Entry e{*stamp, !plan_pages(in).empty(), incident_summary_json(inc)};
  summaries_.insert_or_assign(inc.id, Summary{*stamp, summary_text(e.summary)});
  // A cache: a failed write costs one parse at the next start. Said once per failure spell.
  if (auto w = index_.put(inc.id, std::move(e)); !w) {
    if (!index_failing_) sys::log_warning("incident index: " + w.error().message);
    index_failing_ = true;
  } else {
    index_failing_ = false;
  }
}

bool Daemon::in_maintenance(const std::string& check, TimePoint now) const {
  return std::any_of(maintenance_.begin(), maintenance_.end(), [&](const Maintenance& m) {
    return m.until > now && (m.checks.empty() || m.checks.count(check) > 0);
  });
}

void Daemon::save_maintenance() const {
  nlohmann::json windows = nlohmann::json::array();
  for (const Maintenance& m : maintenance_) {
    windows.push_back(
        {{"checks", m.checks}, {"until", format_time(m.until)}, {"reason", m.reason}});
  }
  const std::string path = config_.agent.state_dir + "/maintenance.json";
  if (auto ok = sys::write_file_atomic(path, windows.dump() + "\n"); !ok) {
    sys::log_error(ok.error().message);
  }
}

void Daemon::load_maintenance(TimePoint now) {
  const std::string path = config_.agent.state_dir + "/maintenance.json";
  std::ifstream in(path);
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json windows = nlohmann::json::parse(text.str(), nullptr, false);
  if (!windows.is_array()) {
    sys::log_warning(path +
                     ": not a list of maintenance windows; starting with none (checks page "
                     "and mitigate as usual)");
    return;
  }
  const TimePoint latest = now + Duration(kMaxMaintenanceMs);
  std::size_t bad = 0;
  std::size_t over = 0;
  for (const nlohmann::json& w : windows) {
    if (!w.is_object() || !w.contains("until") || !w["until"].is_string()) {
      ++bad;
      continue;
    }
    const std::optional<TimePoint> until = parse_time(w["until"].get<std::string>());
    if (!until) {
      ++bad;
      continue;
    }
    if (*until <= now) continue;  // over while vigil was stopped
    if (maintenance_.size() >= kMaxMaintenanceWindows) {
      ++over;
      continue;
    }
    Maintenance m;
    m.until = std::min(*until, latest);
    if (*until > latest) {
      sys::log_warning(path + ": a window until " + w["until"].get<std::string>() +
                       " is longer than 7 days from now; it ends at " + format_time(latest));
    }
    if (w.contains("checks") && w["checks"].is_array()) {
      for (const auto& c : w["checks"]) {
        if (c.is_string()) m.checks.insert(c.get<std::string>());
      }
    }
    if (w.contains("reason") && w["reason"].is_string()) {
      m.reason = w["reason"].get<std::string>().substr(0, kMaxMaintenanceReason);
    }
    maintenance_.push_back(std::move(m));
  }
  if (bad > 0) {
    sys::log_warning(path + ": " + std::to_string(bad) +
                     " window(s) without a valid 'until' ignored");
  }
  if (over > 0) {
    sys::log_warning(path + ": " + std::to_string(over) +
                     " window(s) beyond the 32 allowed at once ignored");
  }
}

void Daemon::note_later(const std::string& incident, const std::string& text) {
  TimelineEvent e;
  e.at = Clock::now();
  e.type = TimelineEvent::Type::note;
  e.text = text;
  if (const Incident* inc = book_.find(incident); inc != nullptr && inc->open()) {
    record(book_.record(incident, std::move(e)));
  } else if (auto w = store_.append(incident, {e}); !w) {
    sys::log_error("incident " + incident + ": " + w.error().message);
  }
}

// Incidents marked maintenance whose checks are no longer in a window get `text`, so pages and
// mitigations apply again. record() appends to an incident but never opens or closes one: the
// open list stays valid while this walks it.
void Daemon::end_maintenance(TimePoint now, const std::string& text) {
  for (const Incident* inc : book_.open()) {
    if (!inc->maintenance) continue;
    const bool still = std::any_of(inc->members.begin(), inc->members.end(), [&](const auto& m) {
      return in_maintenance(m.second.check, now);
    });
    if (still) continue;
    TimelineEvent e;
    e.at = now;
    e.type = TimelineEvent::Type::maintenance;
    e.text = text;
    e.fields["maintenance"] = "no";
    record(book_.record(inc->id, e));
  }
}
}  // namespace vigil
