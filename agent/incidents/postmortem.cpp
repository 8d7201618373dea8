// The postmortem draft, section by section, and the terminal views of an incident (see
// postmortem.h). The words they share (times, escaping, the facts of the timeline) are in
// incident_text.h.
#include "agent/incidents/postmortem.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/terminal.h"
#include "agent/core/time.h"
#include "agent/incidents/incident_text.h"

namespace vigil {

// The vocabulary of this file: times, escaping and the facts of the timeline.
using namespace incident_text;

namespace {

// Why 40: enough to show what the responders saw at detection (a 503, the unit's status, a
// handful of journal lines from each check); the rest is in the timeline right below.
constexpr std::size_t kMaxDetectionLines = 40;

// ---------------------------------------------------------------------------------------------
// Postmortem sections

// "`app-http` (HTTP)"
std::string md_member(const MemberFacts& m) {
  return md_code(who(m.check, m.key)) + (m.kind.empty() ? "" : " (" + m.kind + ")");
}

// "the HTTP check `app-http` reported `HTTP 503 ...`"
std::string failure_phrase(const MemberFacts& m) {
  std::string out = "the " + (m.kind.empty() ? std::string() : m.kind + " ") + "check " +
                    md_code(who(m.check, m.key));
  if (m.kind == "journal" && !m.first_line.empty()) {
    return out + " matched " + md_code(m.first_line);
  }
  if (!m.first_text.empty()) return out + " reported " + md_code(m.first_text);
  if (m.flapped) return out + " was flapping";
  return out + " failed";
}

std::string join_phrases(const std::vector<std::string>& parts) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? (parts.size() > 2 ? ", and " : " and ") : ", ";
    out += parts[i];
  }
  return out;
}

// "service **app** on host `web-1`"
std::string subject(const Incident& inc) {
  std::string out = inc.service.empty() ? "check " + md_code(first_check(inc))
                                        : "service **" + md_text(inc.service) + "**";
  if (!inc.host.empty()) out += " on host " + md_code(inc.host);
  return out;
}

void write_header(std::ostringstream& md, const Incident& inc) {
  md << "# Postmortem " << md_text(inc.id);
  if (!inc.title.empty()) md << ": " << md_text(inc.title);
  md << "\n\n";
  if (inc.open()) {
    md << "> **Ongoing incident.** This is a draft of an incident that is still open (state: "
       << to_string(inc.state) << ", last event at " << utc_full(last_event_at(inc))
       << "). The impact end, the time to resolve and later events are missing: generate it "
          "again with `vigil postmortem "
       << inc.id << "` once the incident is resolved.\n\n";
  }
  md << "- **Incident:** " << md_code(inc.id) << "\n"
     << "- **Status:** " << to_string(inc.state);
  if (inc.resolved) md << " at " << utc_full(*inc.resolved);
  md << "\n"
     << "- **Severity:** " << to_string(inc.peak) << " at peak";
  if (inc.open()) md << ", " << to_string(inc.severity) << " now";
  md << "\n";
  if (!inc.service.empty()) md << "- **Service:** " << md_text(inc.service) << "\n";
  if (!inc.team.empty()) md << "- **Team:** " << md_text(inc.team) << "\n";
  if (!inc.host.empty()) md << "- **Host:** " << md_code(inc.host) << "\n";
  md << "- **Postmortem owner:** _to be assigned_\n\n"
     << "_Drafted by vigil from the incident's timeline. The facts below come from vigil's checks; "
        "the parts in italics are for the responders to write. This postmortem is blameless: it "
        "describes systems, signals and decisions, not people._\n\n";
}

