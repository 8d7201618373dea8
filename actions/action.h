// A mitigation kind as the daemon runs it, behind one interface like probes/probe.h: how it
// runs, what a dry run would do, what it locks, and the state the kind keeps (the block list and
// its agreement with ufw, the release histories), which only the kind's own object touches. One
// object per kind, made by make_actions() (actions/register.h), held by the mitigator
// (agent/mitigator.h). Whether to run at all is the ladder's decision (agent/mitigate/), never
// the action's.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/config/config.h"
#include "agent/core/observation.h"
#include "agent/incidents/incident.h"
#include "agent/sys/process.h"
#include "agent/sys/units.h"

namespace vigil {

// refused: nothing was touched (systemd is already restarting the unit, or gave up on it), so
// no budget is spent and the ladder goes on.
enum class ActionResult { ok, failed, refused };

// What actions may use: the loop and its adapters, the running config, and what the daemon
// offers back.
struct ActionContext {
  boost::asio::io_context& io;
  sys::UnitWatcher& units;
  sys::CommandRunner& commands;
  // The running configuration (a reload replaces it in place): state_dir, the kind's actions.
  const Config& config;
  // vigil is stopping: a result that arrives now is dropped, and `done` is not called.
  std::function<bool()> stopping;
  // A note in the incident's timeline while the action runs (the rollback's switch, before its
  // restart), with its fields.
  std::function<void(const std::string& incident, const std::string& text,
                     std::map<std::string, std::string> fields)>
      note;
  // A note about an incident that may be resolved by now (a block's expiry): in its timeline
  // while it is open, else in its file only.
  std::function<void(const std::string& incident, const std::string& text)> note_later;
  // The state of a unit the daemon watches (an endpoint's owner_unit), when known.
  std::function<std::optional<sys::UnitState>(const std::string& unit)> unit_state;
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

  // The kind's own state. start(): read it back at vigil's start (and set it right with the
  // host); reloaded(): after a reload, for what the new config added.
  virtual void start() {}
  virtual void reloaded() {}
  // Why the kind may not act now, as the hold reason the timeline shows ("waiting until ..."):
  // while its state and the host disagree (the block list before it is reconciled with ufw).
  virtual std::optional<std::string> not_ready() const { return std::nullopt; }
  // Every second (expiry), and once a minute (forget what is past its memory).
  virtual void tick(TimePoint) {}
  virtual void prune(TimePoint) {}
  // `check` passed, and none of its incidents is open.
  virtual void check_passed(const CheckConfig&, TimePoint) {}
  // An event was recorded in incident `inc`'s timeline.
  virtual void recorded(const Incident&, const TimelineEvent&) {}
  // The kind's part of `vigil status` (the block list).
  virtual void status(nlohmann::json&) const {}
};

}  // namespace vigil
