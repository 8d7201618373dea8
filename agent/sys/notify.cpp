#include "agent/sys/notify.h"

#include "agent/sys/clock.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace vigil::sys {
namespace {

void send(const std::string& state) { (void)sd_notify(0, state.c_str()); }

}  // namespace

void notify_ready(std::string_view status) { send("READY=1\nSTATUS=" + std::string(status)); }

void notify_reloading() {
  // MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload to this message;
  // older versions ignore it.
  send("RELOADING=1\nSTATUS=Reloading configuration\nMONOTONIC_USEC=" +
       std::to_string(monotonic_usec()));
}

void notify_stopping() { send("STOPPING=1\nSTATUS=Stopping"); }

void notify_status(std::string_view status) { send("STATUS=" + std::string(status)); }

void notify_watchdog() { send("WATCHDOG=1"); }

std::optional<Duration> watchdog_timeout() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return Duration(static_cast<long long>(usec / 1000));
}

}  // namespace vigil::sys
