#include "notify/pager.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "notify/register.h"

namespace vigil {
namespace {

// Why 20 lines of 512 bytes: a page is read on a phone; the whole evidence is on the host
// (`vigil incident show ID`), and PagerDuty caps an event at 512 KiB, Alertmanager annotations
// are kept in memory per alert. 10 KiB is plenty for "what did the journal say" and cheap.
constexpr std::size_t kEvidenceLines = 20;
constexpr std::size_t kEvidenceLineBytes = 512;

std::string field_of(const TimelineEvent& e, const char* name) {
  const auto it = e.fields.find(name);
  return it == e.fields.end() ? std::string() : it->second;
}

// `s` cut to at most `max` bytes, never inside a UTF-8 sequence.
std::string cut_utf8(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  // Back off over continuation bytes (10xxxxxx) to the lead byte, which is cut off too.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// The member a page speaks for: the first firing one, else the first.
const IncidentMember* lead_member(const Incident& inc) {
  for (const auto& [k, m] : inc.members) {
    if (m.firing) return &m;
  }
  return inc.members.empty() ? nullptr : &inc.members.begin()->second;
}

// Only kinds with an acknowledge in their wire format get one planned (the others would skip it
// at render time); only kinds that take change events get those.
bool has_acknowledge(NotifierKind k) {
  const Notifier* kind = notifier_for(k);
  return kind != nullptr && kind->has_acknowledge();
}
bool takes_change_events(NotifierKind k) {
  const Notifier* kind = notifier_for(k);
  return kind != nullptr && kind->takes_change_events();
}

// Every notifier named in an escalation chain (of any team): paged by chains only.
std::set<std::string> chain_notifiers(const Config& config) {
  std::set<std::string> out;
  for (const EscalationConfig& e : config.escalations) {
    for (const EscalationStep& s : e.steps) out.insert(s.notify);
  }
  return out;
}

long long whole_minutes(Duration d) {
  return std::chrono::duration_cast<std::chrono::minutes>(d).count();
}

PlannedPage planned(const Incident& inc, const NotifyConfig& n, PageAction action, TimePoint now) {
  PlannedPage p;
  p.page = snapshot(inc, n, action, now);
  return p;
}

// The pages a target that was already triggered needs now (update, acknowledge, resolve).
void follow_up(const Incident& inc, const NotifyConfig& n, const PagedTarget& t,
               const PagedState& ps, const PagerInput& in, std::vector<PlannedPage>& out) {
  if (!t.triggered || t.resolved) return;
  if (!inc.open()) {
    PlannedPage p = planned(inc, n, PageAction::resolve, in.now);
    // The target's alert carries the severity it last got: Alertmanager identifies an alert
    // by its labels, so the old one must be resolved too.
    if (t.severity != inc.severity) p.page.previous = t.severity;
    out.push_back(std::move(p));
    return;
  }
  if (inc.maintenance) return;  // a human is working on it: resolves only
  const std::string state(to_string(inc.state));
  const Duration since_last = std::chrono::duration_cast<Duration>(in.now - t.last);
  if (inc.severity != t.severity) {
    PlannedPage p = planned(inc, n, PageAction::update, in.now);
    p.page.previous = t.severity;
    out.push_back(std::move(p));
  } else if (state != t.state &&
             (n.kind == NotifierKind::statuspage || n.kind == NotifierKind::webhook)) {
    out.push_back(planned(inc, n, PageAction::update, in.now));
  } else if (n.kind == NotifierKind::alertmanager) {
    TimePoint base = t.last;
    if (const auto it = in.last_sent.find(n.name); it != in.last_sent.end()) {
      base = std::max(base, it->second);
    }
    if (n.resend_every > Duration::zero() && in.now - base >= n.resend_every) {
      PlannedPage p = planned(inc, n, PageAction::update, in.now);
      p.quiet = true;
      out.push_back(std::move(p));
    }
  } else if (n.kind == NotifierKind::statuspage) {
    if (n.update_every > Duration::zero() && since_last >= n.update_every) {
      PlannedPage p = planned(inc, n, PageAction::update, in.now);
      p.page.text = "No news yet: still " + state + ".";
      out.push_back(std::move(p));
    }
  } else if (n.kind == NotifierKind::webhook) {
    if (inc.severity == Severity::sev1 && !ps.acknowledged && n.update_every > Duration::zero() &&
        since_last >= n.update_every) {
      PlannedPage p = planned(inc, n, PageAction::update, in.now);
      p.page.text =
          "unacknowledged for " +
          std::to_string(whole_minutes(std::chrono::duration_cast<Duration>(in.now - t.first))) +
          "m";
      out.push_back(std::move(p));
    }
  }
  if (ps.acknowledged && !t.acknowledged && has_acknowledge(n.kind)) {
    PlannedPage p = planned(inc, n, PageAction::acknowledge, in.now);
    p.page.text = ps.ack_by;
    out.push_back(std::move(p));
  }
}

// The next step of the incident's escalation chain, if it is due.
void escalate(const Incident& inc, const PagedState& ps, const PagerInput& in,
              std::vector<PlannedPage>& out) {
  const Config& config = *in.config;
  if (!inc.open() || inc.maintenance || ps.acknowledged) return;
  const EscalationConfig* chain = config.escalation_for(inc.team);
  if (chain == nullptr) return;
  const int k = ps.step + 1;
  if (k >= static_cast<int>(chain->steps.size())) return;
  const EscalationStep& step = chain->steps[static_cast<std::size_t>(k)];
  // A step whose notifier a reload removed (the validator refuses that) stops the chain there.
  const NotifyConfig* n = config.find_notify(step.notify);
  if (n == nullptr) return;
  if (k == 0) {
    // The chain is the team's own: only the severity is routed. A SEV3 incident later raised
    // to SEV1 starts a SEV1-only chain then.
    if (static_cast<int>(inc.severity) > static_cast<int>(n->severity)) return;
  } else if (in.now < ps.step_at + step.after) {
    return;
  }
  const auto t = ps.targets.find(n->name);
  const bool triggered = t != ps.targets.end() && t->second.triggered;
  if (triggered && t->second.resolved) return;
  // A notifier named twice in the chain already has the page: the step is an update of it.
  PlannedPage p = planned(inc, *n, triggered ? PageAction::update : PageAction::trigger, in.now);
  p.step = k;
  out.push_back(std::move(p));
}

}  // namespace

bool routes(const NotifyConfig& n, Severity severity, const std::string& team) {
  if (static_cast<int>(severity) > static_cast<int>(n.severity)) return false;
  return n.teams.empty() || std::find(n.teams.begin(), n.teams.end(), team) != n.teams.end();
}

PagedState paged_state(const Incident& inc) {
  PagedState s;
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type == TimelineEvent::Type::ack) {
      s.acknowledged = true;
      s.ack_by = e.text;
      continue;
    }
    if (e.type != TimelineEvent::Type::page) continue;
    const std::string notifier = field_of(e, "notifier");
    const std::optional<PageAction> action = parse_page_action(field_of(e, "action"));
    if (notifier.empty() || !action) continue;
    PagedTarget& t = s.targets[notifier];
    switch (*action) {
      case PageAction::trigger:
        if (!t.triggered) t.first = e.at;
        t.triggered = true;
        [[fallthrough]];
      case PageAction::update:
        if (e.severity) t.severity = *e.severity;
        t.state = field_of(e, "state");
        t.last = e.at;
        break;
      case PageAction::acknowledge:
        t.acknowledged = true;
        break;
      case PageAction::resolve:
        t.resolved = true;
        break;
      case PageAction::change:
      case PageAction::heartbeat:
        break;
    }
    if (const std::string step = field_of(e, "step"); !step.empty()) {
      const int k = std::clamp(std::atoi(step.c_str()), -1, 1000);
      if (k >= 0 && k >= s.step) {
        s.step = k;
        s.step_at = e.at;
      }
    }
  }
  return s;
}

