// Prometheus metrics: a text-format (0.0.4) renderer over a plain snapshot of the agent's state,
// and a tiny HTTP server on a loopback port that serves it at /metrics.
#pragma once

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <array>
#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/ip.h"
#include "agent/core/listen_address.h"
#include "agent/core/observation.h"
#include "agent/core/result.h"

namespace vigil {

// Probe run latency with fixed buckets. Fixed, because a histogram's buckets are part of its
// identity: Prometheus can only aggregate histograms across the fleet (histogram_quantile over
// sum by (le)) when every host uses the same bounds. They span a fast loopback probe (5 ms) to
// the longest sensible probe timeout (10 s).
class LatencyHistogram {
 public:
  // Upper bounds (inclusive) of the finite buckets; the last bucket, +Inf, is implicit.
  static constexpr std::array<Duration, 11> kBounds{
      Duration(5),   Duration(10),   Duration(25),   Duration(50),   Duration(100),  Duration(250),
      Duration(500), Duration(1000), Duration(2500), Duration(5000), Duration(10000)};
  // The finite buckets plus +Inf.
  static constexpr std::size_t kBucketCount = kBounds.size() + 1;

  // Counts one run. A negative duration counts as zero.
  void observe(Duration d);
  // Runs that took at most kBounds[i] (for i == kBounds.size(): all runs), as Prometheus wants
  // them: cumulative, so the last entry always equals count().
  std::array<std::uint64_t, kBucketCount> cumulative() const;
  std::uint64_t count() const { return count_; }
  // Total time of all runs.
  Duration sum() const { return sum_; }

 private:
  std::array<std::uint64_t, kBucketCount> buckets_{};  // per bucket, not cumulative
  std::uint64_t count_ = 0;
  Duration sum_{0};
};

// What the metrics page shows, assembled by the daemon at scrape time. Plain values, so the
// renderer is a pure function that tests call without a running agent.
struct MetricsSnapshot {
  std::string version;            // vigil version string
  double start_time_seconds = 0;  // unix time the daemon started
  struct Check {
    std::string name;
    std::string probe;                          // "http", "unit", "journal"
    std::string state;                          // "ok", "firing", "flapping", "unknown"
    std::optional<Severity> severity;           // when firing
    const LatencyHistogram* latency = nullptr;  // probe run latency; null: not measured
    std::uint64_t runs = 0;
    std::uint64_t failures = 0;
  };
  std::vector<Check> checks;
  std::map<Severity, int> open_incidents;  // open incidents by severity
  std::uint64_t incidents_opened = 0;      // since start
  // (action, outcome) -> count
  std::map<std::pair<std::string, std::string>, std::uint64_t> mitigations;
  // (notifier, outcome) -> count
  std::map<std::pair<std::string, std::string>, std::uint64_t> pages;
  std::uint64_t protection_read_errors = 0;  // since start
  // [fleet] (agent/fleet/): set only when the host is a member of one.
  struct Fleet {
    std::string name;
    bool etcd_up = false;        // etcd answered the last request
    std::set<std::string> held;  // action refs whose slot this host holds now
    // (action ref, "granted" | "full" | "unavailable") -> count
    std::map<std::pair<std::string, std::string>, std::uint64_t> answers;
  };
  std::optional<Fleet> fleet;
};

// The check states vigil_check_state reports, one series each. A check whose state is not one
// of them is reported as "unknown".
inline constexpr std::array<std::string_view, 4> kCheckStates{"ok", "firing", "flapping",
                                                              "unknown"};

// The Content-Type of render_metrics' output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Renders the snapshot in the Prometheus text exposition format 0.0.4: every family with its
// # HELP and # TYPE lines (even when it has no samples), in a fixed order; checks in snapshot
// order, map entries in key order. Label values are escaped (\\, \", \n). Metric names:
//   vigil_build_info{version} 1, vigil_start_time_seconds,
//   vigil_check_up{check,probe}, vigil_check_state{check,probe,state},
//   vigil_check_severity{check,probe} (1-3, only while the check has a severity),
//   vigil_check_runs_total, vigil_check_failures_total,
//   vigil_probe_duration_seconds{check,probe} (histogram; checks without latency are left out),
//   vigil_incidents_open{severity} (SEV1..SEV3, always), vigil_incidents_opened_total,
//   vigil_mitigations_total{action,outcome}, vigil_pages_total{notifier,outcome},
//   vigil_protection_read_errors_total, and with [fleet]: vigil_fleet_etcd_up{fleet},
//   vigil_fleet_slot_held{fleet,action} (1 held, 0 asked for and not held now),
//   vigil_fleet_slot_requests_total{fleet,action,answer}.
std::string render_metrics(const MetricsSnapshot& s);

// Serves render() at /metrics over HTTP/1.0 and 1.1 on the loop, one request per connection.
// GET and HEAD /metrics (with any query) answer 200; other paths 404, other methods 405, a head
// over 8 KiB 431, an unparseable one 400. Slow or idle clients are cut off, and at most 16
// connections are open at a time; extra ones are closed at once.
class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // `render` runs on the loop thread once per request for /metrics (GET and HEAD). `io` must
  // outlive the server.
  MetricsServer(boost::asio::io_context& io, Render render);
  // Stops serving; `render` is never called after this.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds and starts accepting. `address` is parsed by parse_listen_address. Errors name the
  // address: not loopback, malformed, already listening, or the bind error from the kernel.
  Result<bool> listen(const std::string& address);
  // The bound port (the chosen one after port 0); 0 when not listening.
  std::uint16_t port() const;
  // Closes the acceptor and every connection, and cancels their timers, so io.run() can return.
  // listen() may be called again afterwards. Safe to call twice.
  void stop();
  // Connections open right now.
  std::size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil
