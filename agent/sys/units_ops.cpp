// One-shot operations on units over the watcher's sd-bus connection (see units.h): a read of a
// unit's state, a restart (ResetFailedUnit, RestartUnit, the job's JobRemoved, the state after)
// and a transient command, each a BusOp stepping through its calls with its own deadline; and
// the JobTracker that pairs their replies with JobRemoved. The connection itself is units.cpp's;
// the state they share is units_impl.h.
#include "agent/sys/units.h"

#include <systemd/sd-bus.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>

#include "agent/sys/errors.h"
#include "agent/sys/units_impl.h"

namespace vigil::sys {

namespace asio = boost::asio;

namespace {

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

void UnitWatcher::Impl::kick() {
  if (kick_posted) return;
  kick_posted = true;
  asio::post(io, [weak = weak_from_this()] {
    auto self = weak.lock();
    if (!self) return;
    self->kick_posted = false;
    self->pump();
  });
}

BusOp& UnitWatcher::Impl::new_op(const std::string& unit) {
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

bool UnitWatcher::Impl::usable(BusOp& op) {
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

std::uint64_t UnitWatcher::Impl::call_timeout_usec(const BusOp& op) {
  if (!op.restarted) return 0;
  const Duration left = std::max(op.limit - op.elapsed(), Duration{0}) + kCallSlack;
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(left).count());
}

bool UnitWatcher::Impl::send(BusOp& op, sd_bus_message* m, int r, const std::string& what) {
  if (r >= 0)
    r = sd_bus_call_async(bus, &op.call, m, &Impl::on_op_reply, &op, call_timeout_usec(op));
  sd_bus_message_unref(m);
  if (r >= 0) return true;
  fail(op, what + ": " + errno_text(r));
  return false;
}

bool UnitWatcher::Impl::call_manager(BusOp& op, const char* method) {
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

void UnitWatcher::Impl::read_state(BusOp& op, BusOp::Step step) {
  op.step = step;
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus, &m, kSystemd, op.path.c_str(),
                                         "org.freedesktop.DBus.Properties", "GetAll");
  if (r >= 0) {
    r = sd_bus_message_append(m, "s",
                              step == BusOp::Step::read_unit ? "org.freedesktop.systemd1.Unit"
                                                             : "org.freedesktop.systemd1.Service");
  }
  send(op, m, r, "GetAll " + op.outcome.unit);
}

bool UnitWatcher::Impl::ensure_job_match(BusOp& op) {
  if (job_match != nullptr) return true;
  const int r = sd_bus_match_signal_async(bus, &job_match, kSystemd, "/org/freedesktop/systemd1",
                                          "org.freedesktop.systemd1.Manager", "JobRemoved",
                                          &Impl::on_job_removed, nullptr, this);
  if (r >= 0) return true;
  job_match = nullptr;
  fail(op, "watching JobRemoved: " + errno_text(r));
  return false;
}

void UnitWatcher::Impl::start_restart(BusOp& op) {
  op.step = BusOp::Step::restart;
  jobs.expect_reply(op.id);
  call_manager(op, "RestartUnit");
}

void UnitWatcher::Impl::arm_deadline(BusOp& op) {
  op.timer.emplace(io);
  op.timer->expires_after(op.limit);
  op.timer->async_wait([weak = weak_from_this(), id = op.id](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec) return;
    self->expired(id);
  });
}

void UnitWatcher::Impl::start_transient(BusOp& op, const TransientCommand& c) {
  op.step = BusOp::Step::start_transient;
  jobs.expect_reply(op.id);
  const auto limit_usec = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(op.limit).count());
  sd_bus_message* m = nullptr;
  int r = sd_bus_message_new_method_call(bus, &m, kSystemd, "/org/freedesktop/systemd1",
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

int UnitWatcher::Impl::append_strings(sd_bus_message* m, const char* name,
                                      const std::vector<std::string>& values) {
  int r = sd_bus_message_open_container(m, 'r', "sv");
  if (r >= 0) r = sd_bus_message_append(m, "s", name);
  if (r >= 0) r = sd_bus_message_open_container(m, 'v', "as");
  if (r >= 0) r = sd_bus_message_append_strv(m, strv(values).data());
  if (r >= 0) r = sd_bus_message_close_container(m);
  if (r >= 0) r = sd_bus_message_close_container(m);
  return r;
}

int UnitWatcher::Impl::append_exec_start(sd_bus_message* m, const std::vector<std::string>& argv) {
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

std::vector<char*> UnitWatcher::Impl::strv(const std::vector<std::string>& values) {
  std::vector<char*> out;
  out.reserve(values.size() + 1);
  for (const std::string& v : values) out.push_back(const_cast<char*>(v.c_str()));
  out.push_back(nullptr);
  return out;
}

int UnitWatcher::Impl::on_op_reply(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* op = static_cast<BusOp*>(userdata);
  op->call = sd_bus_slot_unref(op->call);
  op->owner->replied(*op, m);
  return 0;
}

void UnitWatcher::Impl::replied(BusOp& op, sd_bus_message* m) {
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

int UnitWatcher::Impl::on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*) {
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

void UnitWatcher::Impl::job_ended(BusOp& op, const std::string& result) {
  op.outcome.result = result;
  op.outcome.took = op.elapsed();
  if (op.transient) {
    op.outcome.after.error = "not read (a transient unit is collected when it ends)";
    finish(op.id);
    return;
  }
  read_state(op, BusOp::Step::read_unit);
}

void UnitWatcher::Impl::state_read(BusOp& op) {
  op.outcome.after.known = true;
  op.outcome.after.error.clear();
  finish(op.id);
}

void UnitWatcher::Impl::state_failed(BusOp& op, const std::string& why) {
  op.outcome.after.error = why;
  finish(op.id);
}

void UnitWatcher::Impl::fail(BusOp& op, const std::string& why) {
  if (op.restarted && op.outcome.result.empty()) {
    op.outcome.error = why;
    op.outcome.took = op.elapsed();
    finish(op.id);
  } else {
    state_failed(op, why);
  }
}

void UnitWatcher::Impl::expired(std::uint64_t id) {
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

void UnitWatcher::Impl::finish(std::uint64_t id) {
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

void UnitWatcher::Impl::fail_all(const std::string& why) {
  std::vector<std::uint64_t> ids;
  for (const auto& [id, op] : ops) ids.push_back(id);
  for (const std::uint64_t id : ids) {
    auto it = ops.find(id);
    if (it != ops.end()) fail(*it->second, why);
  }
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
