#include "agent/incidents/incident.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <utility>

namespace vigil {
namespace {

constexpr std::array<std::string_view, 6> kStateNames = {"detected",  "triaged",  "mitigating",
                                                         "verifying", "resolved", "escalated"};

constexpr std::array<std::string_view, 11> kTypeNames = {
    "opened",      "finding",    "evidence", "severity", "state", "flapping",
    "maintenance", "mitigation", "page",     "ack",      "note"};

// Why 100: enough for `vigil incidents` to show a busy day without reading files; older ones
// are still on disk.
constexpr std::size_t kKeepResolved = 100;

Severity raise(Severity s, int levels) {
  const int v = std::max(1, static_cast<int>(s) - levels);
  return static_cast<Severity>(v);
}

std::string slug_of(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (out.size() >= 40) break;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out += c;
    } else if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if (!out.empty() && out.back() != '-') {
      out += '-';  // '.', ':', '@', ... of units and IPs
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "incident" : out;
}

// The names written to timeline files (stable; not the log's spelling).
std::string finding_kind(Finding::Kind k) {
  switch (k) {
    case Finding::Kind::firing:
      return "firing";
    case Finding::Kind::severity_changed:
      return "severity_changed";
    case Finding::Kind::changed:
      return "changed";
    case Finding::Kind::recovered:
      return "recovered";
  }
  return "firing";
}

}  // namespace

std::string_view to_string(IncidentState s) { return kStateNames[static_cast<std::size_t>(s)]; }

std::optional<IncidentState> parse_incident_state(std::string_view text) {
  for (std::size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == text) return static_cast<IncidentState>(i);
  }
  return std::nullopt;
}

std::string_view to_string(TimelineEvent::Type t) {
  return kTypeNames[static_cast<std::size_t>(t)];
}

std::optional<TimelineEvent::Type> parse_event_type(std::string_view text) {
  for (std::size_t i = 0; i < kTypeNames.size(); ++i) {
    if (kTypeNames[i] == text) return static_cast<TimelineEvent::Type>(i);
  }
  return std::nullopt;
}

bool Incident::flapping() const {
  return std::any_of(members.begin(), members.end(),
                     [](const auto& m) { return m.second.flapping; });
}

Duration Incident::time_to_detect() const { return between(started, detected); }

std::optional<Duration> Incident::time_to_resolve() const {
  if (!resolved) return std::nullopt;
  return between(started, *resolved);
}

std::optional<Duration> Incident::time_to_mitigate() const {
  if (!mitigated) return std::nullopt;
  return between(started, *mitigated);
}

void Incident::apply(const TimelineEvent& e) {
  timeline.push_back(e);
  const auto field = [&e](const char* name) -> std::string {
    const auto it = e.fields.find(name);
    return it == e.fields.end() ? std::string() : it->second;
  };
  using T = TimelineEvent::Type;
  switch (e.type) {
    case T::opened:
      host = field("host");
      service = field("service");
      team = field("team");
      dedupe_key = field("dedupe_key");
      title = field("title");
      maintenance = field("maintenance") == "yes";
      detected = e.at;
      started = e.since.value_or(e.at);
      state = IncidentState::detected;
      break;
    case T::finding: {
      IncidentMember& m = members[{e.check, e.key}];
      m.check = e.check;
      m.key = e.key;
      m.summary = e.text;
      if (!e.failure.empty()) m.failure = e.failure;
      if (e.severity) m.severity = *e.severity;
      if (e.finding == "recovered") {
        m.firing = false;
      } else {
        if (!m.firing) m.since = e.since.value_or(e.at);
        m.firing = true;
        // The impact began with the earliest failure of any member, also one that joins later.
        if (m.since < started) started = m.since;
      }
      break;
    }
    case T::severity:
      if (e.severity) {
        // The first severity event sets the peak; later ones can only make it worse.
        const bool first = std::count_if(timeline.begin(), timeline.end(),
                                         [](const auto& t) { return t.type == T::severity; }) == 1;
        severity = *e.severity;
        peak = first ? severity : worse(peak, severity);
      }
      break;
    case T::state:
      if (e.state) {
        state = *e.state;
        if (state == IncidentState::triaged && !triaged) triaged = e.at;
        if (state == IncidentState::mitigating && !mitigated) mitigated = e.at;
        if (state == IncidentState::resolved) resolved = e.at;
      }
      break;
    case T::flapping: {
      IncidentMember& m = members[{e.check, e.key}];
      m.check = e.check;
      m.key = e.key;
      m.flapping = field("flapping") == "yes";
      // A member that is also firing keeps the worse of its two ratings: starting to flap
      // must not lower a failure that is still going on.
      if (e.severity && m.flapping)
        m.severity = m.firing ? worse(m.severity, *e.severity) : *e.severity;
      if (m.flapping && m.since == TimePoint{}) m.since = e.since.value_or(e.at);
      break;
    }
    case T::maintenance:
      maintenance = field("maintenance") == "yes";
      break;
    case T::mitigation:
      // A mitigation that did not help raises the incident one level while it stays open.
      if (field("outcome") == "failed") ++raised;
      // Escalating with nothing failed in this incident (budget spent, circuit open, nothing
      // could apply) still means "worse than declared": a human is needed.
      if (field("outcome") == "escalated" && raised == 0) ++raised;
      break;
    case T::evidence:
    case T::page:
    case T::ack:
    case T::note:
      break;
  }
}

