#include "agent/sys/units.h"

#include <poll.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "agent/sys/clock.h"
#include "agent/sys/errors.h"
#include "agent/sys/log.h"

namespace vigil::sys {

namespace asio = boost::asio;

std::string describe(const UnitState& s) {
  if (!s.known) return s.error.empty() ? "state unknown" : "state unknown: " + s.error;
  if (s.load_state == "not-found") return "not found (no such unit)";
  std::string out = s.active_state + " (" + s.sub_state + ")";
  if (!s.result.empty() && s.result != "success") out += ", Result: " + s.result;
  if (s.exec_main_code == 1 && s.exec_main_status != 0) {
    out += ", status=" + std::to_string(s.exec_main_status);
  } else if (s.exec_main_code == 2 || s.exec_main_code == 3) {
    out += ", signal=" +
           std::string(sigabbrev_np(s.exec_main_status) ? sigabbrev_np(s.exec_main_status) : "?");
  }
  if (s.n_restarts > 0) out += ", restarts=" + std::to_string(s.n_restarts);
  if (s.load_state != "loaded") out += ", " + s.load_state;
  return out;
}

namespace {

constexpr const char* kSystemd = "org.freedesktop.systemd1";
constexpr Duration kFirstBackoff{500};
// Why 30s: long enough not to hammer a dbus that is down for good, short enough that vigil is
// back within half a minute of dbus coming back.
constexpr Duration kMaxBackoff{30'000};
// A GetAll that failed (systemd not yet back on a restarted bus) is retried this soon.
constexpr Duration kRetryRead{1'000};

std::string bus_error_text(const sd_bus_error* e) {
  if (e == nullptr) return "unknown error";
  if (e->message != nullptr && e->message[0] != '\0') return e->message;
  return e->name != nullptr ? e->name : "unknown error";
}

// The RestartUnit reply timeout is the caller's deadline plus this, so that our own deadline
// timer, which says what was pending, fires first rather than sd-bus's bare "timed out".
constexpr Duration kCallSlack{1'000};

}  // namespace

void JobTracker::expect_reply(Id id) { awaiting_reply_.insert(id); }

std::optional<std::string> JobTracker::replied(Id id, const std::string& job) {
  awaiting_reply_.erase(id);
  std::optional<std::string> result;
  // Kept, not taken: a second caller whose RestartUnit was merged into the same job may not
  // have its reply yet.
  for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
    if (it->first == job) {
      result = it->second;
      break;
    }
  }
  if (!result) waiting_.emplace(job, id);
  trim();
  return result;
}

std::vector<JobTracker::Id> JobTracker::removed(const std::string& job, const std::string& result) {
  std::vector<Id> ids;
  const auto [first, last] = waiting_.equal_range(job);
  for (auto it = first; it != last; ++it) ids.push_back(it->second);
  waiting_.erase(first, last);
  if (!awaiting_reply_.empty()) {
    recent_.emplace_back(job, result);
    trim();
  }
  return ids;
}

void JobTracker::forget(Id id) {
  awaiting_reply_.erase(id);
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it = it->second == id ? waiting_.erase(it) : std::next(it);
  }
  trim();
}

void JobTracker::clear() {
  awaiting_reply_.clear();
  waiting_.clear();
  recent_.clear();
}

void JobTracker::trim() {
  // Nobody can ask about a removed job once no reply is outstanding: replies name new jobs only.
  if (awaiting_reply_.empty()) recent_.clear();
  while (recent_.size() > kKeepRemoved) recent_.pop_front();
}

struct UnitEntry {
  std::string unit;
  std::string path;
  UnitState state;
  sd_bus_slot* match = nullptr;
  sd_bus_slot* call = nullptr;
  bool dirty = false;  // a change arrived while a read was in flight
  std::map<UnitWatcher::WatchId, UnitWatcher::Callback> callbacks;
  UnitWatcher::Impl* owner = nullptr;
  std::unique_ptr<asio::steady_timer> retry;
};

// One unit_state() or restart_unit() in flight. Its call slot is owned, not floating, so that
// finishing early (deadline, shutdown, lost bus) cancels the pending call and no reply can reach
// a finished operation.
struct BusOp {
  enum class Step { reset_failed, restart, start_transient, job, read_unit, read_service };
  using Clock = std::chrono::steady_clock;

