// The TOML reader every section parser of vigil.toml shares: errors collected with the
// file:line:col of their node, typed getters whose messages say what was expected and what was
// given, the unknown-key check with its "did you mean", and the name checks of several sections.
//
// Shared by agent/config/*.cpp and the kinds' parsers in the plugin folders (probes/, actions/,
// notify/ config.cpp, through kinds.h); every other file reads the typed config.h.
#pragma once

#include <toml++/toml.h>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config/config.h"

namespace vigil::config_internal {

// "a string", "an integer", ...: what a node is, for "must be X, not Y" messages.
std::string_view type_name(const toml::node& n);

// The candidate closest to `word`, if it is a likely typo of it (edit distance <= 2); else "".
std::string_view closest(std::string_view word, std::span<const std::string_view> candidates);

// "FILE:LINE:COL", for "first defined at ..." in messages about duplicates.
std::string position_text(const SourcePos& p);

// A team or a service, as a check's `team` and `service` are written.
bool team_name_ok(std::string_view v);

// Unit names as systemd writes them; unit checks also take systemd's glob patterns.
enum class UnitNamePatterns { no, globs };

class ConfigReader {
 public:
  explicit ConfigReader(std::string file) : file_(std::move(file)) {}

  SourcePos pos(const toml::source_region& r) const;
  void error(const toml::source_region& r, std::string message);
  std::vector<ConfigError> take_errors() { return std::move(errors_); }

  // Reports every key of `table` not in `allowed`, suggesting the closest allowed key.
  void check_keys(const toml::table& table, std::initializer_list<std::string_view> allowed,
                  const std::string& where);
  void check_keys(const toml::table& table, std::span<const std::string_view> allowed,
                  const std::string& where);
  // Reports `key` as unknown, suggesting the closest of `allowed`.
  void unknown_key(const toml::key& key, std::span<const std::string_view> allowed,
                   const std::string& where);

  // Each getter returns nullopt when the key is absent or its value is wrong (reported).
  std::optional<std::string> get_string(const toml::table& t, std::string_view key,
                                        const std::string& where);
  std::optional<bool> get_bool(const toml::table& t, std::string_view key,
                               const std::string& where);
  std::optional<int> get_int(const toml::table& t, std::string_view key, int low, int high,
                             const std::string& where);
  // A duration string; `min` is the smallest accepted value.
  std::optional<Duration> get_duration(const toml::table& t, std::string_view key, Duration min,
                                       const std::string& where);
  // A duration between `min` and `max`.
  std::optional<Duration> get_duration_max(const toml::table& t, std::string_view key, Duration min,
                                           Duration max, const std::string& where);
  // "SEV1", "SEV2" or "SEV3"; `what` starts the message ("check 'x': severity.http_5xx").
  std::optional<Severity> get_severity(const toml::node& n, const std::string& what);

  // A string or an array of strings under `one` or `many` (e.g. unit / units); either key takes
  // either form. `many` may be empty when there is only one spelling.
  std::vector<std::string> string_list(const toml::table& t, std::string_view one,
                                       std::string_view many, const std::string& where);
  // A string or an array of strings under `key`, each with its node (for the position of an
  // error about one item). Messages as string_list's.
  std::vector<std::pair<std::string, const toml::node*>> string_items(const toml::table& t,
                                                                      std::string_view key,
                                                                      const std::string& where);

  // Unit names as systemd writes them: "nginx.service", "app@1.service", "backup.timer"; the
  // error is placed at the table's `unit` (else `units`) key.
  void unit_names(const toml::table& t, const std::vector<std::string>& names,
                  const std::string& where, UnitNamePatterns patterns);

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
};

}  // namespace vigil::config_internal
