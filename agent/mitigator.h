// The mitigator: the executing half of the ladder. decide() (agent/mitigate/) says what to do for
// an open incident; the mitigator does it through the kind's Action (actions/), keeps the budgets
// (the ledger, saved before an action runs), the circuits, and one action per lock at a time,
// verifies (a deadline, then "did not help" and the next rung), and writes every step as an event
// through the scribe it is given. It never pages and never reads the clock itself: every entry
// point takes `now`, and an action's result is stamped with `Hooks::clock`, so unit tests drive
// it with a fake clock and fake actions (tests/unit/mitigator_test.cpp).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actions/action.h"
#include "actions/protect.h"
#include "agent/config/config.h"
#include "agent/fleet/budget.h"
#include "agent/incidents/incident.h"
#include "agent/mitigate/mitigation.h"

namespace vigil {

class Mitigator {
 public:
  // What the mitigator needs from the rest of the agent; the daemon wires these.
  struct Hooks {
    // The scribe: writes the changes to the timelines and logs them. Never calls back into
    // the mitigator.
    std::function<void(std::vector<IncidentBook::Change>)> record;
    // Appends to the timeline file of an incident that is no longer open (an action's outcome
    // that arrives after the checks recovered).
    std::function<void(const std::string& incident, const TimelineEvent&)> append_closed;
    // Every member check of the incident has reported since vigil started.
    std::function<bool(const Incident&)> fresh;
    std::function<bool(const std::string& check, TimePoint now)> in_maintenance;
    // Re-runs the incident's checks often until `until`, so a verified recovery is seen soon.
    std::function<void(const std::string& incident, TimePoint until)> fast_verify;
    // The never-block view of the host (addresses, SSH sessions, ufw allow rules).
    std::function<ProtectedAddresses()> read_protected;
    // When DIR/current was last switched, if it exists.
    std::function<std::optional<TimePoint>(const std::string& dir)> release_switched;
    // The time an action's result arrives.
    std::function<TimePoint()> clock;
    // The fleet's budget ([fleet], agent/fleet/): a slot for an action with a fleet cap, on
    // behalf of an incident, and giving it back. Unset when there is no [fleet].
    std::function<void(const ActionConfig&, const std::string& incident,
                       std::function<void(fleet::SlotAnswer)>)>
        fleet_acquire;
    std::function<void(const std::string& action_ref, const std::string& incident)> fleet_release;
  };

  // `config` is the daemon's: read at every decision, so a reload applies at once.
  Mitigator(IncidentBook& book, const Config& config,
            std::map<ActionKind, std::unique_ptr<Action>> actions, Hooks hooks);

  // Reads the ledger from STATE_DIR/mitigations.json (a bad file is kept as .bad, budgets start
  // from zero, loudly), and each action kind's own state (the block list, reconciled with ufw;
  // the release histories).
  void start();
  // After a reload: the kinds read the state of actions the new config added.
  void reloaded();
  // No new action starts after this.
  void stop() { stopping_ = true; }

  // Asks the ladder what to do for `incident` now and does it: one call starts an action,
  // waits, escalates, or finds nothing to do (rungs that cannot apply are skipped).
  void mitigate(const std::string& incident, TimePoint now);
  void mitigate_all(TimePoint now);
  // A mitigation whose checks still fail at its deadline did not help: recorded as failed (the
  // book raises the severity), and the ladder goes on with its next rung.
  void check_verifications(TimePoint now);
  // A circuit whose incident has been healthy for circuit_reset closes.
  void close_healthy_circuits(TimePoint now);
  // A human acknowledged: the circuit for `dedupe_key` closes. True if one was open.
  bool close_circuit(const std::string& dedupe_key);
  // Every second: the kinds' timed work (block expiry).
  void tick(TimePoint now);
  // Once a minute: forgets runs older than any budget window or cooldown, and what the kinds
  // keep past its memory.
  void prune(TimePoint now);
  // A healthy result of `check` (the releases its rollbacks point at become known good), and
  // what the scribe recorded (a verified rollback forgets the release it left).
  void check_passed(const CheckConfig& check, TimePoint at);
  void recorded(const std::vector<IncidentBook::Change>& changes);
  // The daemon replaced the fleet's budget (a reload changed [fleet]): slots held are lost with
  // the old lease, and answers it owed will not come.
  void fleet_replaced();
  // The kinds' parts of `vigil status` (the block list).
  void status(nlohmann::json& out) const;

