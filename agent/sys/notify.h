// sd_notify: tell systemd when we are ready, reloading, stopping, and alive (watchdog).
// Every call is a no-op when NOTIFY_SOCKET is not set (not run by systemd).
#pragma once

#include <optional>
#include <string_view>

#include "agent/core/duration.h"

namespace vigil::sys {

void notify_ready(std::string_view status);
void notify_reloading();
void notify_stopping();
void notify_status(std::string_view status);
void notify_watchdog();
// The WatchdogSec= systemd expects pings within, or nullopt when no watchdog is set for us.
std::optional<Duration> watchdog_timeout();

}  // namespace vigil::sys