  UnitWatcher::Impl* owner = nullptr;
  std::uint64_t id = 0;
  std::string path;  // the unit's object path
  Step step = Step::read_unit;
  sd_bus_slot* call = nullptr;
  Clock::time_point started{};
  Duration limit{};                           // restarts: the caller's deadline
  std::optional<asio::steady_timer> timer;    // restarts: enforces `limit`
  JobOutcome outcome;                         // outcome.after is the state being read
  std::function<void(JobOutcome)> restarted;  // set for restart_unit()
  std::function<void(UnitState)> read;        // set for unit_state()
  bool transient = false;                     // run_transient(): no state read after the job

  Duration elapsed() const { return std::chrono::duration_cast<Duration>(Clock::now() - started); }
};

struct UnitWatcher::Impl : std::enable_shared_from_this<UnitWatcher::Impl> {
  explicit Impl(asio::io_context& ctx)
      : io(ctx), bus_timer(ctx), reconnect_timer(ctx), resync_timer(ctx) {}

  ~Impl() { teardown("vigil is stopping"); }

  bool ensure_connected() {
    if (bus != nullptr) return true;
    int r = sd_bus_open_system(&bus);
    if (r < 0) {
      bus = nullptr;
      connect_error = "cannot connect to the system bus: " + errno_text(r);
      if (!reconnect_pending) {
        log(LogLevel::warning, "cannot connect to the system bus: " + errno_text(r) +
                                   "; retrying in " + format_duration(backoff));
      }
      schedule_reconnect();
      return false;
    }
    desc.emplace(io, sd_bus_get_fd(bus));
    r = sd_bus_call_method_async(bus, nullptr, kSystemd, "/org/freedesktop/systemd1",
                                 "org.freedesktop.systemd1.Manager", "Subscribe", nullptr, nullptr,
                                 "");
    if (r < 0) log(LogLevel::warning, "systemd Subscribe failed: " + errno_text(r));
    for (auto& [name, e] : units) install(*e);
    arm_resync();
    pump();
    return true;
  }