  const MitigationLedger& ledger() const { return ledger_; }
  std::uint64_t runs() const { return runs_; }
  // The last never-block view and how many reads of it failed since start.
  const std::optional<ProtectedAddresses>& protection() const { return protected_; }
  std::uint64_t protection_failures() const { return protection_failures_; }
  // Mitigation events recorded since start (as recorded() sees them, plus outcomes appended to
  // closed incidents), by action ref ("restart:app"; empty for an escalation past the last
  // rung) and outcome (agent/incidents/incident.h): the metrics.
  const std::map<std::pair<std::string, std::string>, std::uint64_t>& outcomes() const {
    return outcomes_;
  }

 private:
  std::vector<IncidentBook::Change> event(const std::string& incident, const Decision& d,
                                          const char* outcome, const std::string& text,
                                          TimePoint at);
  // Counts a mitigation event in outcomes().
  void count(const TimelineEvent& e);
  // Records "on hold: WHY" once per reason (the ladder is asked every second).
  void hold(const std::string& incident, const Decision& d, const std::string& why, TimePoint at);
  void set_state(const std::string& incident, IncidentState s, const std::string& why,
                 TimePoint at);
  std::optional<std::string> protected_reason(const IpAddress& ip, TimePoint now);
  std::string lock_key(const Decision& d) const;  // what an action holds: a unit, app or address
  void run(const std::string& incident, Decision d, TimePoint now);
  void done(const std::string& incident, const Decision& d, ActionResult result,
            const std::string& text);
  // A capped action runs only with a slot of the fleet's budget: true when `incident` holds one
  // for `d` (or may act without: etcd unreachable and unreachable = "act"); otherwise asks for
  // one (at most every [fleet] retry) and records the hold.
  bool fleet_allows(const std::string& incident, const Decision& d, TimePoint now);
  void fleet_answered(const std::string& incident, const Decision& d, fleet::SlotAnswer answer);
  // Why 2 minutes: far above any answer's worst case (every endpoint's timeout, three tries).
  static constexpr Duration kFleetAnswerBound{120'000};
  // Gives back the slots of incidents whose action is over (failed, refused, verified, or the
  // incident closed).
  void release_finished_slots();
  void load_ledger();
  bool save_ledger() const;  // false (and logged) when it could not be written

  IncidentBook& book_;
  const Config& config_;
  std::map<ActionKind, std::unique_ptr<Action>> actions_;
  Hooks hooks_;
  bool stopping_ = false;

  MitigationLedger ledger_;
  std::map<std::string, std::string> last_wait_;    // incident -> last "waiting" reason logged
  std::map<std::string, TimePoint> healthy_since_;  // circuit key -> no open incident since
  std::set<std::string> acting_;                    // incidents with an action in flight
  std::map<std::string, std::string> acting_ref_;   // incident -> ref of its action in flight
  std::set<std::string> busy_;                      // lock_key()s of actions in flight
  std::uint64_t runs_ = 0;
  std::optional<ProtectedAddresses> protected_;  // the never-block view, read <= 1/s if whole
  TimePoint protected_at_{};
  std::uint64_t protection_failures_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> outcomes_;

  // The fleet's budget, per incident: the capped action it waits a slot for, and the slot it
  // holds (at most one of each: an incident runs one action at a time).
  struct FleetWait {
    std::string ref;
    bool asking = false;  // an answer from etcd is on its way
    TimePoint asked_at{};
    TimePoint next_ask{};
    std::string why;  // the hold reason until the next ask
  };
  std::map<std::string, FleetWait> fleet_wait_;
  std::map<std::string, std::string> fleet_held_;    // incident -> action ref of its slot
  std::map<std::string, std::string> fleet_bypass_;  // incident -> ref it may run without a slot
  std::map<std::string, std::string> fleet_note_;    // incident -> how it got its slot
  std::string fleet_granting_;  // the incident whose granted slot the ladder is acting on now
};

}  // namespace vigil