std::vector<PlannedPage> plan_pages(const PagerInput& in) {
  std::vector<PlannedPage> out;
  if (in.config == nullptr || in.incident == nullptr) return out;
  const Incident& inc = *in.incident;
  const Config& config = *in.config;
  const PagedState ps = paged_state(inc);
  const bool any_triggered = std::any_of(ps.targets.begin(), ps.targets.end(),
                                         [](const auto& t) { return t.second.triggered; });
  // Nothing paged yet: a maintenance incident stays quiet, and one resolved before its first
  // page (a blip) is not worth waking anybody to say it is over.
  if (!any_triggered && (inc.maintenance || !inc.open())) return out;
  const std::set<std::string> chained = chain_notifiers(config);
  static const PagedTarget kNever;
  for (const NotifyConfig& n : config.notify) {
    const auto it = ps.targets.find(n.name);
    const PagedTarget& t = it == ps.targets.end() ? kNever : it->second;
    if (!t.triggered) {
      if (inc.open() && !inc.maintenance && chained.count(n.name) == 0 &&
          routes(n, inc.severity, inc.team)) {
        out.push_back(planned(inc, n, PageAction::trigger, in.now));
      }
      continue;
    }
    follow_up(inc, n, t, ps, in, out);
  }
  escalate(inc, ps, in, out);
  return out;
}