  void install(UnitEntry& e) {
    if (bus == nullptr) return;
    int r = sd_bus_match_signal_async(bus, &e.match, kSystemd, e.path.c_str(),
                                      "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                      &Impl::on_changed, nullptr, &e);
    if (r < 0) {
      log(LogLevel::warning, "watching " + e.unit + " failed: " + errno_text(r));
    }
    refresh(e);
  }

  static int on_changed(sd_bus_message*, void* userdata, sd_bus_error*) {
    auto* e = static_cast<UnitEntry*>(userdata);
    e->owner->refresh(*e);
    return 0;
  }

  // Reads the unit's properties: the Unit interface, then (for services) the Service one.
  void refresh(UnitEntry& e) {
    if (bus == nullptr) return;
    if (e.call != nullptr) {
      e.dirty = true;
      return;
    }
    const int r = sd_bus_call_method_async(
        bus, &e.call, kSystemd, e.path.c_str(), "org.freedesktop.DBus.Properties", "GetAll",
        &Impl::on_unit_props, &e, "s", "org.freedesktop.systemd1.Unit");
    if (r < 0) read_failed(e, "GetAll: " + errno_text(r));
  }

  static bool is_service(const std::string& unit) {
    return unit.size() > 8 && unit.compare(unit.size() - 8, 8, ".service") == 0;
  }

  static int parse(sd_bus_message* m, UnitState& s) {
    int r = sd_bus_message_enter_container(m, 'a', "{sv}");
    if (r < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
      const char* name = nullptr;
      if ((r = sd_bus_message_read(m, "s", &name)) < 0) return r;
      auto str = [&](std::string& out) {
        const char* v = nullptr;
        int rr = sd_bus_message_read(m, "v", "s", &v);
        if (rr >= 0) out = v;
        return rr;
      };
      if (std::strcmp(name, "LoadState") == 0) {
        r = str(s.load_state);
      } else if (std::strcmp(name, "ActiveState") == 0) {
        r = str(s.active_state);
      } else if (std::strcmp(name, "SubState") == 0) {
        r = str(s.sub_state);
      } else if (std::strcmp(name, "Result") == 0) {
        r = str(s.result);
      } else if (std::strcmp(name, "Restart") == 0) {
        r = str(s.restart);
      } else if (std::strcmp(name, "NRestarts") == 0) {
        r = sd_bus_message_read(m, "v", "u", &s.n_restarts);
      } else if (std::strcmp(name, "ExecMainCode") == 0) {
        r = sd_bus_message_read(m, "v", "i", &s.exec_main_code);
      } else if (std::strcmp(name, "ExecMainStatus") == 0) {
        r = sd_bus_message_read(m, "v", "i", &s.exec_main_status);
      } else if (std::strcmp(name, "StateChangeTimestamp") == 0) {
        r = sd_bus_message_read(m, "v", "t", &s.state_change_usec);
      } else {
        r = sd_bus_message_skip(m, "v");
      }
      if (r < 0) return r;
      if ((r = sd_bus_message_exit_container(m)) < 0) return r;
    }
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
  }

  static int on_unit_props(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* e = static_cast<UnitEntry*>(userdata);
    Impl* self = e->owner;
    e->call = sd_bus_slot_unref(e->call);
    if (sd_bus_message_is_method_error(m, nullptr)) {
      self->read_failed(*e, sd_bus_message_get_error(m)->message);
      return 0;
    }
    UnitState s = e->state;
    if (int r = parse(m, s); r < 0) {
      self->read_failed(*e, "bad GetAll reply: " + errno_text(r));
      return 0;
    }
    e->state = s;
    if (is_service(e->unit) && s.load_state == "loaded" && self->bus != nullptr) {
      const int r = sd_bus_call_method_async(
          self->bus, &e->call, kSystemd, e->path.c_str(), "org.freedesktop.DBus.Properties",
          "GetAll", &Impl::on_service_props, e, "s", "org.freedesktop.systemd1.Service");
      if (r >= 0) return 0;
    }
    self->deliver(*e);
    return 0;
  }

  static int on_service_props(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* e = static_cast<UnitEntry*>(userdata);
    e->call = sd_bus_slot_unref(e->call);
    if (!sd_bus_message_is_method_error(m, nullptr)) {
      UnitState s = e->state;
      if (parse(m, s) >= 0) e->state = s;
    }
    e->owner->deliver(*e);
    return 0;
  }

  void deliver(UnitEntry& e) {
    e.state.known = true;
    e.state.error.clear();
    // Copy: a callback may unwatch (and so destroy) entries.
    const UnitState s = e.state;
    const auto callbacks = e.callbacks;
    const bool again = e.dirty;
    e.dirty = false;
    for (const auto& [id, cb] : callbacks) cb(s);
    if (again) {
      auto it = units.find(s.unit);
      if (it != units.end()) refresh(*it->second);
    }
  }

  void read_failed(UnitEntry& e, const std::string& why) {
    e.state.error = why;
    log(LogLevel::debug, "reading " + e.unit + " failed: " + why + "; retrying");
    if (!e.retry) e.retry = std::make_unique<asio::steady_timer>(io);
    e.retry->expires_after(kRetryRead);
    e.retry->async_wait(
        [weak = weak_from_this(), unit = e.unit](const boost::system::error_code& ec) {
          if (ec) return;
          auto self = weak.lock();
          if (!self) return;
          auto it = self->units.find(unit);
          if (it != self->units.end()) self->refresh(*it->second);
        });
  }

  // Runs sd-bus until it has nothing to do, then re-arms the fd and timeout watches.
  void pump() {
    if (bus == nullptr) return;
    for (;;) {
      const int r = sd_bus_process(bus, nullptr);
      if (r < 0) {
        lost("sd_bus_process: " + errno_text(r));
        return;
      }
      if (bus == nullptr) return;
      if (r == 0) break;
    }
    if (sd_bus_is_open(bus) <= 0) {
      lost("connection closed");
      return;
    }
    arm();
  }

  void arm() {
    const int events = sd_bus_get_events(bus);
    if (events < 0) {
      lost("sd_bus_get_events: " + errno_text(events));
      return;
    }
    if (!reading) wait(asio::posix::stream_descriptor::wait_read, reading);
    if ((events & POLLOUT) && !writing) wait(asio::posix::stream_descriptor::wait_write, writing);
    const unsigned gen = generation;
    std::uint64_t usec = 0;
    if (sd_bus_get_timeout(bus, &usec) >= 0 && usec != UINT64_MAX) {
      const std::uint64_t now = monotonic_usec();
      const auto delay = std::chrono::microseconds(usec > now ? usec - now : 0);
      bus_timer.expires_after(delay);
      bus_timer.async_wait([weak = weak_from_this(), gen](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!self || ec || self->generation != gen) return;
        self->pump();
      });
    }
  }

  // One pending wait in one direction; `pending` is its flag (reading or writing). A wait from
  // before a teardown (older generation) is stale and does nothing.
  void wait(asio::posix::stream_descriptor::wait_type type, bool& pending) {
    pending = true;
    desc->async_wait(type, [weak = weak_from_this(), gen = generation,
                            read = type == asio::posix::stream_descriptor::wait_read](
                               const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || self->generation != gen) return;
      (read ? self->reading : self->writing) = false;
      self->pump();
    });
  }

