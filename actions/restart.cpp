#include "actions/restart.h"

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace vigil {

namespace {

std::string restarts(std::uint32_t n) {
  return std::to_string(n) + (n == 1 ? " restart" : " restarts");
}

// "Restart=on-failure, 2 restarts so far", or "" for a unit without a Restart= policy (only
// services have one).
std::string policy(const sys::UnitState& s) {
  if (s.restart.empty()) return "";
  return "Restart=" + s.restart + ", " + restarts(s.n_restarts) + " so far";
}

// Whether the unit's Restart= policy restarts it after a failure with this Result, as systemd
// decides it (systemd.service(5), "Restart="). RestartPreventExitStatus= is not read: a unit that
// uses it also stopped being restarted on purpose.
bool restart_covers(const std::string& policy, const std::string& result) {
  if (policy == "always" || policy == "on-failure") return true;
  if (policy == "on-abnormal") return result != "success" && result != "exit-code";
  if (policy == "on-abort") return result == "signal" || result == "core-dump";
  if (policy == "on-watchdog") return result == "watchdog";
  return false;
}

// What systemd is doing to a unit in a transitional state, as a verb.
std::string doing(const std::string& active_state) {
  if (active_state == "activating") return "starting";
  if (active_state == "deactivating") return "stopping";
  return active_state;  // reloading
}

// "40ms", "1.2s", "1m35s": milliseconds matter for a quick restart, not for a slow one.
std::string seconds(Duration d) {
  if (d < Duration{1'000}) return format_duration(d);
  if (d >= Duration{60'000}) {
    return format_duration(std::chrono::duration_cast<std::chrono::seconds>(d));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

// What a job result other than "done" means, for a reader who does not know systemd's jobs.
std::string job_hint(const std::string& result) {
  if (result == "canceled") return " (replaced by a conflicting job)";
  if (result == "timeout") return " (the job timed out)";
  if (result == "dependency") return " (a unit it requires failed)";
  if (result == "skipped") return " (a condition was not met)";
  return "";
}

}  // namespace

RestartDecision decide_restart(const sys::UnitState& s, const RestartSettings& cfg) {
  const std::string& unit = cfg.unit.empty() ? s.unit : cfg.unit;
  RestartDecision no{false, false, ""};
  if (!s.known) {
    no.reason = "not restarting " + unit + ": " + sys::describe(s);
    return no;
  }
  if (s.load_state != "loaded") {
    if (s.load_state == "masked") {
      no.reason = "not restarting " + unit + ": it is masked (someone chose to stop it for good)";
    } else if (s.load_state == "not-found") {
      no.reason = "not restarting " + unit + ": no such unit";
    } else {
      no.reason = "not restarting " + unit + ": it is not loaded (" + s.load_state + ")";
    }
    return no;
  }
  // systemd is already acting on it: a RestartUnit now would cancel its own job (a start-pre
  // under way, the auto-restart timer) and reset what it counts. Escalate instead.
  if (s.sub_state == "auto-restart") {
    const std::string p = policy(s);
    no.reason = "not restarting " + unit + ": systemd is already restarting it" +
                (p.empty() ? "" : " (" + p + ")");
    return no;
  }
  if (s.active_state == "activating" || s.active_state == "deactivating" ||
      s.active_state == "reloading") {
    const std::string p = policy(s);
    no.reason = "not restarting " + unit + ": systemd is already " + doing(s.active_state) +
                " it, " + s.active_state + " (" + s.sub_state + ")" + (p.empty() ? "" : "; " + p);
    return no;
  }
  // A failed unit that its own Restart= would have restarted: systemd gave up on it. Result only
  // says "start-limit-hit" when the unit had not failed before; a crash loop that hits
  // StartLimitBurst= keeps "exit-code" (measured on systemd 252), so the policy tells.
  const bool limit_hit = s.result == "start-limit-hit";
  if (s.active_state == "failed" &&
      (limit_hit || (s.n_restarts > 0 && restart_covers(s.restart, s.result)))) {
    // NRestarts counts Restart='s own attempts only; manual starts count towards the limit too.
    const std::string after = s.n_restarts > 0
                                  ? " after " + restarts(s.n_restarts)
                                  : " (started too often within StartLimitIntervalSec=)";
    const std::string gave_up = limit_hit ? "start-limit-hit: systemd gave up on " + unit + after
                                          : "systemd gave up on " + unit + after +
                                                " (Restart=" + s.restart + ", Result: " + s.result +
                                                "; its start limit, most likely)";
    if (!cfg.reset_failed) {
      no.reason = "not restarting " + unit + ": " + gave_up +
                  "; a restart now would only hit the limit again (reset_failed clears it first)";
      return no;
    }
    return {true, true, gave_up + "; resetting its failed state, then restarting it"};
  }
  if (s.active_state == "failed") {
    return {true, cfg.reset_failed,
            unit + " is " + sys::describe(s) + "; restarting it" +
                (cfg.reset_failed ? " (resetting its failed state first)" : "")};
  }
  if (s.active_state == "active") {
    // A hung service stays "active": systemd only sees the process, the health check sees it
    // does not answer.
    return {true, false, unit + " is " + sys::describe(s) + " but unhealthy; restarting it"};
  }
  if (s.active_state == "inactive") {
    return {true, false, unit + " is " + sys::describe(s) + "; restarting starts it"};
  }
  no.reason = "not restarting " + unit + ": it is " + sys::describe(s) +
              ", a state vigil does not restart from";
  return no;
}

std::string describe_outcome(const sys::JobOutcome& o) {
  const std::string now = ", now " + sys::describe(o.after);
  if (!o.error.empty()) {
    // A job was queued but its end not seen (deadline, lost bus): it may still succeed.
    const std::string what = o.job.empty() ? " failed: " : " not confirmed: ";
    return "restart of " + o.unit + what + o.error + (o.after.known ? now : "");
  }
  if (o.ok()) return "restarted " + o.unit + ": done in " + seconds(o.took) + now;
  return "restart of " + o.unit + " failed: job result '" + o.result + "'" + job_hint(o.result) +
         " after " + seconds(o.took) + now;
}

}  // namespace vigil
