#include "agent/sys/log.h"

#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace vigil::sys {
namespace {

LogSink g_sink = LogSink::stderr_text;
bool g_verbose = false;

// systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connected to stdout/stderr; honour it
// only if stderr is still that stream (sd_journal_print(3), "JOURNAL_STREAM").
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::crit:
      return "CRIT";
    case LogLevel::err:
      return "ERROR";
    case LogLevel::warning:
      return "WARN";
    case LogLevel::notice:
      return "NOTICE";
    case LogLevel::info:
      return "INFO";
    case LogLevel::debug:
      return "DEBUG";
  }
  return "?";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03lld", buf, static_cast<long long>(ms));
  return out;
}

}  // namespace

bool debug_enabled() { return g_verbose; }

void init_logging(Verbosity verbosity) {
  g_verbose = verbosity == Verbosity::debug;
  g_sink = stderr_is_journal() ? LogSink::journal : LogSink::stderr_text;
}

LogSink log_sink() { return g_sink; }

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (level == LogLevel::debug && !g_verbose) return;
  if (g_sink == LogSink::journal) {
    std::vector<std::string> owned;
    owned.reserve(fields.size() + 3);
    owned.push_back("MESSAGE=" + std::string(message));
    owned.push_back("PRIORITY=" + std::to_string(static_cast<int>(level)));
    owned.push_back("SYSLOG_IDENTIFIER=vigil");
    for (const LogField& f : fields) owned.push_back(std::string(f.name) + "=" + f.value);
    std::vector<iovec> iov;
    iov.reserve(owned.size());
    for (std::string& s : owned) iov.push_back(iovec{s.data(), s.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) return;
    // journald unreachable: fall through to stderr so the message is not lost.
  }
  std::string line =
      timestamp() + " " + std::string(level_name(level)) + " " + std::string(message) + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace vigil::sys
