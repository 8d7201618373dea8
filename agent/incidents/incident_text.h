// How the incident drafts and views write things, and what they say: UTC stamps, durations for
// people, Markdown escaping, and the facts derived from an incident's timeline (each member's
// whole history, the first mitigation, each event's label and detail). Internal to
// agent/incidents/: the vocabulary of postmortem.cpp's postmortem draft and terminal views.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/incidents/incident.h"

namespace vigil::incident_text {

using Type = TimelineEvent::Type;

// ---------------------------------------------------------------------------------------------
// Times and durations

// "2026-11-27 01:42:07.123" (UTC).
std::string utc(TimePoint t);

// "2026-11-27 01:42:07.123 UTC".
std::string utc_full(TimePoint t);

// "01:42:07" (UTC, no milliseconds): for prose, where the exact stamp is given elsewhere.
std::string utc_hms(TimePoint t);

// "A UTC → B UTC", with B's date left out when it is A's.
std::string span(TimePoint from, TimePoint to, std::string_view arrow);

// Durations for people: "850ms", "2.412s", "2m13s", "1h02m", "3d04h". Precise where precision
// means something (detection is measured in milliseconds), coarse where it does not.
// (format_duration writes the config syntax, "2m13s450ms": exact, but noisy in a report.)
std::string human(Duration d);

// Coarser, for the one-line listing: "850ms", "45s", "12m", "1h02m", "3d04h".
std::string coarse(Duration d);

// ---------------------------------------------------------------------------------------------
// Escaping

// Text inside a Markdown table cell: '|' would end the cell and a newline the row, '<' could
// start an HTML tag that swallows an error page; '\\', '*', '`' and '[' would turn observed text
// into formatting or links. Newlines become <br> so a multi-line detail stays in its row.
std::string md_cell(std::string_view text);

// Text in Markdown prose or a heading: the same escapes, one line.
std::string md_text(std::string_view text);

// An inline code span that shows `text` verbatim, whatever backticks it holds.
std::string md_code(std::string_view text);

// A fence longer than any backtick run in `lines`, so no observed line can close the block.
std::string fence_for(const std::vector<std::string>& lines);

// `text` padded with spaces to `width` bytes (a longer text is kept whole).
std::string pad(std::string text, std::size_t width);

// Cuts to at most `bytes` (ending in "..."), never inside a UTF-8 sequence.
std::string cut(std::string text, std::size_t bytes);

// ---------------------------------------------------------------------------------------------
// Facts derived from the timeline

// The event's field `name`, or "" when it has none.
std::string field(const TimelineEvent& e, const char* name);

// "app-http", or "ssh-bruteforce 203.0.113.7" for a check counting per key.
std::string who(const std::string& check, const std::string& key);

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

// The members, HTTP checks first (closest to what users see), then in the order they failed.
std::vector<MemberFacts> member_facts(const Incident& inc);

// The events of `type`, in timeline order; the first one, or nullptr.
std::vector<const TimelineEvent*> events_of(const Incident& inc, Type type);
const TimelineEvent* first_of(const Incident& inc, Type type);

// The check that opened the incident: its first failure is how vigil detected it.
std::string first_check(const Incident& inc);

// When the first mitigation started: the state move to mitigating, else the first mitigation
// event (before issue 6, mitigations may be recorded without the state move).
std::optional<TimePoint> first_mitigation(const Incident& inc);

// The time of the last event (the detection, for an empty timeline).
TimePoint last_event_at(const Incident& inc);

// "restart app.service: succeeded"
std::string mitigation_words(const TimelineEvent& e);

// The short name of an event, for the timeline's "event" column.
std::string event_label(const TimelineEvent& e);

enum class Lines { all, first };

// What happened, in words: the event's text plus the facts its type carries. Lines::all keeps
// evidence lines as separate lines; Lines::first gives one line for a one-event-per-line view.
std::string event_detail(const TimelineEvent& e, Lines lines);

}  // namespace vigil::incident_text