IncidentBook::IncidentBook(TriageSettings settings) : settings_(std::move(settings)) {}

std::string IncidentBook::dedupe_key(const CheckConfig& check, const std::string& key) const {
  const JournalSettings* j = check.journal();
  if (j != nullptr && !j->key.empty()) {
    // One incident per offender: each is its own problem (and, later, its own block).
    return settings_.host + "/" + check.name + "/" + key;
  }
  if (!check.service.empty()) return settings_.host + "/service/" + check.service;
  return settings_.host + "/" + check.name + (key.empty() ? "" : "/" + key);
}

Incident* IncidentBook::open_incident(const std::string& dedupe_key) {
  const auto k = by_key_.find(dedupe_key);
  if (k == by_key_.end()) return nullptr;
  const auto it = open_.find(k->second);
  return it == open_.end() ? nullptr : &it->second;
}

Incident* IncidentBook::incident_for(const CheckConfig& check, const std::string& key) {
  for (auto& [id, inc] : open_) {
    const auto m = inc.members.find({check.name, key});
    if (m != inc.members.end() && (m->second.firing || m->second.flapping)) return &inc;
  }
  return open_incident(dedupe_key(check, key));
}

const Incident* IncidentBook::open_for(const std::string& dedupe_key) const {
  const auto k = by_key_.find(dedupe_key);
  if (k == by_key_.end()) return nullptr;
  const auto it = open_.find(k->second);
  return it == open_.end() ? nullptr : &it->second;
}

const Incident* IncidentBook::find(std::string_view id) const {
  if (const auto it = open_.find(std::string(id)); it != open_.end()) return &it->second;
  for (const Incident& i : resolved_) {
    if (i.id == id) return &i;
  }
  return nullptr;
}

std::vector<const Incident*> IncidentBook::open() const {
  std::vector<const Incident*> out;
  for (const auto& [id, inc] : open_) out.push_back(&inc);
  return out;
}

std::string IncidentBook::new_id(TimePoint at, const std::string& slug) {
  const std::time_t t = Clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  const std::string base = std::string(stamp) + "-" + slug;
  std::string id = base;
  for (int n = 2; issued_.count(id) > 0 || (id_taken && id_taken(id)); ++n) {
    id = base + "-" + std::to_string(n);
  }
  issued_.insert(id);
  return id;
}

void IncidentBook::emit(Incident& inc, TimelineEvent e, std::vector<Change>& out) {
  inc.apply(e);
  out.push_back(Change{inc.id, std::move(e)});
}