  void lost(const std::string& why) {
    log(LogLevel::warning, "lost the system bus (" + why + "); reconnecting");
    teardown("lost the system bus (" + why + ")");
    was_lost = true;
    schedule_reconnect();
  }

  // Drops the connection. Pending operations complete with `why`: a JobRemoved sent while we
  // were away is never redelivered, so waiting across a reconnect could wait forever.
  void teardown(const std::string& why) {
    fail_all(why);
    job_match = sd_bus_slot_unref(job_match);
    jobs.clear();
    ++generation;
    reading = writing = false;
    for (auto& [name, e] : units) {
      e->match = sd_bus_slot_unref(e->match);
      e->call = sd_bus_slot_unref(e->call);
      e->dirty = false;
    }
    if (desc) {
      boost::system::error_code ignored;
      desc->cancel(ignored);
      (void)desc->release();
      desc.reset();
    }
    bus_timer.cancel();
    resync_timer.cancel();
    if (bus != nullptr) bus = sd_bus_flush_close_unref(bus);
  }

  void schedule_reconnect() {
    if (reconnect_pending) return;
    reconnect_pending = true;
    reconnect_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    reconnect_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      self->reconnect_pending = false;
      if (self->units.empty()) return;
      if (self->ensure_connected()) {
        self->backoff = kFirstBackoff;
        if (self->was_lost) {
          log(LogLevel::notice, "reconnected to the system bus; resyncing " +
                                    std::to_string(self->units.size()) + " unit(s)");
          self->was_lost = false;
        }
      }
    });
  }

  void arm_resync() {
    resync_timer.expires_after(UnitWatcher::kResyncEvery);
    resync_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec) return;
      for (auto& [name, e] : self->units) self->refresh(*e);
      self->arm_resync();
    });
  }

  // --- one-shot reads and restarts ---

  // Sends what was queued, from the loop: never from the caller's stack, which may be inside an
  // sd-bus callback (sd_bus_process() is not re-entrant).
  void kick() {
    if (kick_posted) return;
    kick_posted = true;
    asio::post(io, [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self) return;
      self->kick_posted = false;
      self->pump();
    });
  }

  BusOp& new_op(const std::string& unit) {
    auto op = std::make_unique<BusOp>();
    op->owner = this;
    op->id = ++next_op;
    op->started = BusOp::Clock::now();
    op->outcome.unit = unit;
    op->outcome.after.unit = unit;
    char* p = nullptr;
    if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &p) >= 0) {
      op->path = p;
      free(p);  // NOLINT: allocated by libsystemd
    }
    BusOp& ref = *op;
    ops.emplace(ref.id, std::move(op));
    return ref;
  }

  // Connects if needed; false (and `op` finished with the reason) when that is impossible.
  bool usable(BusOp& op) {
    std::string why;
    if (op.path.empty()) {
      why = "invalid unit name";
    } else if (bus == nullptr && !ensure_connected()) {
      why = connect_error;
    }
    if (why.empty()) return true;
    fail(op, why);
    return false;
  }

  // The reply timeout of `op`'s next call: what is left of a restart's deadline (plus slack), or
  // sd-bus's default (25s) for a plain read.
  static std::uint64_t call_timeout_usec(const BusOp& op) {
    if (!op.restarted) return 0;
    const Duration left = std::max(op.limit - op.elapsed(), Duration{0}) + kCallSlack;
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(left).count());
  }

  // Queues `m` (consumed) as `op`'s pending call. On failure finishes `op` with `what: error`.
  bool send(BusOp& op, sd_bus_message* m, int r, const std::string& what) {
    if (r >= 0)
      r = sd_bus_call_async(bus, &op.call, m, &Impl::on_op_reply, &op, call_timeout_usec(op));
    sd_bus_message_unref(m);
    if (r >= 0) return true;
    fail(op, what + ": " + errno_text(r));
    return false;
  }

  bool call_manager(BusOp& op, const char* method) {
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(bus, &m, kSystemd, "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager", method);
    if (r >= 0) {
      r = op.step == BusOp::Step::restart
              ? sd_bus_message_append(m, "ss", op.outcome.unit.c_str(), "replace")
              : sd_bus_message_append(m, "s", op.outcome.unit.c_str());
    }
    return send(op, m, r, std::string(method) + " " + op.outcome.unit);
  }

  void read_state(BusOp& op, BusOp::Step step) {
    op.step = step;
    sd_bus_message* m = nullptr;
    int r = sd_bus_message_new_method_call(bus, &m, kSystemd, op.path.c_str(),
                                           "org.freedesktop.DBus.Properties", "GetAll");
    if (r >= 0) {
      r = sd_bus_message_append(m, "s",
                                step == BusOp::Step::read_unit
                                    ? "org.freedesktop.systemd1.Unit"
                                    : "org.freedesktop.systemd1.Service");
    }
    send(op, m, r, "GetAll " + op.outcome.unit);
  }

  // The JobRemoved match, installed once per connection before the first RestartUnit is queued.
  // Its AddMatch goes out first on the same connection, so the bus applies it before systemd even
  // sees the call: no job of ours can end unseen.
  bool ensure_job_match(BusOp& op) {
    if (job_match != nullptr) return true;
    const int r = sd_bus_match_signal_async(bus, &job_match, kSystemd, "/org/freedesktop/systemd1",
                                            "org.freedesktop.systemd1.Manager", "JobRemoved",
                                            &Impl::on_job_removed, nullptr, this);
    if (r >= 0) return true;
    job_match = nullptr;
    fail(op, "watching JobRemoved: " + errno_text(r));
    return false;
  }

  void start_restart(BusOp& op) {
    op.step = BusOp::Step::restart;
    jobs.expect_reply(op.id);
    call_manager(op, "RestartUnit");
  }

  // Finishes `op` through expired() once its `limit` has passed.
  void arm_deadline(BusOp& op) {
    op.timer.emplace(io);
    op.timer->expires_after(op.limit);
    op.timer->async_wait(
        [weak = weak_from_this(), id = op.id](const boost::system::error_code& ec) {
          auto self = weak.lock();
          if (!self || ec) return;
          self->expired(id);
        });
  }

  // StartTransientUnit(name, "fail", properties, no aux units) for run_transient().
  void start_transient(BusOp& op, const TransientCommand& c) {
    op.step = BusOp::Step::start_transient;
    jobs.expect_reply(op.id);
    const auto limit_usec = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(op.limit).count());
    sd_bus_message* m = nullptr;
    int r =
        sd_bus_message_new_method_call(bus, &m, kSystemd, "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "StartTransientUnit");
    const std::string uid = std::to_string(c.uid);
    const std::string gid = std::to_string(c.gid);
    if (r >= 0) r = sd_bus_message_append(m, "ss", c.unit.c_str(), "fail");
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "(sv)");
    if (r >= 0) {
      r = sd_bus_message_append(
          m, "(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)(sv)", "Description", "s",
          c.description.c_str(), "Type", "s", "oneshot", "User", "s", uid.c_str(), "Group", "s",
          gid.c_str(), "CollectMode", "s", "inactive-or-failed", "NoNewPrivileges", "b", 1,
          "CapabilityBoundingSet", "t", std::uint64_t{0}, "AmbientCapabilities", "t",
          std::uint64_t{0}, "ProtectSystem", "s", "strict", "PrivateNetwork", "b", 1, "PrivateTmp",
          "b", 1, "RuntimeMaxUSec", "t", limit_usec);
    }
    if (r >= 0) r = append_strings(m, "ReadWritePaths", c.read_write_paths);
    if (r >= 0) r = append_exec_start(m, c.argv);
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_append(m, "a(sa(sv))", 0);
    send(op, m, r, "StartTransientUnit " + c.unit);
  }

  // ("NAME", <as>) into an open a(sv).
  static int append_strings(sd_bus_message* m, const char* name,
                            const std::vector<std::string>& values) {
    int r = sd_bus_message_open_container(m, 'r', "sv");
    if (r >= 0) r = sd_bus_message_append(m, "s", name);
    if (r >= 0) r = sd_bus_message_open_container(m, 'v', "as");
    if (r >= 0) r = sd_bus_message_append_strv(m, strv(values).data());
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_close_container(m);
    return r;
  }

  // ("ExecStart", <a(sasb)>) with one command (path = argv[0]; failure not ignored).
  static int append_exec_start(sd_bus_message* m, const std::vector<std::string>& argv) {
    if (argv.empty()) return -EINVAL;
    int r = sd_bus_message_open_container(m, 'r', "sv");
    if (r >= 0) r = sd_bus_message_append(m, "s", "ExecStart");
    if (r >= 0) r = sd_bus_message_open_container(m, 'v', "a(sasb)");
    if (r >= 0) r = sd_bus_message_open_container(m, 'a', "(sasb)");
    if (r >= 0) r = sd_bus_message_open_container(m, 'r', "sasb");
    if (r >= 0) r = sd_bus_message_append(m, "s", argv[0].c_str());
    if (r >= 0) r = sd_bus_message_append_strv(m, strv(argv).data());
    if (r >= 0) r = sd_bus_message_append(m, "b", 0);
    for (int i = 0; i < 4 && r >= 0; ++i) r = sd_bus_message_close_container(m);
    return r;
  }

  // A NULL-terminated char* view of `values` (valid while `values` lives).
  static std::vector<char*> strv(const std::vector<std::string>& values) {
    std::vector<char*> out;
    out.reserve(values.size() + 1);
    for (const std::string& v : values) out.push_back(const_cast<char*>(v.c_str()));
    out.push_back(nullptr);
    return out;
  }

  static int on_op_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* op = static_cast<BusOp*>(userdata);
    op->call = sd_bus_slot_unref(op->call);
    op->owner->replied(*op, m);
    return 0;
  }

  void replied(BusOp& op, sd_bus_message* m) {
    const sd_bus_error* err =
        sd_bus_message_is_method_error(m, nullptr) ? sd_bus_message_get_error(m) : nullptr;
    const std::string& unit = op.outcome.unit;
    switch (op.step) {
      case BusOp::Step::reset_failed:
        // A unit that is not loaded has no failed state to reset; its restart will say more.
        if (err != nullptr && !sd_bus_error_has_name(err, "org.freedesktop.systemd1.NoSuchUnit")) {
          fail(op, "ResetFailedUnit " + unit + ": " + bus_error_text(err));
          return;
        }
        start_restart(op);
        return;
      case BusOp::Step::restart:
      case BusOp::Step::start_transient: {
        const std::string method =
            op.step == BusOp::Step::restart ? "RestartUnit " : "StartTransientUnit ";
        if (err != nullptr) {
          fail(op, method + unit + ": " + bus_error_text(err));
          return;
        }
        const char* job = nullptr;
        if (const int r = sd_bus_message_read(m, "o", &job); r < 0) {
          fail(op, method + unit + ": bad reply: " + errno_text(r));
          return;
        }
        op.outcome.job = job;
        op.step = BusOp::Step::job;
        if (auto result = jobs.replied(op.id, op.outcome.job)) job_ended(op, *result);
        return;
      }
      case BusOp::Step::read_unit: {
        if (err != nullptr) {
          state_failed(op, "GetAll: " + bus_error_text(err));
          return;
        }
        UnitState s = op.outcome.after;
        if (const int r = parse(m, s); r < 0) {
          state_failed(op, "bad GetAll reply: " + errno_text(r));
          return;
        }
        op.outcome.after = s;
        if (is_service(unit) && s.load_state == "loaded") {
          read_state(op, BusOp::Step::read_service);
        } else {
          state_read(op);
        }
        return;
      }
      case BusOp::Step::read_service:
        // As for watches: the Unit properties alone are a usable state.
        if (err == nullptr) {
          UnitState s = op.outcome.after;
          if (parse(m, s) >= 0) op.outcome.after = s;
        }
        state_read(op);
        return;
      case BusOp::Step::job:
        return;  // no call is pending while waiting for JobRemoved
    }
  }

  static int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* self = static_cast<Impl*>(userdata);
    std::uint32_t id = 0;
    const char* job = nullptr;
    const char* unit = nullptr;
    const char* result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0) return 0;
    for (const std::uint64_t op_id : self->jobs.removed(job, result)) {
      auto it = self->ops.find(op_id);
      if (it != self->ops.end()) self->job_ended(*it->second, result);
    }
    return 0;
  }

  void job_ended(BusOp& op, const std::string& result) {
    op.outcome.result = result;
    op.outcome.took = op.elapsed();
    if (op.transient) {
      op.outcome.after.error = "not read (a transient unit is collected when it ends)";
      finish(op.id);
      return;
    }
    read_state(op, BusOp::Step::read_unit);
  }

  void state_read(BusOp& op) {
    op.outcome.after.known = true;
    op.outcome.after.error.clear();
    finish(op.id);
  }

  void state_failed(BusOp& op, const std::string& why) {
    op.outcome.after.error = why;
    finish(op.id);
  }

  // Finishes `op` with `why`: as the restart's error, or (once the job has a result, and for
  // plain reads) as the reason the state is unknown.
  void fail(BusOp& op, const std::string& why) {
    if (op.restarted && op.outcome.result.empty()) {
      op.outcome.error = why;
      op.outcome.took = op.elapsed();
      finish(op.id);
    } else {
      state_failed(op, why);
    }
  }

  void expired(std::uint64_t id) {
    auto it = ops.find(id);
    if (it == ops.end()) return;
    BusOp& op = *it->second;
    const std::string within = " within " + format_duration(op.limit);
    switch (op.step) {
      case BusOp::Step::reset_failed:
        fail(op, "ResetFailedUnit " + op.outcome.unit + ": no answer" + within);
        return;
      case BusOp::Step::restart:
        fail(op, "RestartUnit " + op.outcome.unit + ": no answer" + within +
                     " (the restart may still happen)");
        return;
      case BusOp::Step::start_transient:
        fail(op, "StartTransientUnit " + op.outcome.unit + ": no answer" + within +
                     " (the command may still run; systemd stops it at the same deadline)");
        return;
      case BusOp::Step::job:
        fail(op, "no result" + within + " from job " + op.outcome.job +
                     (op.transient ? " (systemd stops the command at the same deadline)"
                                   : " (not canceled: the restart may still complete later)"));
        return;
      case BusOp::Step::read_unit:
      case BusOp::Step::read_service:
        state_failed(op, "not read" + within);
        return;
    }
  }

  // Removes `op` and hands its outcome to the caller on the next loop turn, so a callback that
  // calls back into the watcher never runs inside sd-bus dispatch or inside the caller's call.
  void finish(std::uint64_t id) {
    auto it = ops.find(id);
    if (it == ops.end()) return;
    std::unique_ptr<BusOp> op = std::move(it->second);
    ops.erase(it);
    op->call = sd_bus_slot_unref(op->call);
    if (op->timer) op->timer->cancel();
    jobs.forget(op->id);
    if (op->restarted) {
      asio::post(io, [done = std::move(op->restarted), out = std::move(op->outcome)]() mutable {
        done(std::move(out));
      });
    } else if (op->read) {
      asio::post(io, [done = std::move(op->read), s = std::move(op->outcome.after)]() mutable {
        done(std::move(s));
      });
    }
  }

  void fail_all(const std::string& why) {
    std::vector<std::uint64_t> ids;
    for (const auto& [id, op] : ops) ids.push_back(id);
    for (const std::uint64_t id : ids) {
      auto it = ops.find(id);
      if (it != ops.end()) fail(*it->second, why);
    }
  }

  asio::io_context& io;
  sd_bus* bus = nullptr;
  std::optional<asio::posix::stream_descriptor> desc;
  asio::steady_timer bus_timer, reconnect_timer, resync_timer;
  bool reading = false, writing = false, reconnect_pending = false, was_lost = false;
  unsigned generation = 0;
  Duration backoff = kFirstBackoff;
  std::map<std::string, std::unique_ptr<UnitEntry>> units;
  std::map<WatchId, std::string> watch_units;
  WatchId next_id = 0;
  std::string connect_error;  // why the last sd_bus_open_system() failed
  std::map<std::uint64_t, std::unique_ptr<BusOp>> ops;
  std::uint64_t next_op = 0;
  JobTracker jobs;
  sd_bus_slot* job_match = nullptr;  // JobRemoved, once a restart was asked on this connection
  bool kick_posted = false;
};

