// The incident book: findings in, incidents out. One incident per real problem (dedupe key), a
// severity that means something and says why it changed, and a timeline of everything.
//
// Event-sourced: everything an incident knows is the sum of its timeline events. The book
// decides which events happen; Incident::apply() is the one place that changes an incident;
// the store writes each event durably as it happens, and a restart replays the files through
// the same apply(), so a reloaded incident is exactly the one that was running.
//
// Pure: no I/O, no clock of its own (times come with each call), so it is tested without
// sleeping.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/observation.h"

namespace vigil {

// detected -> triaged -> mitigating -> verifying -> resolved, or escalated (a human is needed:
// a mitigation did not help, or the ladder is exhausted). An escalated incident still resolves
// when the service recovers.
enum class IncidentState { detected, triaged, mitigating, verifying, resolved, escalated };
std::string_view to_string(IncidentState s);
std::optional<IncidentState> parse_incident_state(std::string_view text);

// The field values mitigation events carry ("outcome"): what the timeline says happened.
namespace outcome {
inline constexpr const char* started = "started";    // action running
inline constexpr const char* ok = "ok";              // action done; verifying
inline constexpr const char* verified = "verified";  // the checks pass again
inline constexpr const char* failed = "failed";      // the action failed or did not help
inline constexpr const char* skipped = "skipped";    // this rung could not apply
inline constexpr const char* would = "dry_run";      // dry-run: what would have been done
inline constexpr const char* waiting = "waiting";    // held back by a guard, for now
inline constexpr const char* gave_up = "escalated";  // no more automatic actions
}  // namespace outcome

// One line of an incident's timeline (the scribe).
struct TimelineEvent {
  enum class Type {
    opened,       // fields: host, service, team, dedupe_key, title, maintenance ("yes"/"no")
    finding,      // a member (check, key) fired / changed / recovered; see `finding`
    evidence,     // lines gathered for triage: unit status, journal lines, matched line
    severity,     // the incident's severity changed: `severity`, `previous`, `text` = why
    state,        // lifecycle move: `state`, `text` = why
    flapping,     // a member started (fields: flapping=yes) or stopped (no) flapping
    maintenance,  // a maintenance window covering this incident started / ended
    mitigation,   // (issue 6) an action was decided, refused, run, or its outcome known
    page,         // (issue 7) a page was queued / delivered
    ack,          // a human acknowledged
    note,         // anything else worth keeping
  };
  TimePoint at{};
  Type type = Type::note;
  std::string check;  // the member concerned, if any
  std::string key;
  std::string text;                    // one human line
  std::optional<Severity> severity;    // finding: the member's; severity: the new one
  std::optional<Severity> previous;    // severity: the old one
  std::optional<IncidentState> state;  // state: the new one
  std::optional<TimePoint> since;      // opened: impact start; finding: the member's since
  std::string finding;                 // finding: firing | severity_changed | changed | recovered
  std::string failure;                 // finding: the FailureKind name ("http_5xx", ...)
  std::vector<std::string> evidence;   // evidence: the lines themselves
  // Extra facts, by name: opened (above); finding: since (RFC 3339), http_status, latency_ms,
  // error, body_head; mitigation: action, target, outcome; page: notifier, ...
  std::map<std::string, std::string> fields;
};
std::string_view to_string(TimelineEvent::Type t);
std::optional<TimelineEvent::Type> parse_event_type(std::string_view text);

// One (check, key) that contributed to an incident.
struct IncidentMember {
  std::string check;
  std::string key;
  bool firing = false;
  bool flapping = false;
  Severity severity = Severity::sev3;  // its last rated severity
  std::string failure;                 // its last FailureKind name
  std::string summary;                 // its last observation summary
  TimePoint since{};                   // when it started failing
};

struct Incident {
  std::string id;
  std::string dedupe_key;
  std::string host;
  std::string service;
  std::string team;
  std::string title;
  Severity severity = Severity::sev3;  // now
  Severity peak = Severity::sev3;      // the worst it has been
  IncidentState state = IncidentState::detected;
  bool maintenance = false;  // opened or held during a maintenance window: no pages, no actions
  TimePoint started{};       // the first failing observation (the impact starts here)
  TimePoint detected{};      // vigil declared the incident
  std::optional<TimePoint> triaged;
  std::optional<TimePoint> mitigated;  // the first mitigation started (issue 6)
  std::optional<TimePoint> resolved;
  int raised = 0;  // levels added by failed mitigations (mitigation events, outcome=failed)
  std::map<std::pair<std::string, std::string>, IncidentMember> members;
  std::vector<TimelineEvent> timeline;

  bool open() const { return state != IncidentState::resolved; }
  bool flapping() const;
  // Time to detect (detected - started) and to resolve (resolved - started).
  Duration time_to_detect() const;
  std::optional<Duration> time_to_resolve() const;
  std::optional<Duration> time_to_mitigate() const;

