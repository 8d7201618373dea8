// vigil.toml: typed configuration, loaded with toml++ and validated as a whole.
//
// Validation collects *all* errors, each with the file:line:col of the offending node, so an
// operator fixes a broken file in one pass. Unknown keys are errors: a typo such as `intreval`
// must never be silently ignored.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "agent/duration.h"
#include "agent/observation.h"

namespace re2 {
class RE2;
}

namespace vigil {

struct SourcePos {
  std::string file;
  int line = 0;
  int column = 0;
};

struct ConfigError {
  SourcePos where;
  std::string message;
  // "FILE:LINE:COL: message" (systemd and compiler style, so editors can jump to it).
  std::string to_string() const;
};

enum class DryRun { no, yes };

struct AgentSettings {
  std::string hostname;  // defaults to gethostname()
  std::string state_dir = "/var/lib/vigil";
  DryRun dry_run = DryRun::no;
};

// An inclusive range of accepted HTTP status codes.
struct StatusRange {
  int low = 200;
  int high = 399;
  bool operator==(const StatusRange&) const = default;
};

enum class HttpMethod { get, head };

struct HttpSettings {
  std::string url;
  HttpMethod method = HttpMethod::get;
  std::vector<StatusRange> expect_status{{200, 399}};  // 2xx and redirects are healthy by default
  std::string body_contains;
  std::string body_regex;  // source text, for display and comparison
  std::shared_ptr<const re2::RE2> body_regex_compiled;
  std::vector<std::pair<std::string, std::string>> headers;
  bool verify_tls = true;  // on by default: a MITM is an incident too

  bool status_expected(long status) const;
};

// Severity per kind of failure, plus the two latency thresholds.
struct SeverityRules {
  // Indexed by FailureKind: a flat array, not a map, since a thousand checks each carry a copy.
  std::array<Severity, kFailureKindCount> on_failure{};
  Severity latency_warn = Severity::sev3;
  Severity latency_crit = Severity::sev2;

  // Defaults: a service that cannot be reached or answers 5xx is down for everyone (SEV1);
  // a wrong answer (4xx, unexpected status or body) is a broken feature (SEV2).
  static SeverityRules defaults();
  Severity for_failure(FailureKind k) const { return on_failure[static_cast<std::size_t>(k)]; }
  void set(FailureKind k, Severity s) { on_failure[static_cast<std::size_t>(k)] = s; }
};

struct CheckConfig {
  std::string name;
  std::string probe;  // "http"
  Duration interval{10'000};
  Duration timeout{5'000};
  int fail_after = 1;
  int recover_after = 2;
  int confirm = 2;  // extra re-probes before a failure counts
  Duration confirm_interval{200};
  std::optional<Duration> latency_warn;
  std::optional<Duration> latency_crit;
  SeverityRules severity = SeverityRules::defaults();
  std::variant<HttpSettings> settings;
  SourcePos where;

  const HttpSettings* http() const { return std::get_if<HttpSettings>(&settings); }
};

struct Config {
  std::string path;
  AgentSettings agent;
  std::vector<CheckConfig> checks;

  const CheckConfig* find_check(std::string_view name) const;
};

struct LoadResult {
  std::optional<Config> config;     // set only when errors is empty
  std::vector<ConfigError> errors;  // sorted by position
};

// Parses and validates TOML text; `path` is used in error messages only.
LoadResult parse_config(std::string_view text, const std::string& path);
// Reads and validates a file. An unreadable file is one error at line 0.
LoadResult load_config_file(const std::string& path);

// The default config location.
inline constexpr const char* kDefaultConfigPath = "/etc/vigil/vigil.toml";

}  // namespace vigil
