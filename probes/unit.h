// The unit probe: systemd unit state, event-driven over sd-bus (agent/sys/units.h). Reports a
// failed unit, one not in its expected state, a restart loop, start-limit-hit, a unit that does
// not exist, and recovery. One observation per unit (the unit is the observation's key).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "probes/probe.h"

namespace vigil {

// What the probe remembers of a unit to see loops: NRestarts increases over time.
struct UnitHistory {
  bool seen = false;
  std::uint32_t last_restarts = 0;
  std::deque<TimePoint> restarts;  // one entry per restart within the loop window
  FailureKind last = FailureKind::none;
};

struct UnitVerdict {
  FailureKind failure = FailureKind::none;
  std::string summary;
};

// Pure: judges a unit's state at `now`, updating its history (restart counting).
UnitVerdict judge_unit(const UnitSettings& settings, const sys::UnitState& state,
                       UnitHistory& history, TimePoint now);

class UnitProbe : public Probe, public std::enable_shared_from_this<UnitProbe> {
 public:
  UnitProbe(ProbeContext ctx, CheckConfig check);
  ~UnitProbe() override;

  bool event_driven() const override { return true; }
  void watch(Done on_observation) override;
  // One-shot (test-check): reports the worst unit once every unit has been read.
  void run(Done done) override;
  void cancel() override;
  bool running() const override {
    return static_cast<bool>(on_observation_) || static_cast<bool>(once_);
  }

 private:
  void subscribe();
  void changed(const sys::UnitState& s);
  enum class EmitWhen { always, verdict_changed };
  void emit(const std::string& unit, EmitWhen when);
  void arm_tick();
  void relist();
  void watch_unit(const std::string& unit);

  ProbeContext ctx_;
  CheckConfig check_;
  boost::asio::steady_timer tick_;
  boost::asio::steady_timer relist_;
  Done on_observation_;
  Done once_;
  std::map<std::string, sys::UnitWatcher::WatchId> watches_;  // unit -> watch
  std::vector<std::string> patterns_;                         // globs, expanded by relist()
  std::map<std::string, sys::UnitState> states_;
  std::map<std::string, UnitHistory> history_;
};

}  // namespace vigil
