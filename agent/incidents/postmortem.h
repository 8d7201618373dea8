// How an incident reads to a human: the blameless postmortem draft (`vigil postmortem ID`), the
// terminal view (`vigil incident show ID`) and the listing (`vigil incidents`).
//
// Pure functions of the incident (the listing: of the incidents' summaries and an explicit `now`):
// everything comes from the incident's fields and its timeline, so a reloaded incident renders
// exactly like the live one. Times are printed in UTC with milliseconds ("2026-11-27 01:42:07.123
// UTC"): detection is measured in milliseconds, and a postmortem is read by people in several time
// zones.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "agent/incidents/incident.h"

namespace vigil {

// A Markdown draft of a blameless postmortem: title, summary, impact, detection (with the
// evidence at detection in a fenced block), the timeline as a table (one row per event), the
// mitigations, the metrics (MTTD, time to mitigate, MTTR), and empty root cause, action items and
// lessons learned for the responders. It describes systems and events, never people. A draft of
// an open incident says at the top that the incident is ongoing. Text taken from observations
// (journal lines, HTTP bodies) is escaped so it can never break the Markdown structure.
std::string render_postmortem(const Incident& inc);

// The incident for a terminal, several lines ending in '\n': a header (id, title, severity now
// and peak, state, service, team, host, started / detected / resolved with MTTD and MTTR), the
// members (check, key, firing / recovered / flapping, severity, failure, summary), the evidence
// lines, then the timeline, one event per line. Control characters in observed text (ANSI escapes
// in journal lines) are shown as \xNN, never sent to the terminal.
std::string format_incident(const Incident& inc);

// `vigil incidents`: a header line, then one line per incident summary (incident_summary_json,
// as the agent and its index give them) in columns: id, severity now, peak, state, detected,
// "open AGE" (since detection, at `now`) or how long it lasted, and the title, prefixed
// "[maintenance]" and "[flapping]" when the summary says so. Every text is made visible for the
// terminal (titles carry journal and network text); a field that is missing or of the wrong
// type shows as empty or "?".
std::string format_incidents_table(const nlohmann::json& summaries, TimePoint now);
// The title of an incident summary as the listings show it: visible, with those prefixes.
std::string marked_title(const nlohmann::json& summary);

}  // namespace vigil
