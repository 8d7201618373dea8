#include "agent/daemon.h"

#include <malloc.h>

#include <algorithm>
#include <csignal>
#include <functional>

#include "agent/report.h"
#include "agent/sys/log.h"
#include "agent/sys/notify.h"
#include "probes/register.h"

namespace vigil {

namespace asio = boost::asio;

struct Daemon::Runner {
  Runner(asio::io_context& io, CheckConfig c) : check(std::move(c)), timer(io) {}
  CheckConfig check;
  std::shared_ptr<Probe> probe;
  asio::steady_timer timer;
  // One classifier per key: a check watching several units, or counting per captured IP, has
  // one state per unit or IP. HTTP checks use the empty key.
  std::map<std::string, Classifier> classifiers;
  std::uint64_t skipped = 0;  // ticks skipped because the previous run was still going
};

Daemon::Daemon(asio::io_context& io, DaemonOptions options, Config config)
    : io_(io),
      options_(std::move(options)),
      config_(std::move(config)),
      http_(io),
      units_(io),
      signals_(io),
      watchdog_(io) {
  if (options_.force_dry_run == DryRun::yes) config_.agent.dry_run = DryRun::yes;
}

Daemon::~Daemon() {
  for (auto& [name, r] : runners_) {
    if (r->probe) r->probe->cancel();
  }
}

void Daemon::start() {
  signals_.add(SIGINT);
  signals_.add(SIGTERM);
  signals_.add(SIGHUP);
  arm_signals();
  apply(config_);
  watchdog_every_ = sys::watchdog_timeout();
  if (watchdog_every_) arm_watchdog();
  const std::string status = "Watching " + std::to_string(runners_.size()) + " check(s)" +
                             (config_.agent.dry_run == DryRun::yes ? " (dry-run)" : "");
  sys::log(sys::LogLevel::info,
           "vigil " VIGIL_VERSION " started: " + status + " from " + options_.config_path,
           {{"MESSAGE_ID", std::string(sys::kMsgConfigLoaded)}});
  sys::notify_ready(status);
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  sys::notify_stopping();
  sys::log_info("stopping: cancelling " + std::to_string(http_.in_flight()) +
                " request(s) in flight");
  for (auto& [name, r] : runners_) {
    r->timer.cancel();
    if (r->probe) r->probe->cancel();
  }
  runners_.clear();
  http_.cancel_all();
  watchdog_.cancel();
  boost::system::error_code ignored;
  signals_.cancel(ignored);
  signals_.clear(ignored);
}

bool Daemon::reload() {
  sys::notify_reloading();
  LoadResult loaded = load_config_file(options_.config_path);
  if (!loaded.config) {
    for (const ConfigError& e : loaded.errors) {
      sys::log(sys::LogLevel::err, e.to_string(),
               {{"MESSAGE_ID", std::string(sys::kMsgConfigRejected)}});
    }
    sys::log(sys::LogLevel::err,
             "reload refused: " + std::to_string(loaded.errors.size()) + " error(s) in " +
                 options_.config_path + "; keeping the running configuration (" +
                 std::to_string(runners_.size()) + " check(s))",
             {{"MESSAGE_ID", std::string(sys::kMsgConfigRejected)}});
    sys::notify_ready("Reload refused; running the previous configuration");
    return false;
  }
  Config next = std::move(*loaded.config);
  if (options_.force_dry_run == DryRun::yes) next.agent.dry_run = DryRun::yes;
  apply(next);
  config_ = std::move(next);
  const std::string status = "Watching " + std::to_string(runners_.size()) + " check(s)";
  sys::log(sys::LogLevel::info, "configuration reloaded: " + status,
           {{"MESSAGE_ID", std::string(sys::kMsgConfigLoaded)}});
  sys::notify_ready(status);
  return true;
}

// Replaces the running checks by those of `config`. A check that keeps its name keeps its
// classifier state, so a reload neither re-fires nor silently "recovers" an ongoing problem.
void Daemon::apply(Config config) {
  std::map<std::string, std::shared_ptr<Runner>> next;
  ProbeContext ctx{io_, http_, units_, config.agent.state_dir};
  for (const CheckConfig& c : config.checks) {
    auto r = std::make_shared<Runner>(io_, c);
    r->probe = make_probe(ctx, c);
    if (!r->probe) {
      sys::log_error("check '" + c.name + "': no probe of kind \"" + c.probe + "\"");
      continue;
    }
    if (auto old = runners_.find(c.name); old != runners_.end()) {
      r->classifiers = old->second->classifiers;
    }
    next.emplace(c.name, r);
  }
  for (auto& [name, r] : runners_) {
    r->timer.cancel();
    if (r->probe) r->probe->cancel();
  }
  runners_ = std::move(next);
  grid_start_ = asio::steady_timer::clock_type::now();
  for (auto& [name, r] : runners_) {
    if (r->probe->event_driven()) {
      r->probe->watch([this, weak = std::weak_ptr<Runner>(r)](Observation obs) {
        if (auto self = weak.lock()) observed(*self, obs);
      });
    } else {
      schedule_first(r);
    }
  }
  // The parsed TOML document and the old checks were freed just now; give the memory back
  // instead of keeping it in malloc's free lists for the life of the daemon.
  malloc_trim(0);
}

// The first run of each check is spread over its interval by a hash of its name, so a thousand
// checks do not fire in the same millisecond; after that each keeps its own absolute cadence.
// Offsets sit on a 10ms grid: checks that share a slot expire together and are served by one
// wake-up (one timerfd update, one epoll round) instead of one each. 10ms is far below any
// interval (>= 100ms) and any latency threshold worth paging on.
void Daemon::schedule_first(const std::shared_ptr<Runner>& r) {
  constexpr Duration kGrid{10};
  const auto slots = std::max<long long>(1, r->check.interval / kGrid);
  const auto slot = static_cast<long long>(std::hash<std::string>{}(r->check.name) %
                                           static_cast<std::size_t>(slots));
  r->timer.expires_at(grid_start_ + slot * kGrid);
  wait_tick(r);
}

void Daemon::schedule_next(const std::shared_ptr<Runner>& r) {
  const auto interval = std::chrono::duration_cast<asio::steady_timer::duration>(r->check.interval);
  // Absolute rescheduling: the next tick is one interval after the previous *scheduled* tick,
  // so the cadence never drifts. If the loop fell behind, skip the missed ticks, not burst.
  auto next = r->timer.expiry() + interval;
  const auto now = asio::steady_timer::clock_type::now();
  if (next <= now) next += interval * ((now - next) / interval + 1);
  r->timer.expires_at(next);
  wait_tick(r);
}

void Daemon::wait_tick(const std::shared_ptr<Runner>& r) {
  r->timer.async_wait([this, weak = std::weak_ptr<Runner>(r)](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) tick(self);
  });
}

