// The mitigation ladder and its guards: which action to run next for an incident, or why not.
//
// Pure: no I/O, no clock (times come with each call). The daemon executes what decide() says,
// writes every decision to the incident's timeline, and keeps the ledger on disk, so budgets,
// cooldowns and open circuits survive vigil's own restarts (a crash-looping vigil must not
// become a restart storm of the service it watches).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/result.h"
#include "agent/incidents/incident.h"

namespace vigil {

// What vigil did, per (action ref, target), and which targets it gave up on.
class MitigationLedger {
 public:
  struct Circuit {
    std::string reason;
    TimePoint opened{};
  };

  void ran(const std::string& ref, const std::string& target, TimePoint at);
  // Takes back the run recorded at `at` (the action refused before touching anything: e.g.
  // systemd was already restarting the unit), so a refusal spends no budget.
  void unrun(const std::string& ref, const std::string& target, TimePoint at);
  // Runs of `ref` on `target` within (now - per, now].
  int runs_within(const std::string& ref, const std::string& target, Duration per,
                  TimePoint now) const;
  std::optional<TimePoint> last_run(const std::string& ref, const std::string& target) const;
  // Runs of any block action within (now - per, now], whatever the address.
  int blocks_within(Duration per, TimePoint now) const;

  // A circuit is keyed by what is being protected: the incident's dedupe key.
  void open_circuit(const std::string& key, const std::string& reason, TimePoint at);
  bool close_circuit(const std::string& key);
  const Circuit* circuit(const std::string& key) const;
  const std::map<std::string, Circuit>& circuits() const { return circuits_; }

  // Forgets runs older than `keep` (the longest budget window): the file stays small.
  void prune(Duration keep, TimePoint now);

  std::string to_json() const;
  static Result<MitigationLedger> from_json(std::string_view text);

 private:
  std::map<std::pair<std::string, std::string>, std::vector<TimePoint>> runs_;
  std::map<std::string, Circuit> circuits_;
};

// Where an incident stands on its ladder, rebuilt from its timeline (the mitigation events), so
// a restart of vigil neither repeats a rung nor forgets that the ladder was exhausted.
struct LadderState {
  enum class Phase {
    idle,       // nothing running: the next decision may act
    acting,     // an action was started and has not reported
    verifying,  // an action reported success; the checks have until `deadline` to pass
    done,       // escalated, dry-run recorded, or nothing left to try: no more actions
  };
  Phase phase = Phase::idle;
  int rung = 0;  // index of the next step to try (idle) or of the one running
  int ran = 0;   // actions started on this incident (skipped rungs and dry runs do not count)
  // Steps ("KIND:NAME") this incident has finished with (failed or skipped). The next step is
  // the first of the ladder not in here: by name, not position, so a reload that reorders the
  // ladder (or a member with another ladder taking over) never re-runs a step that failed.
  std::set<std::string> tried;
  std::string ref;
  std::string target;
  TimePoint deadline{};
};
LadderState ladder_state(const Incident& inc);

// The member whose ladder drives an incident: the first failing member whose check has one.
struct LadderOwner {
  const CheckConfig* check = nullptr;
  std::string key;
};
LadderOwner ladder_owner(const Incident& inc, const Config& config);

struct Guards {
  bool maintenance = false;
  DryRun dry_run = DryRun::no;  // [agent] dry_run / --dry-run
  // Why an address must never be blocked ("allow-listed (10.0.0.0/8)"), or nullopt.
  std::function<std::optional<std::string>(const IpAddress&)> protected_reason;
  // How long DIR/current has pointed where it does (its mtime: when it was switched), or
  // nullopt if unknown. A rollback is only for a recent deploy (ActionConfig::deployed_within).
  std::function<std::optional<Duration>(const std::string& dir)> release_age;
};

struct Decision {
  enum class Kind {
    nothing,   // no ladder, or an action is running or being verified, or the ladder is done
    act,       // run `action` on `target` (dry_run: record "would do" only)
    wait,      // not now (cooldown, flapping, maintenance, rate limit): ask again at retry_at
    skip,      // this rung cannot apply (reason); go on with the next one
    escalate,  // a human is needed (reason); open the circuit when open_circuit
  };
  Kind kind = Kind::nothing;
  int rung = 0;
  const ActionConfig* action = nullptr;
  std::string ref;     // the step, "KIND:NAME" (also when no such action is configured)
  std::string target;  // restart: the unit; rollback: the app; block: the canonical address
  DryRun dry_run = DryRun::no;
  bool open_circuit = false;
  std::string reason;
  std::optional<TimePoint> retry_at;
  TimePoint started{};  // set by the daemon when it runs the action (its budget entry)
  // The daemon's copy of *action while the action runs asynchronously: a reload replaces the
  // config, and `action` must not point into the old one.
  std::shared_ptr<const ActionConfig> owned;
};

// The next step for `inc`, given where its ladder stands. Guards in order: maintenance,
// flapping, open circuit, ladder exhausted, target validity and protection, budget, global
// block rate, cooldown, dry-run.
Decision decide(const Incident& inc, const LadderState& ladder, const Config& config,
                const MitigationLedger& ledger, const Guards& guards, TimePoint now);

// The "outcome" values of mitigation events are in agent/incidents/incident.h (namespace outcome).

}  // namespace vigil