UnitWatcher::UnitWatcher(asio::io_context& io) : impl_(std::make_shared<Impl>(io)) {}
UnitWatcher::~UnitWatcher() = default;

UnitWatcher::WatchId UnitWatcher::watch(const std::string& unit, Callback changed) {
  Impl& im = *impl_;
  const WatchId id = ++im.next_id;
  auto it = im.units.find(unit);
  if (it == im.units.end()) {
    auto e = std::make_unique<UnitEntry>();
    e->unit = unit;
    e->state.unit = unit;
    e->owner = &im;
    char* path = nullptr;
    if (sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit.c_str(), &path) >= 0) {
      e->path = path;
      free(path);  // NOLINT: allocated by libsystemd
    }
    it = im.units.emplace(unit, std::move(e)).first;
    it->second->callbacks.emplace(id, std::move(changed));
    im.watch_units.emplace(id, unit);
    if (im.bus != nullptr) {
      im.install(*it->second);
    } else {
      im.ensure_connected();
    }
    return id;
  }
  it->second->callbacks.emplace(id, std::move(changed));
  im.watch_units.emplace(id, unit);
  if (it->second->state.known) {
    // A new watcher of a known unit hears its state on the next loop turn.
    asio::post(im.io, [weak = std::weak_ptr<Impl>(impl_), unit, id] {
      auto self = weak.lock();
      if (!self) return;
      auto u = self->units.find(unit);
      if (u == self->units.end()) return;
      auto cb = u->second->callbacks.find(id);
      if (cb != u->second->callbacks.end()) cb->second(u->second->state);
    });
  }
  return id;
}