void Daemon::tick(const std::shared_ptr<Runner>& r) {
  schedule_next(r);
  if (r->probe->running()) {
    // A slow run (timeout plus confirmations) overlaps its next tick: skip, never pile up.
    ++r->skipped;
    sys::log_debug("check '" + r->check.name + "': previous run still in progress, tick skipped");
    return;
  }
  r->probe->run([this, weak = std::weak_ptr<Runner>(r)](Observation obs) {
    if (auto self = weak.lock()) observed(*self, obs);
  });
}

void Daemon::observed(Runner& r, const Observation& obs) {
  sys::log_debug(obs.check + ": " + obs.summary);
  auto it = r.classifiers.find(obs.key);
  if (it == r.classifiers.end()) {
    if (!rate(r.check, obs)) return;  // a healthy key with no history needs no state
    it = r.classifiers.emplace(obs.key, Classifier{}).first;
  }
  std::optional<Finding> f = it->second.observe(r.check, obs);
  // A key that is healthy and not firing needs no state: per-IP keys come and go by the
  // thousand, and their classifiers must not pile up.
  if (!it->second.state().firing && it->second.state().bad_streak == 0) r.classifiers.erase(it);
  if (!f) return;
  f->key = obs.key;
  log_finding(*f);
  if (on_finding) on_finding(*f);
}

void Daemon::arm_signals() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      sys::log_info("SIGHUP: reloading " + options_.config_path);
      reload();
      arm_signals();
      return;
    }
    sys::log_info(std::string("received ") + (signo == SIGINT ? "SIGINT" : "SIGTERM"));
    stop();
  });
}

void Daemon::arm_watchdog() {
  // Ping at half of WatchdogSec (sd_watchdog_enabled(3)): one late tick is not yet a restart.
  watchdog_.expires_after(*watchdog_every_ / 2);
  watchdog_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    sys::notify_watchdog();
    arm_watchdog();
  });
}

}  // namespace vigil