  // Changes the incident by one event and records it in the timeline. The only mutator.
  void apply(const TimelineEvent& e);
};

struct TriageSettings {
  std::string host;
  // An incident still open after this long is raised one level (SEV3 -> SEV2 -> SEV1): a
  // "minor" problem nobody fixed in an hour is no longer minor. Zero: never.
  Duration upgrade_after = std::chrono::hours(1);
};

// Whether a window of `vigil maintain` covers the check of a newly opened incident.
enum class InMaintenance { no, yes };
// Whether restore() keeps a resolved incident (one whose pages are still owed).
enum class KeepResolved { no, yes };

class IncidentBook {
 public:
  // An event the book appended, for the caller to persist, log and act on.
  struct Change {
    std::string incident;
    TimelineEvent event;
  };

  explicit IncidentBook(TriageSettings settings);

  // Tells whether an incident id is already used (e.g. a file exists for it). Ids are
  // "YYYYMMDD-HHMMSS-<slug>"; a taken id gets "-2", "-3", ... Default: only ids this book
  // issued or restored are taken.
  std::function<bool(const std::string& id)> id_taken;

  // The dedupe key of a (check, key): an abuse rule keyed by a capture (a journal check with
  // `key`, e.g. per IP) gives one incident per key; otherwise checks naming the same `service`
  // share one incident; otherwise one per check (and unit, for a check watching several).
  std::string dedupe_key(const CheckConfig& check, const std::string& key) const;

  // Feeds one finding of `check`. Opens an incident (detected, then triaged) on a firing with
  // no open incident for its dedupe key; otherwise updates the open one; resolves it when its
  // last member recovered (and none flaps). InMaintenance::yes marks a newly opened incident.
  std::vector<Change> on_finding(const CheckConfig& check, const Finding& f,
                                 InMaintenance maintenance = InMaintenance::no);
  // Appends evidence lines (unit status, journal lines) to the open incident of (check, key).
  std::vector<Change> add_evidence(const CheckConfig& check, const std::string& key,
                                   const std::string& text, std::vector<std::string> lines,
                                   TimePoint at);
  // A member started or stopped flapping. While any member flaps, the incident stays open
  // (one incident, one page); a flapping check with no open incident opens one.
  // `severity`: how bad the flapping check's failures are rated.
  std::vector<Change> on_flapping(const CheckConfig& check, const std::string& key,
                                  Flapping flapping, Severity severity, const std::string& why,
                                  TimePoint at, InMaintenance maintenance = InMaintenance::no);
  // A check that no longer exists (removed or renamed by a reload, or while vigil was down):
  // its members stop failing, with `why`, so its incidents can resolve instead of staying open
  // forever.
  std::vector<Change> retire(const std::string& check, const std::string& why, TimePoint at);
  // Resolves every open incident none of whose members fails or flaps (e.g. restored from a
  // timeline cut short by a crash right after it opened).
  std::vector<Change> resolve_idle(const std::string& why, TimePoint at);
  // Time-based decisions: an incident open longer than upgrade_after is raised once.
  std::vector<Change> tick(TimePoint now);
  // Appends any event to an open incident (mitigations, pages, acks, notes), and page events
  // also to a recently resolved one (its resolve page). Empty when the incident is unknown. A
  // mitigation event with fields outcome=failed raises the incident one level (kept while it is
  // open).
  std::vector<Change> record(const std::string& id, TimelineEvent e);

  // Takes back an incident replayed from its timeline file (open ones only are kept, unless
  // KeepResolved::yes: a resolved one whose pages are still owed joins recently_resolved()).
  void restore(Incident incident, KeepResolved keep_resolved = KeepResolved::no);

  const Incident* find(std::string_view id) const;
  const Incident* open_for(const std::string& dedupe_key) const;
  std::vector<const Incident*> open() const;
  // Incidents resolved since start (most recent last), bounded.
  const std::vector<Incident>& recently_resolved() const { return resolved_; }

 private:
  Incident* open_incident(const std::string& dedupe_key);
  // The open incident that (check, key) is a failing member of, whatever its dedupe key is now
  // (a reload may have changed the check's service), else the one of `dedupe_key`.
  Incident* incident_for(const CheckConfig& check, const std::string& key);
  std::string new_id(TimePoint at, const std::string& slug);
  // Recomputes the severity from the members and the age; appends a severity event if changed.
  void rescore(Incident& inc, TimePoint at, const std::string& why, std::vector<Change>& out);
  void emit(Incident& inc, TimelineEvent e, std::vector<Change>& out);
  void maybe_resolve(Incident& inc, TimePoint at, std::vector<Change>& out,
                     const std::string& why = "");
  Incident& open_new(const CheckConfig& check, const std::string& key, const std::string& title,
                     TimePoint started, TimePoint at, InMaintenance maintenance,
                     std::vector<Change>& out);

  TriageSettings settings_;
  std::map<std::string, Incident> open_;       // by id
  std::map<std::string, std::string> by_key_;  // dedupe key -> id of the open incident
  std::set<std::string> issued_;
  std::vector<Incident> resolved_;
};

}  // namespace vigil