void UnitWatcher::unwatch(WatchId id) {
  Impl& im = *impl_;
  auto w = im.watch_units.find(id);
  if (w == im.watch_units.end()) return;
  auto u = im.units.find(w->second);
  im.watch_units.erase(w);
  if (u == im.units.end()) return;
  u->second->callbacks.erase(id);
  if (u->second->callbacks.empty()) {
    sd_bus_slot_unref(u->second->match);
    sd_bus_slot_unref(u->second->call);
    im.units.erase(u);
  }
}

bool UnitWatcher::connected() const { return impl_->bus != nullptr; }

void UnitWatcher::shutdown() {
  Impl& im = *impl_;
  for (auto& [name, e] : im.units) {
    if (e->retry) e->retry->cancel();
  }
  im.teardown("vigil is stopping");
  im.units.clear();
  im.watch_units.clear();
  im.reconnect_timer.cancel();
  im.reconnect_pending = false;
}

namespace {

struct ListCall {
  std::function<void(std::vector<std::string>)> done;
};

int on_listed(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* call = static_cast<ListCall*>(userdata);  // freed by the slot's destroy callback
  std::vector<std::string> names;
  if (!sd_bus_message_is_method_error(m, nullptr) &&
      sd_bus_message_enter_container(m, 'a', "(ssssssouso)") >= 0) {
    const char* name = nullptr;
    while (sd_bus_message_read(m, "(ssssssouso)", &name, nullptr, nullptr, nullptr, nullptr,
                               nullptr, nullptr, nullptr, nullptr, nullptr) > 0) {
      names.emplace_back(name);
    }
    sd_bus_message_exit_container(m);
  }
  call->done(std::move(names));
  return 0;
}

}  // namespace

