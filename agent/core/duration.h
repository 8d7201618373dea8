// Durations as operators write them: "250ms", "5s", "10m", "1h", or combined ("1m30s").
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "agent/core/result.h"

namespace vigil {

using Duration = std::chrono::milliseconds;

// Parses a duration string. Units: ms, s, m, h, d. Components may be combined in decreasing
// order ("1h30m"). A bare number, a negative value, an unknown unit or an overflow is an error
// whose message says what was expected.
Result<Duration> parse_duration(std::string_view text);

// Formats a duration the way parse_duration reads it, with the largest units first ("1m30s").
std::string format_duration(Duration d);

// to - from, computed in milliseconds: timelines take any time from 1678 to 2261, and the
// difference of two such times in nanoseconds overflows (found by fuzz_timeline).
inline Duration between(std::chrono::system_clock::time_point from,
                        std::chrono::system_clock::time_point to) {
  return std::chrono::duration_cast<Duration>(to.time_since_epoch()) -
         std::chrono::duration_cast<Duration>(from.time_since_epoch());
}

}  // namespace vigil
