// The classifier: observations in, findings out. Pure: no I/O, no clock of its own (time comes
// with each observation), so it is tested without sleeping.
#pragma once

#include <optional>

#include "agent/config/config.h"
#include "agent/core/observation.h"

namespace vigil {

// The severity one observation deserves under the check's rules, or nullopt when it is healthy:
// a failure maps through `severity.<kind>`; a success slower than latency_crit / latency_warn maps
// through severity.latency_crit / latency_warn.
std::optional<Severity> rate(const CheckConfig& check, const Observation& obs);

// Per-check state with fail_after / recover_after hysteresis.
class Classifier {
 public:
  struct State {
    bool firing = false;
    Severity severity = Severity::sev3;
    TimePoint since{};                        // when firing started
    int bad_streak = 0;                       // consecutive rated observations while not firing
    TimePoint bad_since{};                    // the first observation of bad_streak
    Severity bad_worst = Severity::sev3;      // worst severity within bad_streak
    int good_streak = 0;                      // consecutive healthy observations while firing
    int lower_streak = 0;                     // consecutive observations below `severity`
    std::optional<Severity> lower_worst;      // worst rated severity within lower_streak
    FailureKind failure = FailureKind::none;  // the kind of failure last reported
  };

  // Feeds one observation. Returns a finding only when the state changes: the check starts
  // firing (after fail_after bad observations), its severity goes up (at once: declare
  // generously) or down (after recover_after observations below it), or it recovers (after
  // recover_after healthy observations), or what is wrong changes at the same severity.
  std::optional<Finding> observe(const CheckConfig& check, const Observation& obs);

  const State& state() const { return state_; }
  // Takes back the state of a check that was firing before vigil restarted (from its open
  // incident), so its recovery is still seen and reported.
  void restore(const State& s) { state_ = s; }

 private:
  State state_;
};

}  // namespace vigil
