// What the mitigator (agent/mitigator.h) asks of the daemon's checks: whether they have all
// reported since start, and fast re-runs while a mitigation is verified.
#include <chrono>

#include "agent/daemon.h"
#include "agent/daemon_runner.h"

namespace vigil {

namespace asio = boost::asio;

namespace {

// How often an HTTP check is re-run while a mitigation is verified: recovery is seen in about
// recover_after seconds instead of recover_after intervals.
constexpr Duration kVerifyEvery{1'000};

}  // namespace

bool Daemon::fresh(const Incident& inc) const {
  for (const auto& [k, m] : inc.members) {
    const auto r = runners_.find(m.check);
    if (r != runners_.end() && r->second->runs_since_start == 0) return false;
  }
  return true;
}

// While a mitigation is verified, the incident's HTTP checks run every second (or at their
// own interval if shorter), so recovery is confirmed in seconds.
void Daemon::fast_verify(const std::string& incident, TimePoint until) {
  const Incident* inc = book_.find(incident);
  if (inc == nullptr) return;
  const auto steady_until =
      asio::steady_timer::clock_type::now() +
      std::chrono::duration_cast<asio::steady_timer::duration>(until - Clock::now());
  for (const auto& [k, m] : inc->members) {
    const auto r = runners_.find(m.check);
    if (r == runners_.end() || r->second->probe->event_driven()) continue;
    r->second->fast_until = steady_until;
    if (r->second->check.interval > kVerifyEvery) {
      r->second->timer.expires_after(std::chrono::milliseconds(kVerifyEvery.count()));
      wait_tick(r->second);
    }
  }
}

}  // namespace vigil