Incident& IncidentBook::open_new(const CheckConfig& check, const std::string& key,
                                 const std::string& title, TimePoint started, TimePoint at,
                                 InMaintenance maintenance, std::vector<Change>& out) {
  const std::string dkey = dedupe_key(check, key);
  const std::string& name = check.service.empty() ? check.name : check.service;
  const JournalSettings* j = check.journal();
  const bool per_key = !key.empty() && (check.service.empty() || (j != nullptr && !j->key.empty()));
  Incident inc;
  inc.id = new_id(at, slug_of(per_key ? name + "-" + key : name));
  Incident& stored = open_.emplace(inc.id, std::move(inc)).first->second;
  by_key_[dkey] = stored.id;
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::opened;
  e.check = check.name;
  e.key = key;
  e.since = started;
  e.text = "incident opened: " + title;
  e.fields = {
      {"host", settings_.host}, {"service", check.service},
      {"team", check.team},     {"dedupe_key", dkey},
      {"title", title},         {"maintenance", maintenance == InMaintenance::yes ? "yes" : "no"}};
  emit(stored, std::move(e), out);
  return stored;
}

void IncidentBook::rescore(Incident& inc, TimePoint at, const std::string& why,
                           std::vector<Change>& out) {
  std::optional<Severity> base;
  std::set<std::string> failing_checks;
  for (const auto& [k, m] : inc.members) {
    if (!m.firing && !m.flapping) continue;
    base = base ? worse(*base, m.severity) : m.severity;
    failing_checks.insert(m.check);
  }
  if (!base) return;  // nothing failing: about to resolve; keep its severity
  int levels = 0;
  std::vector<std::string> reasons;
  if (failing_checks.size() >= 2) {
    ++levels;
    std::string names;
    for (const std::string& c : failing_checks) names += (names.empty() ? "" : ", ") + c;
    reasons.push_back(std::to_string(failing_checks.size()) + " checks failing (" + names + ")");
  }
  if (settings_.upgrade_after > Duration::zero() && at - inc.detected > settings_.upgrade_after) {
    ++levels;
    reasons.push_back("open for more than " + format_duration(settings_.upgrade_after));
  }
  const int raised = inc.raised;
  if (raised > 0) {
    levels += raised;
    reasons.push_back(std::to_string(raised) + " mitigation(s) did not help");
  }
  const Severity next = raise(*base, levels);
  const bool first = std::none_of(inc.timeline.begin(), inc.timeline.end(), [](const auto& t) {
    return t.type == TimelineEvent::Type::severity;
  });
  if (!first && next == inc.severity) return;
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::severity;
  e.severity = next;
  if (!first) e.previous = inc.severity;
  std::string text =
      first ? "declared " + std::string(to_string(next))
            : std::string(to_string(inc.severity)) + " -> " + std::string(to_string(next));
  text += ": " + why;
  if (!reasons.empty()) {
    text += "; raised from " + std::string(to_string(*base)) + ":";
    for (std::size_t i = 0; i < reasons.size(); ++i) text += (i ? ", " : " ") + reasons[i];
  }
  e.text = std::move(text);
  emit(inc, std::move(e), out);
}

void IncidentBook::maybe_resolve(Incident& inc, TimePoint at, std::vector<Change>& out,
                                 const std::string& why) {
  const bool failing = std::any_of(inc.members.begin(), inc.members.end(), [](const auto& m) {
    return m.second.firing || m.second.flapping;
  });
  if (failing) return;
  if (inc.state == IncidentState::verifying) {
    // The checks recovered while a mitigation was being verified: that is its verification.
    const auto last = std::find_if(inc.timeline.rbegin(), inc.timeline.rend(), [](const auto& t) {
      return t.type == TimelineEvent::Type::mitigation && t.fields.count("outcome") > 0 &&
             t.fields.at("outcome") == "ok";
    });
    TimelineEvent v;
    v.at = at;
    v.type = TimelineEvent::Type::mitigation;
    v.fields["outcome"] = "verified";
    if (last != inc.timeline.rend()) {
      for (const char* k : {"action", "target", "rung"}) {
        if (auto f = last->fields.find(k); f != last->fields.end()) v.fields[k] = f->second;
      }
    }
    v.text = "verified: the checks pass again after " +
             (v.fields.count("action") ? v.fields["action"] + " on " + v.fields["target"]
                                       : std::string("the mitigation"));
    emit(inc, std::move(v), out);
  }
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::state;
  e.state = IncidentState::resolved;
  e.text = why.empty()
               ? "resolved: every check recovered (verified by recover_after healthy results)"
               : "resolved: " + why;
  emit(inc, std::move(e), out);
  by_key_.erase(inc.dedupe_key);
  resolved_.push_back(std::move(inc));
  if (resolved_.size() > kKeepResolved) resolved_.erase(resolved_.begin());
  open_.erase(resolved_.back().id);
}

