// systemd unit state over sd-bus, on the Asio loop: one long-lived system-bus connection,
// event-driven (Manager.Subscribe + PropertiesChanged of each watched unit), a periodic resync so
// a missed signal costs at most one resync period, and reconnection with backoff when the bus
// goes away (dbus restarted). No `systemctl` subprocess.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/duration.h"

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
  // A later watch() connects again.
  void shutdown();
  // Loaded units whose names match any of the systemd glob `patterns` ("app@*.service"), via
  // Manager.ListUnitsByPatterns. `done` runs on the loop; with an empty list if the bus is down.
  void list(const std::vector<std::string>& patterns,
            std::function<void(std::vector<std::string>)> done);

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
