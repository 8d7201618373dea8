// A probe watches one kind of thing and reports Observations. It never decides severity.
#pragma once

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>

#include "agent/config/config.h"
#include "agent/core/observation.h"
#include "agent/sys/http.h"
#include "agent/sys/units.h"

namespace vigil {

// What probes may use: the loop and the shared I/O adapters.
struct ProbeContext {
  boost::asio::io_context& io;
  sys::HttpClient& http;
  sys::UnitWatcher& units;
  std::string state_dir;
};

class Probe {
 public:
  using Done = std::function<void(Observation)>;
  virtual ~Probe() = default;
  // Runs the check once, including its confirmation re-probes. `done` runs exactly once on the
  // loop thread, unless cancel() is called first. Never blocks.
  virtual void run(Done done) = 0;
  // Cancels a run in flight; its `done` will not be called. Safe when nothing runs.
  virtual void cancel() = 0;
  virtual bool running() const = 0;

  // Event-driven probes (units, journal) report by themselves: the daemon calls watch() once
  // instead of ticking run(); the probe then calls `on_observation` on the loop whenever it has
  // something to say (at least every `interval`, so hysteresis keeps counting), until cancel().
  virtual bool event_driven() const { return false; }
  virtual void watch(Done on_observation) { (void)on_observation; }
  // After a restart: `key` was failing (its incident is still open). A probe that reports
  // health only as the end of a failure (the journal's window running out) must then report it
  // even if it saw nothing fail since the restart, or the incident would never close.
  virtual void assume_failing(const std::string& key) { (void)key; }
};

}  // namespace vigil
