// Internal to the daemon's files (daemon*.cpp): Daemon::Runner, one check's probe, timer and
// classifier state, and the bounds on maintenance windows.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>
#include <string>

#include "agent/daemon.h"
#include "agent/detect/classifier.h"
#include "agent/detect/flap.h"
#include "agent/metrics.h"
#include "probes/probe.h"

namespace vigil {

// Why 32, 7 days and 512: windows are for humans at work, a few at once, each for a change, not a
// season; every one is read on each check result, and a reason is a sentence, not a document.
// The same bounds hold for windows read back from maintenance.json at start.
inline constexpr std::size_t kMaxMaintenanceWindows = 32;
inline constexpr long long kMaxMaintenanceMs = 7LL * 24 * 3600 * 1000;
inline constexpr std::size_t kMaxMaintenanceReason = 512;

struct Daemon::Runner {
  Runner(boost::asio::io_context& io, CheckConfig c) : check(std::move(c)), timer(io) {}
  CheckConfig check;
  std::shared_ptr<Probe> probe;
  boost::asio::steady_timer timer;
  // One classifier per key: a check watching several units, or counting per captured IP, has
  // one state per unit or IP. HTTP checks use the empty key.
  std::map<std::string, Classifier> classifiers;
  // Flap detection per key, for HTTP and unit checks (a journal rule counts matches; it does
  // not alternate between healthy and failing results).
  std::map<std::string, FlapDetector> flaps;
  std::uint64_t skipped = 0;  // ticks skipped because the previous run was still going
  std::uint64_t runs = 0;
  std::uint64_t runs_since_start = 0;  // results since this vigil process started
  std::uint64_t failures = 0;
  LatencyHistogram latency;
  std::string last_summary;
  TimePoint last_at{};
  // While a mitigation is verified, the check runs every second until this time (steady).
  boost::asio::steady_timer::time_point fast_until{};
};

}  // namespace vigil
