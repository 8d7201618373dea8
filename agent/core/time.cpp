#include "agent/core/time.h"

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace vigil {
namespace {

// Two digits or four, for parse_time.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

std::string format_time(TimePoint t) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(t);
  const sys_days day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss hms{ms - day};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

std::optional<TimePoint> parse_time(std::string_view s) {
  using namespace std::chrono;
  // YYYY-MM-DDTHH:MM:SS is 19 characters; then an optional fraction, then Z.
  if (s.size() < 20) return std::nullopt;
  const auto y = digits(s, 0, 4);
  const auto mo = digits(s, 5, 2);
  const auto d = digits(s, 8, 2);
  const auto h = digits(s, 11, 2);
  const auto mi = digits(s, 14, 2);
  const auto sec = digits(s, 17, 2);
  if (!y || !mo || !d || !h || !mi || !sec) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
      s[16] != ':') {
    return std::nullopt;
  }
  // No leap second (60): vigil never writes one, and TimePoint cannot hold one.
  if (*h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  std::size_t pos = 19;
  std::int64_t nanos = 0;
  if (s[pos] == '.') {
    const std::size_t start = ++pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    const std::size_t n = pos - start;
    if (n == 0 || n > 9) return std::nullopt;
    for (std::size_t i = start; i < pos; ++i) nanos = nanos * 10 + (s[i] - '0');
    for (std::size_t i = n; i < 9; ++i) nanos *= 10;
  }
  if (pos + 1 != s.size() || (s[pos] != 'Z' && s[pos] != 'z')) return std::nullopt;
  const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*mo)},
                           day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  // In seconds first: TimePoint counts nanoseconds on libstdc++ (years 1678..2261), and
  // sys_seconds cannot overflow for four-digit years.
  const sys_seconds whole = sys_days{ymd} + hours{*h} + minutes{*mi} + seconds{*sec};
  if (whole < floor<seconds>(TimePoint::min()) + seconds{1} ||
      whole >= floor<seconds>(TimePoint::max())) {
    return std::nullopt;
  }
  return time_point_cast<Clock::duration>(whole) +
         duration_cast<Clock::duration>(nanoseconds{nanos});
}

}  // namespace vigil
