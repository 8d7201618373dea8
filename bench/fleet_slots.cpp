// fleet_slots: N simulated agents sharing one fleet budget in one etcd (bench/fleet_slots.sh).
// Each agent is a real fleet::Budget (its own lease, membership key and slot keys) on one Asio
// loop, as N vigil processes would be, through one HttpClient. Every agent asks for a slot of
// the same capped action, holds a granted slot for a while (a restart and its verification,
// scaled down), gives it back and asks again; a refused agent asks again after a pause. Prints
// the latency of each answer (ask to answer: two etcd round trips, more when hosts collide)
// and checks, from the answers, that no more than the cap ever held a slot at once.
//
// Usage: fleet_slots --etcd URL [--agents 100] [--cap 10] [--seconds 20] [--hold-ms 200]
//                    [--pause-ms 100]
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "agent/fleet/budget.h"

namespace {

using Clock = std::chrono::steady_clock;
using vigil::fleet::SlotAnswer;

struct Options {
  std::string etcd;
  int agents = 100;
  int cap = 10;
  int seconds = 20;
  int hold_ms = 200;
  int pause_ms = 100;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--etcd")
      o.etcd = v;
    else if (k == "--agents")
      o.agents = std::atoi(v);
    else if (k == "--cap")
      o.cap = std::atoi(v);
    else if (k == "--seconds")
      o.seconds = std::atoi(v);
    else if (k == "--hold-ms")
      o.hold_ms = std::atoi(v);
    else if (k == "--pause-ms")
      o.pause_ms = std::atoi(v);
  }
  if (o.etcd.empty() || o.agents < 1 || o.cap < 1) {
    std::fprintf(stderr, "usage: fleet_slots --etcd URL [--agents N] [--cap N] [--seconds S]\n");
    return 2;
  }
  boost::asio::io_context io(1);
  vigil::sys::HttpClient http(io);
  vigil::FleetSettings settings;
  settings.name = "bench";
  settings.etcd = {o.etcd};
  settings.lease_ttl = std::chrono::seconds(30);
  settings.timeout = std::chrono::seconds(5);
  vigil::ActionConfig action;
  action.kind = vigil::ActionKind::restart;
  action.name = "app";
  action.fleet_max = o.cap;

  std::vector<std::unique_ptr<vigil::fleet::Budget>> agents;
  for (int i = 0; i < o.agents; ++i) {
    agents.push_back(
        std::make_unique<vigil::fleet::Budget>(io, http, settings, "agent-" + std::to_string(i)));
    agents.back()->start();
  }
  std::vector<double> granted_ms, refused_ms;
  int unavailable = 0, holding = 0, most_holding = 0, over_cap = 0;
  bool running = true;
  std::mt19937 rng(42);
  std::function<void(int)> ask;
  auto later = [&](int agent, int ms, std::function<void()> what) {
    auto t = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(ms));
    t->async_wait([t, what = std::move(what)](const boost::system::error_code& ec) {
      if (!ec) what();
    });
    (void)agent;
  };
  ask = [&](int agent) {
    if (!running) return;
    const auto asked = Clock::now();
    agents[static_cast<std::size_t>(agent)]->acquire(
        action, "inc", [&, agent, asked](SlotAnswer a) {
          const double ms = std::chrono::duration<double, std::milli>(Clock::now() - asked).count();
          if (a.kind == SlotAnswer::Kind::granted) {
            granted_ms.push_back(ms);
            most_holding = std::max(most_holding, ++holding);
            if (holding > o.cap) ++over_cap;
            const int hold =
                o.hold_ms / 2 + static_cast<int>(rng() % static_cast<unsigned>(o.hold_ms + 1));
            later(agent, hold, [&, agent] {
              --holding;  // counted before the key goes: never undercounts who holds one
              agents[static_cast<std::size_t>(agent)]->release("restart:app", "inc");
              later(agent, o.pause_ms, [&, agent] { ask(agent); });
            });
          } else {
            if (a.kind == SlotAnswer::Kind::full) {
              refused_ms.push_back(ms);
            } else {
              ++unavailable;
            }
            later(agent, o.pause_ms, [&, agent] { ask(agent); });
          }
        });
  };
  // The leases first (as agents that have been running a while), then everybody asks at once.
  io.run_for(std::chrono::seconds(3));
  for (int i = 0; i < o.agents; ++i) ask(i);
  const auto start = Clock::now();
  io.run_for(std::chrono::seconds(o.seconds));
  running = false;
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all = granted_ms;
  all.insert(all.end(), refused_ms.begin(), refused_ms.end());
  std::printf("agents=%d cap=%d seconds=%.1f hold=%d..%d ms pause=%d ms\n", o.agents, o.cap, secs,
              o.hold_ms / 2, o.hold_ms * 3 / 2, o.pause_ms);
  std::printf(
      "| answers | granted | full | unavailable | p50 ms | p99 ms | max ms | most holding |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::printf("| %zu (%.0f/s) | %zu | %zu | %d | %.1f | %.1f | %.1f | %d of %d |\n", all.size(),
              static_cast<double>(all.size()) / secs, granted_ms.size(), refused_ms.size(),
              unavailable, percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1.0),
              most_holding, o.cap);
  std::printf("granted only: p50 %.1f ms, p99 %.1f ms; full only: p50 %.1f ms, p99 %.1f ms\n",
              percentile(granted_ms, 0.5), percentile(granted_ms, 0.99),
              percentile(refused_ms, 0.5), percentile(refused_ms, 0.99));
  if (over_cap > 0) {
    std::printf("OVER THE CAP %d times\n", over_cap);
    return 1;
  }
  return 0;
}
