// systemd unit state over sd-bus, on the Asio loop: one long-lived system-bus connection,
// event-driven (Manager.Subscribe + PropertiesChanged of each watched unit), a periodic resync so
// a missed signal costs at most one resync period, and reconnection with backoff when the bus
// goes away (dbus restarted). Also restarts units (Manager.RestartUnit, waiting for the job's
// JobRemoved) on the same connection. No `systemctl` subprocess.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/duration.h"

namespace vigil::sys {

struct UnitState {
  std::string unit;
  bool known = false;               // a GetAll answered at least once
  std::string load_state;           // loaded, not-found, masked, error, ...
  std::string active_state;         // active, inactive, failed, activating, deactivating, reloading
  std::string sub_state;            // running, dead, failed, auto-restart, ...
  std::string result;               // success, exit-code, signal, start-limit-hit, ... (services)
  std::uint32_t n_restarts = 0;     // restarts done by the unit's own Restart= (services)
  std::string restart;              // the Restart= policy: no, on-failure, always, ... (services)
  std::int32_t exec_main_code = 0;  // CLD_EXITED=1, CLD_KILLED=2, CLD_DUMPED=3
  std::int32_t exec_main_status = 0;    // exit status or signal number
  std::uint64_t state_change_usec = 0;  // realtime µs of the last ActiveState change
  std::string error;                    // why the state could not be read, if it could not
};

// What a restart_unit() did. Exactly one of `result` and `error` is set.
struct JobOutcome {
  std::string unit;
  std::string job;     // the job's object path, once RestartUnit answered
  std::string result;  // JobRemoved's: done, canceled, timeout, failed, dependency, skipped
  // Why there is no job result: the call failed ("RestartUnit app.service: Access denied"), the
  // deadline passed, the bus went away, or vigil is stopping.
  std::string error;
  Duration took{};  // from the call to the job's end (or to the error)
  // The unit's state read right after the job ended; known == false when it was not read (an
  // error above, or the read itself failed: see after.error).
  UnitState after;

  bool ok() const { return result == "done"; }
};

// Whether restart_unit() first clears the unit's failed state (and its start-limit counter) with
// Manager.ResetFailedUnit.
enum class ResetFailed { no, yes };

// A short command systemd runs for vigil as another user, in a transient service
// (Manager.StartTransientUnit): Type=oneshot, so its start job ends when the command exits
// ("done" for status 0, "failed" otherwise), CollectMode=inactive-or-failed so nothing is left
// behind either way. The command is sandboxed: no capabilities, NoNewPrivileges, no network,
// ProtectSystem=strict with only `read_write_paths` writable. Its output goes to the journal,
// under the unit's name. This is how vigil acts inside a directory it may not write itself, with
// no capability beyond the CAP_SYS_ADMIN it already holds to manage units.
struct TransientCommand {
  std::string unit;               // e.g. "vigil-switch-app-1764763200123456.service"
  std::string description;        // shown by `systemctl status`
  std::vector<std::string> argv;  // argv[0] is the absolute path of the program
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::vector<std::string> read_write_paths;
};

// Pairs RestartUnit replies (a job path) with Manager.JobRemoved signals, which may arrive in
// either order: the signal match is installed before the call, and a job that ends at once can
// be announced before the reply is read. Pure bookkeeping, no bus; ids are the caller's.
class JobTracker {
 public:
  using Id = std::uint64_t;
  // Why 256: removals are only kept while a reply is outstanding (milliseconds); 256 jobs ending
  // in that window would take a transaction far larger than anything a restart queues.
  static constexpr std::size_t kKeepRemoved = 256;

  // A RestartUnit call for `id` is about to be sent: from now on, keep the results of removed
  // jobs until its reply names its job.
  void expect_reply(Id id);
  // The reply named `job`. Returns the job's result if it was already removed (then `id` is no
  // longer tracked); otherwise `id` now waits for removed(job).
  std::optional<std::string> replied(Id id, const std::string& job);
  // JobRemoved for `job`: the ids that were waiting for it (no longer tracked).
  std::vector<Id> removed(const std::string& job, const std::string& result);
  // Stops tracking `id` (it finished otherwise: an error, a deadline).
  void forget(Id id);
  // Stops tracking everything (the bus went away).
  void clear();
  std::size_t kept() const { return recent_.size(); }

 private:
  void trim();

  std::set<Id> awaiting_reply_;
  std::multimap<std::string, Id> waiting_;  // job path -> ids
  std::deque<std::pair<std::string, std::string>>
      recent_;  // removed job path, result; oldest first
};

// One watcher per agent; probes register the units they care about.
class UnitWatcher {
 public:
  using Callback = std::function<void(const UnitState&)>;
  using WatchId = std::uint64_t;

  explicit UnitWatcher(boost::asio::io_context& io);
  ~UnitWatcher();
  UnitWatcher(const UnitWatcher&) = delete;
  UnitWatcher& operator=(const UnitWatcher&) = delete;

  // Watches `unit`; `changed` runs on the loop with the unit's full state after every change
  // systemd signals and after every resync. Connects to the bus on first use.
  WatchId watch(const std::string& unit, Callback changed);
  // Stops a watch; its callback is not called again.
  void unwatch(WatchId id);
  bool connected() const;
  // Drops every watch and the bus connection and cancels the timers, so io.run() can return.
  // Pending unit_state() and restart_unit() calls complete with "vigil is stopping".
  // A later watch() connects again.
  void shutdown();
  // Loaded units whose names match any of the systemd glob `patterns` ("app@*.service"), via
  // Manager.ListUnitsByPatterns. `done` runs on the loop; with an empty list if the bus is down.
  void list(const std::vector<std::string>& patterns,
            std::function<void(std::vector<std::string>)> done);

  // One read of `unit`'s current state (the same properties a watch delivers), without watching
  // it. `done` runs once, on the loop; if the state could not be read, with known == false and
  // `error` saying why (bus down, systemd not answering, vigil stopping).
  void unit_state(const std::string& unit, std::function<void(UnitState)> done);

  // Restarts `unit`: Manager.ResetFailedUnit first if `reset` says so, then
  // Manager.RestartUnit(unit, "replace"), then waits for the job's JobRemoved and reads the
  // unit's state. `done` runs exactly once, on the loop (never inside this call), with the job's
  // result, or with an error: a refused call, no result within `deadline` (counted from this
  // call; systemd is not asked to cancel the job, so the restart may still complete later), the
  // bus going away, or shutdown() / destruction ("vigil is stopping"). Connects on first use.
  void restart_unit(const std::string& unit, ResetFailed reset, Duration deadline,
                    std::function<void(JobOutcome)> done);

  // Runs `command` (see TransientCommand) and waits for its start job. `done` runs exactly once,
  // on the loop, as for restart_unit(): outcome.result is "done" when the command exited 0,
  // "failed" (or another job result) when not; outcome.error when it did not run or had no
  // result within `deadline` (systemd also stops the command at that deadline:
  // RuntimeMaxSec). outcome.after is not read (the unit is gone by then).
  void run_transient(const TransientCommand& command, Duration deadline,
                     std::function<void(JobOutcome)> done);

  // Why 30s: signals are reliable on a healthy bus; the resync only bounds the damage of a lost
  // one, and costs one GetAll per watched unit.
  static constexpr Duration kResyncEvery{30'000};

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// "active (running)", "failed (Result: exit-code, status=1)" — as `systemctl status` shows it.
std::string describe(const UnitState& s);

}  // namespace vigil::sys
