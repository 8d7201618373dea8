#include "agent/core/duration.h"

#include <cstdint>
#include <limits>

namespace vigil {
namespace {

struct Unit {
  std::string_view name;
  std::int64_t ms;
};

// Smallest first; format_duration walks them backwards.
constexpr Unit kUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};

}  // namespace

Result<Duration> parse_duration(std::string_view text) {
  // Built with append, not operator+: g++ 12 at -O3 warns falsely (-Wrestrict) on the latter.
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.append(1, '"').append(text).append(1, '"');
  if (text.empty()) return make_error("empty duration; expected e.g. \"250ms\", \"5s\", \"10m\"");
  if (text.front() == '-') return make_error("negative duration " + quoted + " is not allowed");
  std::int64_t total = 0;
  std::int64_t last_unit = std::numeric_limits<std::int64_t>::max();
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      return make_error("invalid duration " + quoted +
                        ": expected a number followed by a unit (ms, s, m, h, d)");
    }
    std::int64_t n = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (n > (std::numeric_limits<std::int64_t>::max() - 9) / 10) {
        return make_error("duration " + quoted + " is too large");
      }
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    // The unit is the whole run of letters after the number, so "5sec" names 'sec'.
    std::size_t end = i;
    while (end < text.size() &&
           ((text[end] >= 'a' && text[end] <= 'z') || (text[end] >= 'A' && text[end] <= 'Z'))) {
      ++end;
    }
    const std::string_view name = text.substr(i, end - i);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (name == u.name) unit = &u;
    }
    if (unit == nullptr) {
      if (i == text.size()) {
        return make_error("duration " + quoted + " has no unit; write e.g. \"" + std::string(text) +
                          "s\" (units: ms, s, m, h, d)");
      }
      return make_error("duration " + quoted + " has an unknown unit '" +
                        std::string(name.empty() ? text.substr(i) : name) +
                        "' (units: ms, s, m, h, d)");
    }
    if (unit->ms >= last_unit) {
      return make_error("duration " + quoted + ": units must go from largest to smallest");
    }
    last_unit = unit->ms;
    i += unit->name.size();
    if (n > (std::numeric_limits<std::int64_t>::max() - total) / unit->ms) {
      return make_error("duration " + quoted + " is too large");
    }
    total += n * unit->ms;
  }
  return Duration(total);
}

std::string format_duration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (auto it = std::rbegin(kUnits); it != std::rend(kUnits); ++it) {
    if (ms >= it->ms) {
      out += std::to_string(ms / it->ms);
      out += it->name;
      ms %= it->ms;
    }
  }
  return out;
}

}  // namespace vigil
