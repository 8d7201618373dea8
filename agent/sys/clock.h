// CLOCK_MONOTONIC in microseconds: the clock libsystemd speaks (sd_bus_get_timeout,
// sd_journal_get_timeout, MONOTONIC_USEC=).
#pragma once

#include <time.h>

#include <cstdint>

namespace vigil::sys {

inline std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000ULL;
}

}  // namespace vigil::sys