void write_summary(std::ostringstream& md, const Incident& inc,
                   const std::vector<MemberFacts>& members) {
  md << "## Summary\n\n";
  md << "On " << utc(inc.started).substr(0, 10) << " at " << utc_hms(inc.started) << " UTC, "
     << subject(inc) << " started failing";
  std::vector<std::string> phrases;
  for (const MemberFacts& m : members) phrases.push_back(failure_phrase(m));
  if (!phrases.empty()) md << ": " << join_phrases(phrases);
  md << ". ";
  const TimelineEvent* declared = first_of(inc, Type::severity);
  const bool rated = declared != nullptr && declared->severity.has_value();
  md << "vigil declared " << (rated ? "a " + std::string(to_string(*declared->severity)) : "an")
     << " incident " << human(inc.time_to_detect()) << " after the first failing observation";
  if (!rated || *declared->severity != inc.peak) md << "; it peaked at " << to_string(inc.peak);
  md << ". ";
  const auto mitigations = events_of(inc, Type::mitigation);
  std::string how;
  if (mitigations.empty()) {
    how = "no automatic mitigation was run";
  } else {
    std::vector<std::string> runs;
    for (const TimelineEvent* e : mitigations) {
      const std::string words = mitigation_words(*e);
      runs.push_back(md_text(words.empty() ? e->text : words));
    }
    how = "vigil recorded " + std::to_string(mitigations.size()) + " mitigation event" +
          (mitigations.size() > 1 ? "s" : "") + " (" + join_phrases(runs) + ")";
  }
  const bool escalated =
      std::any_of(inc.timeline.begin(), inc.timeline.end(), [](const TimelineEvent& e) {
        return e.type == Type::state && e.state == IncidentState::escalated;
      });
  if (inc.resolved) {
    // The HTTP checks are what users see: when they recovered before the rest, say so.
    std::optional<TimePoint> http_back;
    std::vector<std::string> http_names;
    for (const MemberFacts& m : members) {
      if (!m.http || !m.recovered) continue;
      http_back = http_back ? std::max(*http_back, *m.recovered) : *m.recovered;
      http_names.push_back(md_code(who(m.check, m.key)));
    }
    if (http_back && *http_back < *inc.resolved) {
      md << (http_names.size() == 1 ? "The HTTP check " : "The HTTP checks ")
         << join_phrases(http_names) << " recovered at " << utc_hms(*http_back) << " UTC ("
         << human(between(inc.started, *http_back))
         << " after the impact began) and every check by " << utc_hms(*inc.resolved) << " UTC; "
         << how;
    } else {
      md << "Every check had recovered by " << utc_hms(*inc.resolved) << " UTC, "
         << human(between(inc.started, *inc.resolved)) << " after the impact began; " << how;
    }
    if (escalated) md << "; the incident had been escalated to the on-call responders";
    md << ".";
  } else {
    md << "The incident is still open (" << to_string(inc.state) << ", "
       << human(between(inc.started, last_event_at(inc))) << " after the impact began, as of "
       << utc_hms(last_event_at(inc)) << " UTC); " << how << ".";
  }
  md << "\n\n_Responders: refine this summary: what users saw, why it happened, and what brought "
        "the service back._\n\n";
}

void write_impact(std::ostringstream& md, const Incident& inc,
                  const std::vector<MemberFacts>& members) {
  md << "## Impact\n\n";
  md << "- **Impact window:** ";
  if (inc.resolved) {
    md << span(inc.started, *inc.resolved, "→") << " ("
       << human(between(inc.started, *inc.resolved)) << ")\n";
  } else {
    md << utc_full(inc.started) << " → ongoing (" << human(between(inc.started, last_event_at(inc)))
       << " as of the last event)\n";
  }
  md << "- **Peak severity:** " << to_string(inc.peak) << "\n";
  if (inc.maintenance) {
    md << "- **Maintenance:** the incident fell in a maintenance window; vigil sent no pages and "
          "ran no actions.\n";
  }
  md << "- **Checks that failed** (HTTP checks first: they are closest to what users see):\n";
  for (const MemberFacts& m : members) {
    md << "  - " << md_member(m) << ": ";
    if (m.worst) md << to_string(*m.worst);
    if (!m.failure.empty()) md << ", " << md_text(m.failure);
    if (m.flapped) md << ", flapping";
    if (m.since) {
      md << "; failing ";
      if (m.recovered) {
        md << span(*m.since, *m.recovered, "→") << " (" << human(between(*m.since, *m.recovered))
           << ")";
      } else {
        md << "since " << utc_full(*m.since) << (m.failing_now ? ", still failing" : "");
      }
    }
    if (!m.first_text.empty()) md << ": " << md_code(m.first_text);
    md << "\n";
  }
  md << "- **User impact:** _To be written by the responders: who was affected, how many requests "
        "or jobs failed, how much error budget was spent._\n\n";
}

