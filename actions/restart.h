// The restart action's decision and report: whether restarting a unit now helps or fights
// systemd, and the timeline line for what the restart did. Pure functions of a unit's state; the
// restart itself is sys::UnitWatcher::restart_unit() (D-Bus RestartUnit, waiting for the job).
// Whether to run at all is the incident book's call (see shared/DESIGN.md).
//
// Rules (ANCHORS.md #4): never restart what the unit's own Restart= is already handling, never
// restart into a start limit systemd has already hit unless told to reset it, never touch a unit
// that is not loaded (not-found, masked: someone decided that).
#pragma once

#include <string>

#include "agent/core/duration.h"
#include "agent/sys/units.h"

namespace vigil {

struct RestartSettings {
  std::string unit;
  // Clear the unit's failed state (and so its start-limit counter) before restarting it, which
  // also lets a restart past start-limit-hit go ahead.
  bool reset_failed = false;
  // How long the restart job may take before vigil stops waiting (the job is not canceled).
  // Why 90s: systemd's default start timeout (DefaultTimeoutStartSec=); a service that needs
  // longer has its own TimeoutStartSec= and should raise this too. A restart is a stop then a
  // start, but a stop that hangs is as much news for the incident as a start that hangs.
  Duration deadline{90'000};
};

struct RestartDecision {
  bool go = false;
  bool reset_failed_first = false;  // call ResetFailedUnit before RestartUnit
  std::string reason;               // one line: why (not), for the timeline
};

// Decides from the unit's current state (read just before, e.g. UnitWatcher::unit_state()):
// - state unknown, or not loaded (not-found, masked, error, ...): no;
// - systemd is already acting on it (auto-restart, activating, deactivating, reloading): no —
//   do not fight Restart=, escalate instead;
// - systemd gave up on it: failed with start-limit-hit, or failed with a Result its own Restart=
//   covers after some restarts (a crash loop stopped by StartLimitBurst= keeps Result=exit-code):
//   no, unless cfg.reset_failed (then yes, resetting first);
// - failed otherwise: yes (resetting first if cfg.reset_failed);
// - active: yes (a hung but "active" service is what a health check catches);
// - inactive: yes (a restart starts it);
// - any other state: no (unknown to vigil, so not touched).
RestartDecision decide_restart(const sys::UnitState& s, const RestartSettings& cfg);

// One timeline line for a restart's outcome:
// "restarted app.service: done in 1.2s, now active (running)",
// "restart of app.service failed: job result 'failed' after 400ms, now failed (failed), Result:
// exit-code, status=1", "restart of app.service failed: RestartUnit app.service: Access denied",
// or, when the job was queued but its end not seen, "restart of app.service not confirmed: ...".
std::string describe_outcome(const sys::JobOutcome& o);

}  // namespace vigil