void UnitWatcher::list(const std::vector<std::string>& patterns,
                       std::function<void(std::vector<std::string>)> done) {
  Impl& im = *impl_;
  if (im.bus == nullptr && !im.ensure_connected()) {
    asio::post(im.io, [done = std::move(done)] { done({}); });
    return;
  }
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(im.bus, &m, kSystemd, "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", "ListUnitsByPatterns");
  std::vector<const char*> argv;
  for (const std::string& p : patterns) argv.push_back(p.c_str());
  argv.push_back(nullptr);
  char* no_states[] = {nullptr};
  if (r >= 0) r = sd_bus_message_append_strv(m, no_states);
  if (r >= 0) r = sd_bus_message_append_strv(m, const_cast<char**>(argv.data()));
  auto call = std::make_unique<ListCall>(ListCall{std::move(done)});
  sd_bus_slot* slot = nullptr;
  if (r >= 0) r = sd_bus_call_async(im.bus, &slot, m, &on_listed, call.get(), 0);
  sd_bus_message_unref(m);
  if (r < 0) {
    log(LogLevel::warning, "ListUnitsByPatterns failed: " + errno_text(r));
    asio::post(im.io, [c = std::shared_ptr<ListCall>(call.release())] { c->done({}); });
    return;
  }
  // The bus owns the pending call; its destroy callback frees the ListCall whether a reply
  // came or the connection went away first.
  sd_bus_slot_set_destroy_callback(slot, [](void* u) { delete static_cast<ListCall*>(u); });
  sd_bus_slot_set_floating(slot, 1);
  sd_bus_slot_unref(slot);
  call.release();
}

