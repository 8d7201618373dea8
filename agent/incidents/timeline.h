// The durable store of incident timelines: one file per incident, DIR/ID.jsonl, one JSON object
// per line, one line per TimelineEvent, appended (and fdatasync'ed) as each event happens. A
// restart replays each file through Incident::apply, so a reloaded incident is exactly the one
// that was running (see agent/incidents/incident.h).
//
// Crash safety: an event is one write() of its line and '\n'. A crash can leave at most the last
// line torn (no newline); load() skips it, and the next append() starts a fresh line after it so
// no later event is glued to the fragment.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/observation.h"
#include "agent/core/result.h"
#include "agent/core/time.h"
#include "agent/incidents/incident.h"

namespace vigil {

// One event as one JSON object, no trailing newline. Fields: at, type, check, key, text,
// severity ("SEV1"), previous, state ("triaged"), since, finding, failure, evidence (array of
// strings), fields (object of strings); empty or absent ones are left out. Invalid UTF-8 (journal
// lines are hostile input) is replaced with U+FFFD, never thrown on; control characters are
// escaped, so the result is always exactly one line.
std::string to_json_line(const TimelineEvent& e);

// Reads a line written by to_json_line. Errors say what is wrong: bad JSON (with its column), not
// an object, a missing "at" or "type", an unknown type, severity or state, a bad time, a field of
// the wrong JSON type. Unknown keys are ignored (a newer vigil may add some).
Result<TimelineEvent> from_json_line(std::string_view line);

// Ids are file names: [A-Za-z0-9][A-Za-z0-9._-]{0,127}. Anything else ("", "../x", "a/b",
// ".hidden", longer than 128) is refused, so an id can never leave the store's directory.
bool valid_incident_id(std::string_view id);

// One incident as `vigil status` and `vigil incidents` show it (id, title, severity now and at
// peak, state, service, team, host, times, time to detect): the same from the agent and from
// the files when the agent is stopped.
nlohmann::json incident_summary_json(const Incident& inc);

class IncidentStore {
 public:
  // `dir`, e.g. "/var/lib/vigil/incidents", is created (0750) by the first append().
  explicit IncidentStore(std::string dir);

  // Appends one event to DIR/ID.jsonl durably: one write() of the line and '\n', then
  // fdatasync; creating the file (0640) also fsyncs the directory. A new file must start with an
  // "opened" event (load() would refuse it otherwise). On a failed or short write the partial
  // line is truncated away, so the file stays a sequence of whole lines.
  Result<bool> append(const std::string& id, const TimelineEvent& e);
  // The same for several events of one incident: one write and one fdatasync for all of them
  // (an incident opening is about six events; syncing each would stall the loop six times).
  Result<bool> append(const std::string& id, const std::vector<TimelineEvent>& events);

  struct Loaded {
    Incident incident;
    int skipped = 0;                    // lines that could not be read (torn or garbage)
    std::vector<std::string> warnings;  // "DIR/ID.jsonl:LINE: why", one per skipped line
  };
  // Replays DIR/ID.jsonl through Incident::apply (incident.id = id). A torn last line (no
  // newline and not a whole event) and unparsable lines anywhere are skipped, counted and
  // reported, never fatal. Errors: invalid id, unreadable file, no event, or a first event that
  // is not "opened".
  Result<Loaded> load(const std::string& id) const;

  // Whether DIR/ID.jsonl exists (false for an invalid id).
  bool exists(const std::string& id) const;
  // The ids of all DIR/*.jsonl files with a valid id, sorted; empty if DIR does not exist.
  std::vector<std::string> list() const;
  const std::string& dir() const { return dir_; }

  // What identifies one version of DIR/ID.jsonl (its size and mtime), for caching what was read
  // from it; nullopt if it cannot be stat'ed.
  std::optional<std::pair<std::uintmax_t, std::int64_t>> stamp(const std::string& id) const;

  // Retention (issue 13): deletes the timelines of incidents not in `keep` (the open ones) whose
  // file was last written before `older_than`, then the least recently written beyond
  // `at_most` files. Returns the ids deleted, oldest first.
  std::vector<std::string> prune(TimePoint older_than, std::size_t at_most,
                                 const std::set<std::string>& keep) const;

 private:
  std::string path_of(const std::string& id) const;

  std::string dir_;
};

}  // namespace vigil