std::vector<PlannedPage> change_pages(const Config& config, const Incident& inc,
                                      const TimelineEvent& mitigation) {
  std::vector<PlannedPage> out;
  if (mitigation.type != TimelineEvent::Type::mitigation) return out;
  const std::string action = field_of(mitigation, "action");
  if (action.rfind("rollback:", 0) != 0 || field_of(mitigation, "outcome") != "ok") return out;
  const PagedState ps = paged_state(inc);
  for (const NotifyConfig& n : config.notify) {
    if (!takes_change_events(n.kind)) continue;
    const auto t = ps.targets.find(n.name);
    if (t == ps.targets.end() || !t->second.triggered) continue;
    PlannedPage p = planned(inc, n, PageAction::change, mitigation.at);
    p.page.text = mitigation.text;
    p.page.details["action"] = action;
    if (const std::string target = field_of(mitigation, "target"); !target.empty()) {
      p.page.details["target"] = target;
    }
    out.push_back(std::move(p));
  }
  return out;
}

Page snapshot(const Incident& inc, const NotifyConfig& notifier, PageAction action, TimePoint now) {
  Page p;
  p.target = notifier.name;
  p.notifier = notifier.name;
  p.action = action;
  p.incident = inc.id;
  p.host = inc.host;
  p.title = inc.title;
  p.service = inc.service;
  p.team = inc.team;
  p.severity = inc.severity;
  p.state = std::string(to_string(inc.state));
  p.started = inc.started;
  p.at = now;
  p.resolved = inc.resolved;
  p.summary = inc.title;
  if (const IncidentMember* m = lead_member(inc)) {
    p.check = m->check;
    if (!m->summary.empty()) p.summary = m->summary;
    if (!m->failure.empty()) p.details["failure"] = m->failure;
  }
  // The check label is part of an Alertmanager alert's identity: it stays the member that
  // opened the incident, whichever member fails now, so the alert never changes its labels.
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type == TimelineEvent::Type::finding && !e.check.empty()) {
      p.check = e.check;
      break;
    }
  }
  std::vector<const std::string*> lines;
  const TimelineEvent* last_mitigation = nullptr;
  for (const TimelineEvent& e : inc.timeline) {
    switch (e.type) {
      case TimelineEvent::Type::evidence:
        for (const std::string& l : e.evidence) lines.push_back(&l);
        break;
      case TimelineEvent::Type::ack:
        p.acknowledged = true;
        break;
      case TimelineEvent::Type::mitigation:
        last_mitigation = &e;
        if (field_of(e, "outcome") == "dry_run" || field_of(e, "dry_run") == "yes") {
          p.dry_run = true;
        }
        break;
      default:
        break;
    }
  }
  // The evidence starts with what the failing check saw (the 503), then what the incident
  // gathered (the unit's state, its journal lines: "connection pool exhausted"), together.
  std::size_t room = kEvidenceLines;
  if (const IncidentMember* m = lead_member(inc); m != nullptr && !m->summary.empty()) {
    p.evidence.push_back(cut_utf8(m->check + ": " + m->summary, kEvidenceLineBytes));
    --room;
  }
  const std::size_t from = lines.size() > room ? lines.size() - room : 0;
  for (std::size_t i = from; i < lines.size(); ++i) {
    p.evidence.push_back(cut_utf8(*lines[i], kEvidenceLineBytes));
  }
  if (last_mitigation != nullptr) {
    std::string text = field_of(*last_mitigation, "action");
    if (const std::string o = field_of(*last_mitigation, "outcome"); !o.empty()) {
      text += (text.empty() ? "" : " ") + o;
    }
    if (!last_mitigation->text.empty()) {
      text += (text.empty() ? "" : ": ") + last_mitigation->text;
    }
    if (!text.empty()) p.details["mitigations"] = text;
  }
  return p;
}

TimelineEvent page_event(const PlannedPage& p) {
  TimelineEvent e;
  e.at = p.page.at;
  e.type = TimelineEvent::Type::page;
  e.severity = p.page.severity;
  e.previous = p.page.previous;
  e.text = "paged " + p.page.notifier + ": " + std::string(to_string(p.page.action)) + " (" +
           std::string(to_string(p.page.severity)) + ")";
  if (p.step >= 0) e.text += " step " + std::to_string(p.step);
  if (!p.page.text.empty()) e.text += ": " + p.page.text;
  e.fields["notifier"] = p.page.notifier;
  e.fields["action"] = std::string(to_string(p.page.action));
  e.fields["state"] = p.page.state;
  if (p.step >= 0) e.fields["step"] = std::to_string(p.step);
  return e;
}

}  // namespace vigil
