// Logging: structured journal entries when systemd runs us (JOURNAL_STREAM names our stderr),
// readable lines on stderr otherwise.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace vigil::sys {

// syslog priorities, as journald stores them.
enum class LogLevel { crit = 2, err = 3, warning = 4, notice = 5, info = 6, debug = 7 };

struct LogField {
  std::string_view name;  // e.g. "VIGIL_CHECK"
  std::string value;
};

enum class LogSink { stderr_text, journal };

enum class Verbosity { normal, debug };

// Picks the sink: the journal when JOURNAL_STREAM matches our stderr, stderr otherwise.
// Verbosity::debug also logs debug messages.
void init_logging(Verbosity verbosity);
LogSink log_sink();
// True when debug messages are logged: callers on hot paths skip building them otherwise.
bool debug_enabled();

// Logs one message with optional structured fields (ignored on stderr, except that a
// MESSAGE_ID-free line still names the check and severity in its text).
void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

inline void log_info(std::string_view m) { log(LogLevel::info, m); }
inline void log_warning(std::string_view m) { log(LogLevel::warning, m); }
inline void log_error(std::string_view m) { log(LogLevel::err, m); }
inline void log_debug(std::string_view m) { log(LogLevel::debug, m); }

// Stable MESSAGE_IDs (128-bit, like systemd's catalog ids) so operators can filter with
// `journalctl MESSAGE_ID=...`.
inline constexpr std::string_view kMsgCheckFiring = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e1";
inline constexpr std::string_view kMsgCheckSeverity = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e2";
inline constexpr std::string_view kMsgCheckRecovered = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e3";
inline constexpr std::string_view kMsgConfigLoaded = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e4";
inline constexpr std::string_view kMsgConfigRejected = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e5";
inline constexpr std::string_view kMsgIncidentOpened = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e6";
inline constexpr std::string_view kMsgIncidentSeverity = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e7";
inline constexpr std::string_view kMsgIncidentResolved = "5f1ae5c0b3b94a64a1e2e0d5a3b1c7e8";

}  // namespace vigil::sys
