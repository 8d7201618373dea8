// sd-bus for units on the Asio loop (see units.h): the connection (pumped by the loop,
// reconnected with backoff, resynced periodically) and the watches of unit state. One-shot reads,
// restarts and transient commands are in units_ops.cpp; the state they share is units_impl.h.
#include "agent/sys/units.h"

#include <poll.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "agent/sys/clock.h"
#include "agent/sys/errors.h"
#include "agent/sys/log.h"
#include "agent/sys/units_impl.h"

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

// Why 30s: long enough not to hammer a dbus that is down for good, short enough that vigil is
// back within half a minute of dbus coming back.
constexpr Duration kMaxBackoff{30'000};
// A GetAll that failed (systemd not yet back on a restarted bus) is retried this soon.
constexpr Duration kRetryRead{1'000};

}  // namespace

bool UnitWatcher::Impl::ensure_connected() {
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

void UnitWatcher::Impl::install(UnitEntry& e) {
  if (bus == nullptr) return;
  int r = sd_bus_match_signal_async(bus, &e.match, kSystemd, e.path.c_str(),
                                    "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                    &Impl::on_changed, nullptr, &e);
  if (r < 0) {
    log(LogLevel::warning, "watching " + e.unit + " failed: " + errno_text(r));
  }
  refresh(e);
}

int UnitWatcher::Impl::on_changed(sd_bus_message*, void* userdata, sd_bus_error*) {
  auto* e = static_cast<UnitEntry*>(userdata);
  e->owner->refresh(*e);
  return 0;
}

void UnitWatcher::Impl::refresh(UnitEntry& e) {
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

bool UnitWatcher::Impl::is_service(const std::string& unit) {
  return unit.size() > 8 && unit.compare(unit.size() - 8, 8, ".service") == 0;
}

int UnitWatcher::Impl::parse(sd_bus_message* m, UnitState& s) {
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

int UnitWatcher::Impl::on_unit_props(sd_bus_message* m, void* userdata, sd_bus_error*) {
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
        self->bus, &e->call, kSystemd, e->path.c_str(), "org.freedesktop.DBus.Properties", "GetAll",
        &Impl::on_service_props, e, "s", "org.freedesktop.systemd1.Service");
    if (r >= 0) return 0;
  }
  self->deliver(*e);
  return 0;
}

int UnitWatcher::Impl::on_service_props(sd_bus_message* m, void* userdata, sd_bus_error*) {
  auto* e = static_cast<UnitEntry*>(userdata);
  e->call = sd_bus_slot_unref(e->call);
  if (!sd_bus_message_is_method_error(m, nullptr)) {
    UnitState s = e->state;
    if (parse(m, s) >= 0) e->state = s;
  }
  e->owner->deliver(*e);
  return 0;
}

void UnitWatcher::Impl::deliver(UnitEntry& e) {
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

void UnitWatcher::Impl::read_failed(UnitEntry& e, const std::string& why) {
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

void UnitWatcher::Impl::pump() {
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

void UnitWatcher::Impl::arm() {
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

void UnitWatcher::Impl::wait(asio::posix::stream_descriptor::wait_type type, bool& pending) {
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

void UnitWatcher::Impl::lost(const std::string& why) {
  log(LogLevel::warning, "lost the system bus (" + why + "); reconnecting");
  teardown("lost the system bus (" + why + ")");
  was_lost = true;
  schedule_reconnect();
}

void UnitWatcher::Impl::teardown(const std::string& why) {
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

void UnitWatcher::Impl::schedule_reconnect() {
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

void UnitWatcher::Impl::arm_resync() {
  resync_timer.expires_after(UnitWatcher::kResyncEvery);
  resync_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    auto self = weak.lock();
    if (!self || ec) return;
    for (auto& [name, e] : self->units) self->refresh(*e);
    self->arm_resync();
  });
}

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

}  // namespace vigil::sys
