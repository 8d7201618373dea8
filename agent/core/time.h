// Times as vigil writes them in its files and pages: RFC 3339, UTC, milliseconds.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/core/observation.h"

namespace vigil {

// RFC 3339 in UTC with milliseconds: "2026-11-27T01:42:07.123Z" (sub-millisecond digits are
// truncated).
std::string format_time(TimePoint t);
// Reads "YYYY-MM-DDTHH:MM:SS[.fraction]Z" (1 to 9 fraction digits; 'T' and 'Z' in either case).
// Offsets other than Z, invalid dates and times outside TimePoint's range are nullopt.
std::optional<TimePoint> parse_time(std::string_view text);

}  // namespace vigil