void write_detection(std::ostringstream& md, const Incident& inc,
                     const std::vector<MemberFacts>& members) {
  md << "## Detection\n\n";
  const std::string first = first_check(inc);
  std::string kind;
  for (const MemberFacts& m : members) {
    if (who(m.check, m.key) == first && !m.kind.empty()) kind = m.kind + " ";
  }
  md << "vigil detected the incident through the " << kind << "check " << md_code(first) << ".\n\n";
  md << "- **First failing observation:** " << utc_full(inc.started) << "\n"
     << "- **Incident declared:** " << utc_full(inc.detected) << "\n"
     << "- **Time to detect:** " << human(inc.time_to_detect()) << "\n";
  if (const TimelineEvent* declared = first_of(inc, Type::severity)) {
    md << "- **Severity decision:** " << md_text(declared->text) << "\n";
  }
  if (inc.triaged) {
    md << "- **Triaged:** " << utc_full(*inc.triaged);
    for (const TimelineEvent* e : events_of(inc, Type::state)) {
      if (e->state == IncidentState::triaged) {
        md << " (" << md_text(e->text) << ")";
        break;
      }
    }
    md << "\n";
  }
  const auto pages = events_of(inc, Type::page);
  if (pages.empty()) {
    md << "- **Pages:** none recorded\n";
  } else {
    md << "- **Pages:**\n";
    for (const TimelineEvent* p : pages) {
      md << "  - " << utc_full(p->at) << ": " << md_text(event_detail(*p, Lines::first)) << "\n";
    }
  }

  // What the responders had to go on: the failing findings and the evidence gathered before the
  // first mitigation (or the resolution), in the order vigil recorded them.
  const std::optional<TimePoint> mitigated = first_mitigation(inc);
  const std::optional<TimePoint> cutoff = mitigated ? mitigated : inc.resolved;
  std::vector<std::string> lines;
  std::size_t check_width = 0;
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type == Type::finding || e.type == Type::evidence) {
      check_width = std::max(check_width, who(e.check, e.key).size());
    }
  }
  std::size_t left_off = 0;
  const auto add = [&](std::string line) {
    if (lines.size() < kMaxDetectionLines) {
      lines.push_back(std::move(line));
    } else {
      ++left_off;
    }
  };
  for (const TimelineEvent& e : inc.timeline) {
    if (cutoff && e.at > *cutoff) continue;
    const std::string prefix = utc(e.at) + "  " + pad(who(e.check, e.key), check_width) + "  ";
    if (e.type == Type::finding && e.finding != "recovered") {
      add(prefix + visible(e.finding + " " + event_detail(e, Lines::all)));
    } else if (e.type == Type::evidence) {
      add(prefix + visible(e.text) + ":");
      for (const std::string& line : e.evidence) {
        add(std::string(prefix.size(), ' ') + "  " + visible(line));
      }
    }
  }
  if (!lines.empty()) {
    md << "\nEvidence vigil gathered "
       << (mitigated ? "before the first mitigation"
                     : (inc.resolved ? "before the resolution" : "so far"))
       << " (times in UTC):\n\n";
    const std::string fence = fence_for(lines);
    md << fence << "text\n";
    for (const std::string& line : lines) md << line << "\n";
    if (left_off > 0) {
      md << "... " << left_off << " more line" << (left_off > 1 ? "s" : "")
         << ": see the timeline\n";
    }
    md << fence << "\n";
  }
  md << "\n_Responders: could this have been detected sooner, or by a check closer to the users? "
        "Was the severity right?_\n\n";
}

void write_timeline(std::ostringstream& md, const Incident& inc) {
  md << "## Timeline\n\n"
     << "| Time (UTC) | Event | Detail |\n"
     << "|---|---|---|\n";
  for (const TimelineEvent& e : inc.timeline) {
    md << "| " << utc(e.at) << " | " << md_cell(event_label(e)) << " | "
       << md_cell(event_detail(e, Lines::all)) << " |\n";
  }
  md << "\n_Responders: add what the responders saw and did (name roles, not people) and the "
        "events vigil could not see._\n\n";
}

void write_mitigations(std::ostringstream& md, const Incident& inc) {
  md << "## Mitigations\n\n";
  const auto mitigations = events_of(inc, Type::mitigation);
  if (mitigations.empty()) {
    md << "No automatic mitigation was run.\n\n";
  } else {
    for (const TimelineEvent* e : mitigations) {
      const std::string action = field(*e, "action");
      const std::string target = field(*e, "target");
      const std::string outcome = field(*e, "outcome");
      md << "- " << utc_full(e->at) << ": ";
      md << (action.empty() ? std::string("mitigation") : md_code(action));
      if (!target.empty()) md << " of " << md_code(target);
      md << ": **" << (outcome.empty() ? std::string("no outcome recorded") : md_text(outcome))
         << "**";
      if (!e->text.empty()) md << ": " << md_text(e->text);
      md << "\n";
    }
    md << "\n";
  }
  md << "_Responders: list the manual steps taken, if any, and whether they helped._\n\n";
}