void UnitWatcher::unit_state(const std::string& unit, std::function<void(UnitState)> done) {
  Impl& im = *impl_;
  BusOp& op = im.new_op(unit);
  op.read = std::move(done);
  if (!im.usable(op)) return;
  im.read_state(op, BusOp::Step::read_unit);
  im.kick();
}

void UnitWatcher::restart_unit(const std::string& unit, ResetFailed reset, Duration deadline,
                               std::function<void(JobOutcome)> done) {
  Impl& im = *impl_;
  BusOp& op = im.new_op(unit);
  op.restarted = std::move(done);
  op.limit = deadline;
  if (!im.usable(op) || !im.ensure_job_match(op)) return;
  im.arm_deadline(op);
  if (reset == ResetFailed::yes) {
    op.step = BusOp::Step::reset_failed;
    im.call_manager(op, "ResetFailedUnit");
  } else {
    im.start_restart(op);
  }
  im.kick();
}

void UnitWatcher::run_transient(const TransientCommand& command, Duration deadline,
                                std::function<void(JobOutcome)> done) {
  Impl& im = *impl_;
  BusOp& op = im.new_op(command.unit);
  op.restarted = std::move(done);
  op.transient = true;
  op.limit = deadline;
  if (!im.usable(op) || !im.ensure_job_match(op)) return;
  im.arm_deadline(op);
  im.start_transient(op, command);
  im.kick();
}

}  // namespace vigil::sys
