// The words of the incident drafts and views: times, durations for people, Markdown escaping,
// and the facts gathered from an incident's timeline (see incident_text.h).
#include "agent/incidents/incident_text.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "agent/core/terminal.h"

namespace vigil::incident_text {
namespace {

bool same_utc_day(TimePoint a, TimePoint b) { return utc(a).substr(0, 10) == utc(b).substr(0, 10); }

// (Not `"0" + std::to_string(n)`: GCC 12 at -O3 reports a -Wrestrict false positive for it.)
std::string two_digits(long long n) {
  std::string s = std::to_string(n);
  if (n < 10) s.insert(0, 1, '0');
  return s;
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Times and durations

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

std::string utc_full(TimePoint t) { return utc(t) + " UTC"; }

std::string utc_hms(TimePoint t) { return utc(t).substr(11, 8); }

std::string span(TimePoint from, TimePoint to, std::string_view arrow) {
  const std::string end = same_utc_day(from, to) ? utc(to).substr(11) : utc(to);
  return utc_full(from) + " " + std::string(arrow) + " " + end + " UTC";
}

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

std::string coarse(Duration d) {
  const long long ms = std::max<long long>(0, d.count());
  if (ms < 1'000) return std::to_string(ms) + "ms";
  if (ms < 60'000) return std::to_string(ms / 1'000) + "s";
  if (ms < 3'600'000) return std::to_string(ms / 60'000) + "m";
  return human(Duration(ms));
}

// ---------------------------------------------------------------------------------------------
// Escaping

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

std::string md_text(std::string_view text) { return md_cell(visible(text)); }

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

std::string first_check(const Incident& inc) {
  const TimelineEvent* opened = first_of(inc, Type::opened);
  if (opened != nullptr && !opened->check.empty()) return who(opened->check, opened->key);
  const TimelineEvent* finding = first_of(inc, Type::finding);
  return finding != nullptr ? who(finding->check, finding->key) : std::string();
}

std::optional<TimePoint> first_mitigation(const Incident& inc) {
  if (inc.mitigated) return inc.mitigated;
  if (const TimelineEvent* m = first_of(inc, Type::mitigation)) return m->at;
  return std::nullopt;
}

TimePoint last_event_at(const Incident& inc) {
  return inc.timeline.empty() ? inc.detected : inc.timeline.back().at;
}

std::string mitigation_words(const TimelineEvent& e) {
  std::string out = field(e, "action");
  const std::string target = field(e, "target");
  if (!target.empty()) out += (out.empty() ? "" : " ") + target;
  const std::string outcome = field(e, "outcome");
  if (!outcome.empty()) out += (out.empty() ? "" : ": ") + outcome;
  return out;
}

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

}  // namespace vigil::incident_text
