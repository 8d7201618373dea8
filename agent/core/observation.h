// The values that flow from probes to the classifier and on: Observation -> Finding.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/duration.h"

namespace vigil {

using Clock = std::chrono::system_clock;
using TimePoint = Clock::time_point;

// Incident severity, as the on-call world uses it. Lower number = worse.
enum class Severity { sev1 = 1, sev2 = 2, sev3 = 3 };

std::string_view to_string(Severity s);
// Parses "SEV1".."SEV3" (case-insensitive). Anything else is nullopt.
std::optional<Severity> parse_severity(std::string_view text);
// The worse of two severities (SEV1 is worse than SEV2).
inline Severity worse(Severity a, Severity b) {
  return static_cast<int>(a) < static_cast<int>(b) ? a : b;
}

// One result of a check, as the flap detector and the release history count it.
enum class Health { healthy, failing };
// What a flap detector reports: a check started or stopped flapping.
enum class Flapping { started, stopped };

// Why an observation failed. Each kind maps to a severity through the check's rules.
enum class FailureKind {
  none,         // the probe passed
  refused,      // connection refused: nothing listens
  timeout,      // no complete answer within the check's timeout
  reset,        // connection reset / closed mid-answer
  dns,          // name did not resolve
  tls,          // TLS handshake or certificate verification failed
  protocol,     // not a valid HTTP answer (garbage status line, ...)
  http_5xx,     // server error status
  http_4xx,     // client error status not in the expected set
  http_status,  // any other status not in the expected set
  body,         // body did not contain / match what was expected
  error,        // anything else (local resource error, ...)
  // systemd units
  unit_failed,    // the unit failed, or crashed and waits to be restarted (auto-restart)
  unit_inactive,  // not in the expected state (e.g. stopped while expected active)
  restart_loop,   // restarted again and again by its own Restart=
  start_limit,    // start-limit-hit: systemd gave up restarting it
  not_found,      // no such unit: a config error, not a crash
  // journal
  journal_match,  // a journal rule fired (count matches within window)
};
inline constexpr std::size_t kFailureKindCount =
    static_cast<std::size_t>(FailureKind::journal_match) + 1;

std::string_view to_string(FailureKind k);
// Parses the names used in `[check.severity]` (the to_string names plus "latency_warn" and
// "latency_crit", which are handled by the caller).
std::optional<FailureKind> parse_failure_kind(std::string_view text);

// Evidence an on-call engineer reads to triage in seconds.
struct HttpEvidence {
  long status = 0;         // 0 when no status line was received
  Duration total{0};       // whole request
  Duration connect{0};     // TCP connect done
  Duration tls{0};         // TLS handshake done (0 for plain HTTP)
  Duration first_byte{0};  // first byte of the answer
  std::string body_head;   // first bytes of the body, for the page
  std::string error;       // curl's error text, empty on success
  int attempts = 0;        // 1 + confirmation re-probes made; 0: not HTTP
};

// One result of one probe run (including its confirmation re-probes).
struct Observation {
  std::string check;
  std::string key;  // what within the check: a unit, a captured IP; or ""
  TimePoint at{};
  FailureKind failure = FailureKind::none;
  std::string summary;  // one line: "HTTP 503 in 12ms", "connection refused"
  Duration latency{0};  // what latency rules compare
  HttpEvidence http;
  std::vector<std::string> evidence;  // e.g. the unit's last journal lines, the matched line

  bool ok() const { return failure == FailureKind::none; }
};

// What the classifier says when a check's state changes.
struct Finding {
  // changed: same severity, but a different kind of failure (crash -> restart loop -> start
  // limit; refused -> 503): what is wrong changed, and the on-call engineer should know.
  enum class Kind { firing, severity_changed, changed, recovered };
  std::string check;
  std::string key;  // as in Observation
  Kind kind = Kind::firing;
  Severity severity = Severity::sev3;  // current (for recovered: the last one)
  std::optional<Severity> previous;    // for severity_changed
  std::string reason;                  // human-readable why
  TimePoint at{};
  TimePoint since{};        // when the check started firing
  Observation observation;  // the observation that caused it
};

std::string_view to_string(Finding::Kind k);

}  // namespace vigil