void write_metrics(std::ostringstream& md, const Incident& inc) {
  md << "## Metrics\n\n"
     << "| Metric | Value | Measured |\n"
     << "|---|---|---|\n"
     << "| Time to detect | " << human(inc.time_to_detect())
     << " | first failing observation → incident declared |\n";
  if (const TimelineEvent* ack = first_of(inc, Type::ack)) {
    md << "| Time to acknowledge | " << human(between(inc.detected, ack->at))
       << " | incident declared → first acknowledgement |\n";
  }
  md << "| Time to mitigate | ";
  if (const std::optional<TimePoint> m = first_mitigation(inc)) {
    md << human(between(inc.started, *m));
  } else {
    md << "no mitigation";
  }
  md << " | first failing observation → first mitigation started |\n"
     << "| Time to resolve | "
     << (inc.resolved ? human(between(inc.started, *inc.resolved)) : std::string("still open"))
     << " | first failing observation → every check recovered |\n"
     << "| Peak severity | " << to_string(inc.peak) << " | |\n\n"
     << "A check counts as recovered only after its `recover_after` healthy results in a row, so "
        "the time to resolve includes that confirmation.\n\n";
}

void write_root_cause(std::ostringstream& md, const Incident& inc,
                      const std::vector<MemberFacts>& members) {
  md << "## Root cause\n\n"
     << "_To be written by the responders._\n\n"
     << "Questions to guide the analysis (keep asking \"why\" until the answer is a system or a "
        "process that can change, never a person):\n\n";
  // The clue: a journal check's matched line says most ("connection pool exhausted"); else what
  // the first failing check reported.
  std::string clue;
  for (const MemberFacts& m : members) {
    if (clue.empty() && m.kind == "journal") clue = m.first_line;
  }
  if (clue.empty() && !members.empty()) clue = members.front().first_text;
  if (!clue.empty()) {
    md << "- The evidence shows " << md_code(clue)
       << ": is that the cause, or a symptom of something upstream?\n";
  }
  md << "- What changed shortly before " << utc_hms(inc.started)
     << " UTC: a deploy, a configuration change, traffic, a dependency?\n"
     << "- Which safeguard (a limit, a retry, an alert, capacity headroom) should have stopped "
        "this, and why did it not?\n"
     << "- Could vigil have mitigated it automatically, and would that have been safe?\n\n";
}

void write_closing(std::ostringstream& md) {
  md << "## Action items\n\n"
     << "| Action | Owner | Due | Ticket |\n"
     << "|---|---|---|---|\n"
     << "|  |  |  |  |\n\n"
     << "## Lessons learned\n\n"
     << "### What went well\n\n-\n\n"
     << "### What went wrong\n\n-\n\n"
     << "### Where we got lucky\n\n-\n";
}

}  // namespace

std::string render_postmortem(const Incident& inc) {
  const std::vector<MemberFacts> members = member_facts(inc);
  std::ostringstream md;
  write_header(md, inc);
  write_summary(md, inc, members);
  write_impact(md, inc, members);
  write_detection(md, inc, members);
  write_timeline(md, inc);
  write_mitigations(md, inc);
  write_metrics(md, inc);
  write_root_cause(md, inc, members);
  write_closing(md);
  return md.str();
}

