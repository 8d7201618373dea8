// Daemon::Runner: one check's probe, timer and classifier state. Shared by daemon.cpp and
// daemon_actions.cpp.
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
