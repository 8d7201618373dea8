#include "agent/incidents/postmortem.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/terminal.h"

namespace vigil {
namespace {

using Type = TimelineEvent::Type;

// Why 40: enough to show what the responders saw at detection (a 503, the unit's status, a
// handful of journal lines from each check); the rest is in the timeline right below.
constexpr std::size_t kMaxDetectionLines = 40;
// Why 57: with a typical id, the line stays within 120 columns; the full title is one
// `vigil incident show ID` away.
constexpr std::size_t kLineTitleBytes = 57;
// Why 28: "YYYYMMDD-HHMMSS-" plus a 12-character slug; longer ids push the line, never get cut.
constexpr std::size_t kLineIdWidth = 28;

// ---------------------------------------------------------------------------------------------
// Times and durations

// "2026-11-27 01:42:07.123" (UTC).
std::string utc(TimePoint t) {
  const auto ms = std::chrono::floor<std::chrono::milliseconds>(t);
  const auto secs = std::chrono::floor<std::chrono::seconds>(ms);
  const std::time_t tt = Clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03d", static_cast<int>((ms - secs).count()));
  return std::string(stamp) + millis;
}

// "2026-11-27 01:42:07.123 UTC".
std::string utc_full(TimePoint t) { return utc(t) + " UTC"; }

// "01:42:07" (UTC, no milliseconds): for prose, where the exact stamp is given elsewhere.
std::string utc_hms(TimePoint t) { return utc(t).substr(11, 8); }

bool same_utc_day(TimePoint a, TimePoint b) { return utc(a).substr(0, 10) == utc(b).substr(0, 10); }

// "A UTC → B UTC", with B's date left out when it is A's.
std::string span(TimePoint from, TimePoint to, std::string_view arrow) {
  const std::string end = same_utc_day(from, to) ? utc(to).substr(11) : utc(to);
  return utc_full(from) + " " + std::string(arrow) + " " + end + " UTC";
}

std::string two_digits(long long n) { return (n < 10 ? "0" : "") + std::to_string(n); }

// Durations for people: "850ms", "2.412s", "2m13s", "1h02m", "3d04h". Precise where precision
// means something (detection is measured in milliseconds), coarse where it does not.
// (format_duration writes the config syntax, "2m13s450ms": exact, but noisy in a report.)
std::string human(Duration d) {
  long long ms = d.count();
  std::string sign;
  if (ms < 0) {
    sign = "-";
    ms = -ms;
  }
  if (ms < 1'000) return sign + std::to_string(ms) + "ms";
  if (ms < 60'000) {
    std::string frac = two_digits((ms % 1'000) / 10) + std::to_string(ms % 10);
    while (!frac.empty() && frac.back() == '0') frac.pop_back();
    return sign + std::to_string(ms / 1'000) + (frac.empty() ? "" : "." + frac) + "s";
  }
  const long long s = ms / 1'000;
  if (s < 3'600) return sign + std::to_string(s / 60) + "m" + two_digits(s % 60) + "s";
  if (s < 86'400) return sign + std::to_string(s / 3'600) + "h" + two_digits(s % 3'600 / 60) + "m";
  return sign + std::to_string(s / 86'400) + "d" + two_digits(s % 86'400 / 3'600) + "h";
}

// Coarser, for the one-line listing: "850ms", "45s", "12m", "1h02m", "3d04h".
std::string coarse(Duration d) {
  const long long ms = std::max<long long>(0, d.count());
  if (ms < 1'000) return std::to_string(ms) + "ms";
  if (ms < 60'000) return std::to_string(ms / 1'000) + "s";
  if (ms < 3'600'000) return std::to_string(ms / 60'000) + "m";
  return human(Duration(ms));
}

// ---------------------------------------------------------------------------------------------
// Escaping

// Text inside a Markdown table cell: '|' would end the cell and a newline the row, '<' could
// start an HTML tag that swallows an error page; '\\', '*', '`' and '[' would turn observed text
// into formatting or links. Newlines become <br> so a multi-line detail stays in its row.
std::string md_cell(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // \r\n: one break
    switch (c) {
      case '\n':
      case '\r':
        out += "<br>";
        break;
      case '|':
      case '\\':
      case '*':
      case '`':
      case '[':
        out += '\\';
        out += c;
        break;
      case '<':
        out += "&lt;";
        break;
      default: {
        // A run of ordinary bytes at once, so a UTF-8 character is judged whole.
        std::size_t end = i + 1;
        while (end < text.size() &&
               std::string_view("\n\r|\\*`[<").find(text[end]) == std::string_view::npos) {
          ++end;
        }
        out += visible(text.substr(i, end - i));
        i = end - 1;
      }
    }
  }
  return out;
}

// Text in Markdown prose or a heading: the same escapes, one line.
std::string md_text(std::string_view text) { return md_cell(visible(text)); }

// An inline code span that shows `text` verbatim, whatever backticks it holds.
std::string md_code(std::string_view text) {
  const std::string v = visible(text);
  std::size_t longest = 0;
  std::size_t run = 0;
  for (const char c : v) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string ticks(longest + 1, '`');
  const bool pad = v.empty() || v.front() == '`' || v.back() == '`';
  return ticks + (pad ? " " : "") + v + (pad ? " " : "") + ticks;
}

// A fence longer than any backtick run in `lines`, so no observed line can close the block.
std::string fence_for(const std::vector<std::string>& lines) {
  std::size_t longest = 0;
  for (const std::string& line : lines) {
    std::size_t run = 0;
    for (const char c : line) {
      run = c == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
  }
  return std::string(std::max<std::size_t>(3, longest + 1), '`');
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

// Cuts to at most `bytes` (ending in "..."), never inside a UTF-8 sequence.
std::string cut(std::string text, std::size_t bytes) {
  if (text.size() <= bytes) return text;
  std::size_t end = bytes - 3;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  text.resize(end);
  return text + "...";
}

// ---------------------------------------------------------------------------------------------
// Facts derived from the timeline

std::string field(const TimelineEvent& e, const char* name) {
  const auto it = e.fields.find(name);
  return it == e.fields.end() ? std::string() : it->second;
}

std::string who(const std::string& check, const std::string& key) {
  return key.empty() ? check : check + " " + key;
}

bool is_http_failure(std::string_view failure) {
  for (const FailureKind k :
       {FailureKind::refused, FailureKind::timeout, FailureKind::reset, FailureKind::dns,
        FailureKind::tls, FailureKind::protocol, FailureKind::http_5xx, FailureKind::http_4xx,
        FailureKind::http_status, FailureKind::body}) {
    if (to_string(k) == failure) return true;
  }
  return false;
}

bool is_unit_failure(std::string_view failure) {
  for (const FailureKind k :
       {FailureKind::unit_failed, FailureKind::unit_inactive, FailureKind::restart_loop,
        FailureKind::start_limit, FailureKind::not_found}) {
    if (to_string(k) == failure) return true;
  }
  return false;
}

// One member as its whole history in the incident tells it (IncidentMember holds only the last
// state: after recovery, its summary is the healthy one).
struct MemberFacts {
  std::string check;
  std::string key;
  bool http = false;  // an HTTP check: what users see, so listed first
  std::string kind;   // "HTTP", "unit", "journal" or ""
  std::optional<Severity> worst;
  std::string failure;     // of the first failing finding
  std::string first_text;  // what it said when it first failed
  std::string first_line;  // its first evidence line (a journal check: the matched line)
  std::optional<TimePoint> since;
  std::optional<TimePoint> recovered;  // the last recovery, if it is not failing now
  bool failing_now = false;
  bool flapped = false;
};

std::vector<MemberFacts> member_facts(const Incident& inc) {
  std::vector<MemberFacts> out;
  const auto find = [&out](const std::string& check, const std::string& key) -> MemberFacts& {
    for (MemberFacts& m : out) {
      if (m.check == check && m.key == key) return m;
    }
    MemberFacts& m = out.emplace_back();
    m.check = check;
    m.key = key;
    return m;
  };
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type == Type::finding) {
      MemberFacts& m = find(e.check, e.key);
      if (e.fields.count("http_status") > 0 || e.fields.count("latency_ms") > 0) m.http = true;
      if (e.finding == "recovered") {
        m.recovered = e.at;
        continue;
      }
      m.recovered.reset();
      if (e.severity) m.worst = m.worst ? worse(*m.worst, *e.severity) : *e.severity;
      if (m.first_text.empty()) {
        m.first_text = e.text;
        m.failure = e.failure;
        m.since = e.since.value_or(e.at);
      }
    } else if (e.type == Type::evidence) {
      // Evidence names a check but does not make it a member (a unit's status, gathered for an
      // HTTP check, is not a failure of its own).
      for (MemberFacts& m : out) {
        if (m.check == e.check && m.key == e.key && m.first_line.empty() && !e.evidence.empty()) {
          m.first_line = e.evidence.front();
        }
      }
    } else if (e.type == Type::flapping) {
      MemberFacts& m = find(e.check, e.key);
      m.flapped = true;
      if (field(e, "flapping") == "yes") {
        if (e.severity) m.worst = m.worst ? worse(*m.worst, *e.severity) : *e.severity;
        if (!m.since) m.since = e.since.value_or(e.at);
      }
    }
  }
  for (MemberFacts& m : out) {
    if (is_http_failure(m.failure)) m.http = true;
    m.kind = m.http                                               ? "HTTP"
             : is_unit_failure(m.failure)                         ? "unit"
             : m.failure == to_string(FailureKind::journal_match) ? "journal"
                                                                  : "";
    const auto it = inc.members.find({m.check, m.key});
    if (it != inc.members.end()) m.failing_now = it->second.firing || it->second.flapping;
    if (m.failing_now) m.recovered.reset();
  }
  // HTTP checks first (closest to what users see), then in the order they failed.
  std::stable_sort(out.begin(), out.end(),
                   [](const MemberFacts& a, const MemberFacts& b) { return a.http && !b.http; });
  return out;
}

std::vector<const TimelineEvent*> events_of(const Incident& inc, Type type) {
  std::vector<const TimelineEvent*> out;
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type == type) out.push_back(&e);
  }
  return out;
}

const TimelineEvent* first_of(const Incident& inc, Type type) {
  const auto it = std::find_if(inc.timeline.begin(), inc.timeline.end(),
                               [type](const TimelineEvent& e) { return e.type == type; });
  return it == inc.timeline.end() ? nullptr : &*it;
}

// The check that opened the incident: its first failure is how vigil detected it.
std::string first_check(const Incident& inc) {
  const TimelineEvent* opened = first_of(inc, Type::opened);
  if (opened != nullptr && !opened->check.empty()) return who(opened->check, opened->key);
  const TimelineEvent* finding = first_of(inc, Type::finding);
  return finding != nullptr ? who(finding->check, finding->key) : std::string();
}

// When the first mitigation started: the state move to mitigating, else the first mitigation
// event (before issue 6, mitigations may be recorded without the state move).
std::optional<TimePoint> first_mitigation(const Incident& inc) {
  if (inc.mitigated) return inc.mitigated;
  if (const TimelineEvent* m = first_of(inc, Type::mitigation)) return m->at;
  return std::nullopt;
}

TimePoint last_event_at(const Incident& inc) {
  return inc.timeline.empty() ? inc.detected : inc.timeline.back().at;
}

// "restart app.service: succeeded"
std::string mitigation_words(const TimelineEvent& e) {
  std::string out = field(e, "action");
  const std::string target = field(e, "target");
  if (!target.empty()) out += (out.empty() ? "" : " ") + target;
  const std::string outcome = field(e, "outcome");
  if (!outcome.empty()) out += (out.empty() ? "" : ": ") + outcome;
  return out;
}

// The short name of an event, for the timeline's "event" column.
std::string event_label(const TimelineEvent& e) {
  switch (e.type) {
    case Type::finding:
      return who(e.check, e.key) + " " + e.finding;
    case Type::evidence:
      return "evidence";
    case Type::state:
      return e.state ? std::string(to_string(*e.state)) : "state";
    case Type::flapping:
      return who(e.check, e.key) +
             (field(e, "flapping") == "yes" ? " flapping" : " stopped flapping");
    case Type::mitigation: {
      const std::string action = field(e, "action");
      return action.empty() ? "mitigation" : "mitigation: " + action;
    }
    case Type::ack:
      return "acknowledged";
    case Type::opened:
    case Type::severity:
    case Type::maintenance:
    case Type::page:
    case Type::note:
      break;
  }
  return std::string(to_string(e.type));
}

enum class Lines { all, first };

// What happened, in words: the event's text plus the facts its type carries. Lines::all keeps
// evidence lines as separate lines; Lines::first gives one line for a one-event-per-line view.
std::string event_detail(const TimelineEvent& e, Lines lines) {
  std::string out;
  switch (e.type) {
    case Type::opened:
      out = e.text;
      if (e.since && *e.since != e.at) out += " (first failing observation " + utc(*e.since) + ")";
      if (field(e, "maintenance") == "yes") out += "; in a maintenance window";
      return out;
    case Type::finding:
      if (e.finding == "recovered") {
        if (e.since) out = "after " + human(between(*e.since, e.at)) + ": ";
        return out + e.text;
      }
      if (e.severity) out = std::string(to_string(*e.severity)) + " ";
      if (!e.failure.empty()) out += e.failure + ": ";
      return out + e.text;
    case Type::evidence:
      out = e.text;
      if (lines == Lines::first) {
        if (!e.evidence.empty()) out += ": " + e.evidence.front();
        if (e.evidence.size() > 1) {
          const std::size_t more = e.evidence.size() - 1;
          out += " (+" + std::to_string(more) + " more line" + (more > 1 ? "s" : "") + ")";
        }
        return out;
      }
      for (const std::string& line : e.evidence) out += "\n" + line;
      return out;
    case Type::mitigation: {
      const std::string words = mitigation_words(e);
      if (words.empty()) return e.text;
      return e.text.empty() ? words : words + " (" + e.text + ")";
    }
    case Type::page: {
      const std::string notifier = field(e, "notifier");
      return notifier.empty() ? e.text : notifier + ": " + e.text;
    }
    case Type::severity:
    case Type::state:
    case Type::flapping:
    case Type::maintenance:
    case Type::ack:
    case Type::note:
      break;
  }
  return e.text;
}

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

std::string format_incident_line(const Incident& inc, TimePoint now) {
  // Open: how long users have been affected so far; resolved: how long it lasted, and its worst.
  const Severity sev = inc.open() ? inc.severity : inc.peak;
  const std::string age = inc.resolved ? "lasted " + coarse(*inc.time_to_resolve())
                                       : "open " + coarse(between(inc.started, now));
  std::string title = visible(inc.title);
  if (inc.flapping()) title = "[flapping] " + title;
  if (inc.maintenance) title = "[maintenance] " + title;
  return pad(inc.id, kLineIdWidth) + "  " + std::string(to_string(sev)) + "  " + pad(age, 13) +
         "  " + pad(std::string(to_string(inc.state)), 10) + "  " + cut(title, kLineTitleBytes);
}

}  // namespace vigil
