// The daemon: one io_context on one thread runs every check on its own absolute-time timer,
// feeds observations to the classifier, logs findings, and talks to systemd (ready, watchdog,
// reload, stop). SIGHUP reloads; an invalid new config is refused and the old one keeps running.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "agent/classifier.h"
#include "agent/config.h"
#include "agent/sys/http.h"
#include "agent/sys/units.h"
#include "probes/probe.h"

namespace vigil {

struct DaemonOptions {
  std::string config_path;
  // Set by `--dry-run`: forces dry-run whatever the file says, also across reloads.
  DryRun force_dry_run = DryRun::no;
};

class Daemon {
 public:
  Daemon(boost::asio::io_context& io, DaemonOptions options, Config config);
  ~Daemon();

  // Starts the checks, signal handling and the watchdog, and tells systemd we are ready.
  void start();
  // Stops everything: in-flight requests are cancelled, timers and signals released, so the
  // io_context runs out of work and io.run() returns.
  void stop();
  // Re-reads the config file. Returns false (and keeps the running config) if it is invalid.
  bool reload();

  const Config& config() const { return config_; }
  // Observer for tests and future consumers: called for every finding after it is logged.
  std::function<void(const Finding&)> on_finding;

 private:
  struct Runner;

  void apply(Config config);
  void schedule_first(const std::shared_ptr<Runner>& r);
  void schedule_next(const std::shared_ptr<Runner>& r);
  void wait_tick(const std::shared_ptr<Runner>& r);  // runs tick() when the timer expires
  void tick(const std::shared_ptr<Runner>& r);
  void observed(Runner& r, const Observation& obs);
  void arm_signals();
  void arm_watchdog();

  boost::asio::io_context& io_;
  DaemonOptions options_;
  Config config_;
  sys::HttpClient http_;
  sys::UnitWatcher units_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer watchdog_;
  std::optional<Duration> watchdog_every_;
  std::map<std::string, std::shared_ptr<Runner>> runners_;
  boost::asio::steady_timer::time_point grid_start_{};  // origin of the first-run grid
  bool stopping_ = false;
};

}  // namespace vigil