std::vector<IncidentBook::Change> IncidentBook::on_finding(const CheckConfig& check,
                                                           const Finding& f,
                                                           InMaintenance maintenance) {
  std::vector<Change> out;
  Incident* inc = incident_for(check, f.key);
  const bool opening = inc == nullptr;
  if (opening) {
    if (f.kind == Finding::Kind::recovered) return out;  // nothing open: nothing to resolve
    const std::string& name = check.service.empty() ? check.name : check.service;
    const std::string who = f.key.empty() ? name : name + " " + f.key;
    inc = &open_new(check, f.key, who + ": " + f.observation.summary, f.since, f.at, maintenance,
                    out);
  }
  TimelineEvent e;
  e.at = f.at;
  e.type = TimelineEvent::Type::finding;
  e.check = check.name;
  e.key = f.key;
  e.finding = finding_kind(f.kind);
  e.severity = f.severity;
  e.since = f.since;
  e.text = f.observation.summary.empty() ? f.reason : f.observation.summary;
  if (f.kind != Finding::Kind::recovered) e.failure = std::string(to_string(f.observation.failure));
  const HttpEvidence& h = f.observation.http;
  if (h.attempts > 0) {
    if (h.status != 0) e.fields["http_status"] = std::to_string(h.status);
    e.fields["latency_ms"] = std::to_string(h.total.count());
    if (!h.error.empty()) e.fields["error"] = h.error;
    if (!h.body_head.empty()) e.fields["body_head"] = h.body_head;
  }
  emit(*inc, std::move(e), out);
  if (f.kind != Finding::Kind::recovered && !f.observation.evidence.empty()) {
    TimelineEvent ev;
    ev.at = f.at;
    ev.type = TimelineEvent::Type::evidence;
    ev.check = check.name;
    ev.key = f.key;
    ev.text = "evidence from " + check.name;
    ev.evidence = f.observation.evidence;
    emit(*inc, std::move(ev), out);
  }
  if (f.kind == Finding::Kind::recovered) {
    rescore(*inc, f.at, check.name + " recovered", out);
    maybe_resolve(*inc, f.at, out);
    return out;
  }
  rescore(*inc, f.at, check.name + ": " + f.reason, out);
  if (opening) {
    TimelineEvent t;
    t.at = f.at;
    t.type = TimelineEvent::Type::state;
    t.state = IncidentState::triaged;
    t.text = "triaged as " + std::string(to_string(inc->severity)) +
             (check.team.empty() ? "" : ", team " + check.team);
    emit(*inc, std::move(t), out);
  }
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::add_evidence(const CheckConfig& check,
                                                             const std::string& key,
                                                             const std::string& text,
                                                             std::vector<std::string> lines,
                                                             TimePoint at) {
  std::vector<Change> out;
  Incident* inc = incident_for(check, key);
  if (inc == nullptr) return out;
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::evidence;
  e.check = check.name;
  e.key = key;
  e.text = text;
  e.evidence = std::move(lines);
  emit(*inc, std::move(e), out);
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::on_flapping(
    const CheckConfig& check, const std::string& key, Flapping flapping_now, Severity severity,
    const std::string& why, TimePoint at, InMaintenance maintenance) {
  const bool flapping = flapping_now == Flapping::started;
  std::vector<Change> out;
  Incident* inc = incident_for(check, key);
  const bool opening = inc == nullptr;
  if (opening) {
    if (!flapping) return out;
    const std::string& name = check.service.empty() ? check.name : check.service;
    inc =
        &open_new(check, key, name + ": " + check.name + " is flapping", at, at, maintenance, out);
  }
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::flapping;
  e.check = check.name;
  e.key = key;
  e.severity = severity;
  e.text = (flapping ? "flapping: " : "stopped flapping: ") + why;
  e.fields["flapping"] = flapping ? "yes" : "no";
  emit(*inc, std::move(e), out);
  rescore(*inc, at, check.name + (flapping ? " flapping" : " stopped flapping"), out);
  if (opening) {
    TimelineEvent t;
    t.at = at;
    t.type = TimelineEvent::Type::state;
    t.state = IncidentState::triaged;
    t.text = "triaged as " + std::string(to_string(inc->severity)) + " (flapping)";
    emit(*inc, std::move(t), out);
  }
  if (!flapping) maybe_resolve(*inc, at, out);
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::retire(const std::string& check,
                                                       const std::string& why, TimePoint at) {
  std::vector<Change> out;
  std::vector<std::string> ids;
  for (const auto& [id, inc] : open_) ids.push_back(id);
  for (const std::string& id : ids) {
    Incident& inc = open_.at(id);
    std::vector<std::pair<std::string, std::string>> gone;
    for (const auto& [k, m] : inc.members) {
      if (m.check == check && (m.firing || m.flapping)) gone.push_back(k);
    }
    if (gone.empty()) continue;
    for (const auto& [c, key] : gone) {
      if (inc.members.at({c, key}).flapping) {
        TimelineEvent f;
        f.at = at;
        f.type = TimelineEvent::Type::flapping;
        f.check = c;
        f.key = key;
        f.text = "stopped flapping: " + why;
        f.fields["flapping"] = "no";
        emit(inc, std::move(f), out);
      }
      if (inc.members.at({c, key}).firing) {
        TimelineEvent e;
        e.at = at;
        e.type = TimelineEvent::Type::finding;
        e.check = c;
        e.key = key;
        e.finding = "recovered";
        e.severity = inc.members.at({c, key}).severity;
        e.text = why;
        emit(inc, std::move(e), out);
      }
    }
    rescore(inc, at, check + ": " + why, out);
    maybe_resolve(inc, at, out);  // may move `inc` away: not used after this
  }
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::resolve_idle(const std::string& why, TimePoint at) {
  std::vector<Change> out;
  std::vector<std::string> ids;
  for (const auto& [id, inc] : open_) ids.push_back(id);
  for (const std::string& id : ids) maybe_resolve(open_.at(id), at, out, why);
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::tick(TimePoint now) {
  std::vector<Change> out;
  if (settings_.upgrade_after <= Duration::zero()) return out;
  for (auto& [id, inc] : open_) {
    if (now - inc.detected > settings_.upgrade_after) rescore(inc, now, "still open", out);
  }
  return out;
}

std::vector<IncidentBook::Change> IncidentBook::record(const std::string& id, TimelineEvent e) {
  std::vector<Change> out;
  const auto it = open_.find(id);
  if (it == open_.end()) {
    // Pages outlive their incident: the resolve page is decided after the resolution.
    if (e.type != TimelineEvent::Type::page) return out;
    for (Incident& r : resolved_) {
      if (r.id == id) emit(r, std::move(e), out);
    }
    return out;
  }
  Incident& inc = it->second;
  // A mitigation that did not help raises the incident one level, for as long as it is open.
  const auto outcome = e.fields.find("outcome");
  const bool failed =
      e.type == TimelineEvent::Type::mitigation && outcome != e.fields.end() &&
      (outcome->second == "failed" || (outcome->second == "escalated" && inc.raised == 0));
  const TimePoint at = e.at;
  emit(inc, std::move(e), out);
  if (failed) rescore(inc, at, "a mitigation did not help", out);
  return out;
}

void IncidentBook::restore(Incident incident, KeepResolved keep_resolved) {
  issued_.insert(incident.id);
  if (!incident.open()) {
    if (keep_resolved == KeepResolved::yes) {
      resolved_.push_back(std::move(incident));
      if (resolved_.size() > kKeepResolved) resolved_.erase(resolved_.begin());
    }
    return;
  }
  by_key_[incident.dedupe_key] = incident.id;
  const std::string id = incident.id;
  open_.insert_or_assign(id, std::move(incident));
}

}  // namespace vigil
