#include "agent/sys/journal_tail.h"

#include <systemd/sd-journal.h>

#include <algorithm>
#include <ctime>

namespace vigil::sys {
namespace {

// Why 512: a journal line in a page is evidence, not a log archive.
constexpr std::size_t kMaxLineBytes = 512;

std::string field(sd_journal* j, const char* name) {
  const void* data = nullptr;
  size_t len = 0;
  if (sd_journal_get_data(j, name, &data, &len) < 0) return {};
  const std::size_t prefix = std::char_traits<char>::length(name) + 1;  // "MESSAGE="
  if (len < prefix) return {};
  std::string v(static_cast<const char*>(data) + prefix, std::min(len - prefix, kMaxLineBytes));
  for (char& c : v) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return v;
}

}  // namespace

std::vector<std::string> journal_tail(const std::string& unit, int lines) {
  std::vector<std::string> out;
  sd_journal* j = nullptr;
  if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM) < 0) return out;
  // The unit's own output, and what systemd said about it (UNIT= on PID 1's messages).
  const std::string own = "_SYSTEMD_UNIT=" + unit;
  const std::string about = "UNIT=" + unit;
  sd_journal_add_match(j, own.data(), own.size());
  sd_journal_add_disjunction(j);
  sd_journal_add_match(j, about.data(), about.size());
  sd_journal_add_match(j, "_PID=1", 0);
  if (sd_journal_seek_tail(j) >= 0) {
    for (int i = 0; i < lines && sd_journal_previous(j) > 0; ++i) {
      uint64_t usec = 0;
      sd_journal_get_realtime_usec(j, &usec);
      const std::time_t t = static_cast<std::time_t>(usec / 1'000'000);
      std::tm tm{};
      localtime_r(&t, &tm);
      char stamp[16];
      std::strftime(stamp, sizeof stamp, "%H:%M:%S", &tm);
      out.push_back(std::string(stamp) + " " + field(j, "MESSAGE"));
    }
  }
  sd_journal_close(j);
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace vigil::sys
