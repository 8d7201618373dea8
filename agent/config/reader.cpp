// The TOML reader of vigil.toml (see reader.h): the typed getters and their messages, the
// unknown-key check, and the checks of names that several sections write.
#include "agent/config/reader.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <sstream>

namespace vigil::config_internal {

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string_view closest(std::string_view word, std::span<const std::string_view> candidates) {
  std::string_view best;
  std::size_t best_d = 3;
  for (std::string_view c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

std::string position_text(const SourcePos& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

bool team_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
}

SourcePos ConfigReader::pos(const toml::source_region& r) const {
  return SourcePos{file_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

void ConfigReader::error(const toml::source_region& r, std::string message) {
  errors_.push_back(ConfigError{pos(r), std::move(message)});
}

void ConfigReader::check_keys(const toml::table& table,
                              std::initializer_list<std::string_view> allowed,
                              const std::string& where) {
  check_keys(table, std::span(allowed.begin(), allowed.size()), where);
}

void ConfigReader::check_keys(const toml::table& table, std::span<const std::string_view> allowed,
                              const std::string& where) {
  for (auto&& [key, value] : table) {
    const std::string_view k = key.str();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    unknown_key(key, allowed, where);
  }
}

void ConfigReader::unknown_key(const toml::key& key, std::span<const std::string_view> allowed,
                               const std::string& where) {
  const std::string_view k = key.str();
  std::string msg = where + "unknown key '" + std::string(k) + "'";
  const std::string_view best = closest(k, allowed);
  if (!best.empty()) msg += " (did you mean '" + std::string(best) + "'?)";
  error(key.source(), msg);
}

std::optional<std::string> ConfigReader::get_string(const toml::table& t, std::string_view key,
                                                    const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* s = n->as_string()) return s->get();
  error(n->source(),
        where + "'" + std::string(key) + "' must be a string, not " + std::string(type_name(*n)));
  return std::nullopt;
}

std::optional<bool> ConfigReader::get_bool(const toml::table& t, std::string_view key,
                                           const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (const auto* b = n->as_boolean()) return b->get();
  error(n->source(), where + "'" + std::string(key) + "' must be true or false, not " +
                         std::string(type_name(*n)));
  return std::nullopt;
}

std::optional<int> ConfigReader::get_int(const toml::table& t, std::string_view key, int low,
                                         int high, const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  const auto* i = n->as_integer();
  if (i == nullptr) {
    error(n->source(), where + "'" + std::string(key) + "' must be an integer, not " +
                           std::string(type_name(*n)));
    return std::nullopt;
  }
  if (i->get() < low || i->get() > high) {
    error(n->source(), where + "'" + std::string(key) + "' must be between " + std::to_string(low) +
                           " and " + std::to_string(high) + ", not " + std::to_string(i->get()));
    return std::nullopt;
  }
  return static_cast<int>(i->get());
}

std::optional<Duration> ConfigReader::get_duration(const toml::table& t, std::string_view key,
                                                   Duration min, const std::string& where) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  const auto* s = n->as_string();
  if (s == nullptr) {
    std::string hint;
    if (n->is_integer() || n->is_floating_point()) {
      std::ostringstream number;
      if (const auto* i = n->as_integer()) number << i->get();
      // A float of seconds becomes whole milliseconds: the parser takes no fractions.
      if (const auto* f = n->as_floating_point()) {
        // In range first: casting 1e300, inf or nan to an integer is undefined.
        const double ms = f->get() * 1000 + 0.5;
        number << (ms >= 0 && ms < 1e15 ? format_duration(Duration(static_cast<long long>(ms)))
                                        : std::string("10s"));
      } else {
        number << "s";
      }
      hint = " (write a string with a unit, e.g. \"" + number.str() + "\")";
    }
    error(n->source(), where + "'" + std::string(key) +
                           "' must be a duration string like \"250ms\", \"5s\" or \"10m\", not " +
                           std::string(type_name(*n)) + hint);
    return std::nullopt;
  }
  Result<Duration> d = parse_duration(s->get());
  if (!d) {
    error(n->source(), where + "'" + std::string(key) + "': " + d.error().message);
    return std::nullopt;
  }
  if (d->count() == 0) {
    error(n->source(), where + "'" + std::string(key) + "' must be greater than zero");
    return std::nullopt;
  }
  // Why 100 years: every duration ends up added to or subtracted from a time in nanoseconds
  // (64 bits, ±292 years); "200000000d" passed before and overflowed the journal window
  // (found by fuzz_config).
  if (*d > Duration(100LL * 365 * 86'400'000)) {
    error(n->source(),
          where + "'" + std::string(key) + "' must be at most 36500d, not \"" + s->get() + "\"");
    return std::nullopt;
  }
  if (*d < min) {
    error(n->source(), where + "'" + std::string(key) + "' must be at least " +
                           format_duration(min) + ", not \"" + s->get() + "\"");
    return std::nullopt;
  }
  return *d;
}

std::optional<Severity> ConfigReader::get_severity(const toml::node& n, const std::string& what) {
  const auto* s = n.as_string();
  if (s == nullptr) {
    error(n.source(), what + " must be a severity string \"SEV1\", \"SEV2\" or \"SEV3\", not " +
                          std::string(type_name(n)));
    return std::nullopt;
  }
  auto sev = parse_severity(s->get());
  if (!sev) {
    error(n.source(), what + ": unknown severity \"" + s->get() +
                          "\" (expected \"SEV1\", \"SEV2\" or \"SEV3\")");
  }
  return sev;
}

std::vector<std::string> ConfigReader::string_list(const toml::table& t, std::string_view one,
                                                   std::string_view many,
                                                   const std::string& where) {
  std::vector<std::string> out;
  if (!many.empty() && t.get(one) != nullptr && t.get(many) != nullptr) {
    error(t.get(many)->source(), where + "give either '" + std::string(one) + "' or '" +
                                     std::string(many) + "', not both");
  }
  for (std::string_view key : {one, many}) {
    if (key.empty()) continue;
    for (auto& item : string_items(t, key, where)) out.push_back(std::move(item.first));
  }
  return out;
}

void ConfigReader::unit_names(const toml::table& t, const std::vector<std::string>& names,
                              const std::string& where, UnitNamePatterns patterns) {
  const char* extra = patterns == UnitNamePatterns::globs ? ":-_.@\\*?[]" : ":-_.@\\";
  for (const std::string& u : names) {
    const auto dot = u.rfind('.');
    const bool chars_ok =
        !u.empty() && u.size() <= 255 && std::all_of(u.begin(), u.end(), [extra](unsigned char ch) {
          return std::isalnum(ch) || (ch != 0 && std::strchr(extra, ch) != nullptr);
        });
    const toml::node* n = t.get("unit") ? t.get("unit") : t.get("units");
    if (!chars_ok || dot == std::string::npos || dot == 0 || dot + 1 == u.size()) {
      error(n->source(),
            where + "\"" + u + "\" is not a unit name (e.g. \"nginx.service\", \"app@1.service\")");
    }
  }
}

std::vector<std::pair<std::string, const toml::node*>> ConfigReader::string_items(
    const toml::table& t, std::string_view key, const std::string& where) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  const toml::node* n = t.get(key);
  if (n == nullptr) return out;
  if (const auto* s = n->as_string()) {
    out.emplace_back(s->get(), n);
    return out;
  }
  const auto* arr = n->as_array();
  if (arr == nullptr) {
    error(n->source(), where + "'" + std::string(key) +
                           "' must be a string or an array of strings, not " +
                           std::string(type_name(*n)));
    return out;
  }
  for (const toml::node& item : *arr) {
    if (const auto* s = item.as_string()) {
      out.emplace_back(s->get(), &item);
    } else {
      error(item.source(), where + "'" + std::string(key) + "' items must be strings, not " +
                               std::string(type_name(item)));
    }
  }
  return out;
}

std::optional<Duration> ConfigReader::get_duration_max(const toml::table& t, std::string_view key,
                                                       Duration min, Duration max,
                                                       const std::string& where) {
  auto d = get_duration(t, key, min, where);
  if (d && *d > max) {
    error(t.get(key)->source(), where + "'" + std::string(key) + "' must be at most " +
                                    format_duration(max) + ", not \"" +
                                    t.get(key)->as_string()->get() + "\"");
    return std::nullopt;
  }
  return d;
}
}  // namespace vigil::config_internal