std::string format_incident(const Incident& inc) {
  std::ostringstream out;
  const auto row = [&out](const char* name, const std::string& value) {
    out << "  " << pad(name, 11) << value << "\n";
  };
  out << "Incident " << inc.id << "\n";
  row("title", visible(inc.title));
  row("severity", std::string(to_string(inc.severity)) +
                      (inc.open() ? " now, " : " when resolved, ") +
                      std::string(to_string(inc.peak)) + " at peak");
  row("state", std::string(to_string(inc.state)) + (inc.maintenance ? " (maintenance)" : "") +
                   (inc.flapping() ? " (flapping)" : ""));
  row("service", inc.service.empty() ? "-" : visible(inc.service));
  row("team", inc.team.empty() ? "-" : visible(inc.team));
  row("host", inc.host.empty() ? "-" : visible(inc.host));
  row("started", utc_full(inc.started) + "  (first failing observation)");
  row("detected", utc_full(inc.detected) + "  (MTTD " + human(inc.time_to_detect()) + ")");
  if (const std::optional<TimePoint> m = first_mitigation(inc)) {
    row("mitigated", utc_full(*m) + "  (first mitigation, " + human(between(inc.started, *m)) +
                         " after the start)");
  }
  if (inc.resolved) {
    row("resolved", utc_full(*inc.resolved) + "  (MTTR " + human(*inc.time_to_resolve()) + ")");
  } else {
    row("resolved", "-  (still open)");
  }

  out << "\nMembers\n";
  std::size_t name_width = 0;
  std::size_t failure_width = 0;
  for (const auto& [k, m] : inc.members) {
    name_width = std::max(name_width, visible(who(m.check, m.key)).size());
    failure_width = std::max(failure_width, m.failure.size());
  }
  for (const auto& [k, m] : inc.members) {
    std::string status = m.firing ? "firing" : "recovered";
    if (m.flapping) status = m.firing ? "firing,flapping" : "flapping";
    out << "  " << pad(visible(who(m.check, m.key)), name_width) << "  " << pad(status, 15) << "  "
        << to_string(m.severity) << "  " << pad(visible(m.failure), failure_width) << "  "
        << "since " << utc(m.since) << "  " << visible(m.summary) << "\n";
  }

  out << "\nEvidence\n";
  bool any = false;
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type != Type::evidence) continue;
    any = true;
    out << "  " << utc_full(e.at) << "  " << visible(who(e.check, e.key)) << ": " << visible(e.text)
        << "\n";
    for (const std::string& line : e.evidence) out << "    " << visible(line) << "\n";
  }
  if (!any) out << "  (none)\n";

  out << "\nTimeline\n";
  std::size_t type_width = 0;
  for (const TimelineEvent& e : inc.timeline) {
    type_width = std::max(type_width, to_string(e.type).size());
  }
  for (const TimelineEvent& e : inc.timeline) {
    std::string what = event_detail(e, Lines::first);
    if (e.type == Type::finding || e.type == Type::flapping) {
      what = event_label(e) + ": " + what;
    }
    out << "  " << utc_full(e.at) << "  " << pad(std::string(to_string(e.type)), type_width) << "  "
        << visible(what) << "\n";
  }
  return out.str();
}

namespace {

std::string text_of(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? visible(it->get<std::string>()) : std::string();
}

}  // namespace

std::string marked_title(const nlohmann::json& summary) {
  const auto flag = [&summary](const char* key) {
    const auto it = summary.find(key);
    return it != summary.end() && it->is_boolean() && it->get<bool>();
  };
  std::string title = text_of(summary, "title");
  if (flag("flapping")) title = "[flapping] " + title;
  if (flag("maintenance")) title = "[maintenance] " + title;
  return title;
}

std::string format_incidents_table(const nlohmann::json& summaries, TimePoint now) {
  // A column of `width`: the text padded, and at least one space after it (an id is never cut).
  const auto col = [](std::string t, std::size_t width) {
    return pad(std::move(t), width - 1) + " ";
  };
  std::string out = "INCIDENT" + std::string(30, ' ') + "SEV   PEAK  STATE       DETECTED" +
                    std::string(17, ' ') + "LASTED   TITLE\n";
  if (!summaries.is_array()) return out;
  for (const nlohmann::json& i : summaries) {
    if (!i.is_object()) continue;
    std::string lasted = "?";
    const std::optional<TimePoint> detected = parse_time(text_of(i, "detected"));
    if (const auto resolved = parse_time(text_of(i, "resolved"))) {
      if (const auto started = parse_time(text_of(i, "started"))) {
        lasted = format_duration(std::chrono::duration_cast<Duration>(*resolved - *started));
      }
    } else if (detected) {
      lasted = "open " + format_duration(std::chrono::duration_cast<Duration>(
                             std::chrono::duration_cast<std::chrono::seconds>(now - *detected)));
    }
    out += col(text_of(i, "id"), 38) + col(text_of(i, "severity"), 6) + col(text_of(i, "peak"), 6) +
           col(text_of(i, "state"), 12) + col(text_of(i, "detected").substr(0, 19), 25) +
           col(lasted, 9) + marked_title(i) + "\n";
  }
  return out;
}

}  // namespace vigil
