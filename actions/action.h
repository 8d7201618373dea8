// A mitigation kind as the daemon runs it, behind one interface like probes/probe.h: how it
// runs, what a dry run would do, and what it locks. One object per kind, made by make_actions()
// (actions/register.h). Whether to run at all is the ladder's decision (agent/mitigate/), never
// the action's.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "actions/block.h"
#include "actions/rollback.h"
#include "agent/config/config.h"
#include "agent/core/observation.h"
#include "agent/sys/process.h"
#include "agent/sys/units.h"

namespace vigil {

// refused: nothing was touched (systemd is already restarting the unit, or gave up on it), so
// no budget is spent and the ladder goes on.
enum class ActionResult { ok, failed, refused };

// What actions may use: the loop's adapters and the state the daemon keeps for them.
struct ActionContext {
  sys::UnitWatcher& units;
  sys::CommandRunner& commands;
  // The block list the daemon reconciles with ufw (blocks_reconciled() once they agree) and
  // persists (save_blocks()).
  BlockList& blocks;
  std::function<bool()> blocks_reconciled;
  std::function<void()> save_blocks;
  // Known-good releases, by rollback action name.
  std::map<std::string, ReleaseHistory>& releases;
  // vigil is stopping: a result that arrives now is dropped, and `done` is not called.
  std::function<bool()> stopping;
  // A note in the incident's timeline while the action runs (the rollback's switch, before its
  // restart), with its fields.
  std::function<void(const std::string& incident, const std::string& text,
                     std::map<std::string, std::string> fields)>
      note;
};

class Action {
 public:
  using Done = std::function<void(ActionResult, std::string text)>;
  virtual ~Action() = default;

  // What the action holds while it runs, so one incident's action never runs against another's
  // on the same thing: "unit U", "app A" or "address IP".
  virtual std::string lock_key(const ActionConfig& a, const std::string& target) const = 0;
  // What a dry run records after "dry-run: " ("would restart app.service").
  virtual std::string would(const ActionConfig& a, const std::string& target,
                            TimePoint now) const = 0;
  // Runs it on `target` for `incident`. `done` runs exactly once on the loop thread, unless vigil
  // stops first. Never blocks.
  virtual void run(const std::string& incident, const ActionConfig& a, const std::string& target,
                   Done done) = 0;
};

}  // namespace vigil
