// The ceiling for journal scanning: the least any reader must do, with the same match as
// vigil's check. sd_journal_next + sd_journal_get_data("MESSAGE"), nothing else.
// Usage: journal_ceiling DIR [SYSLOG_IDENTIFIER]
#include <systemd/sd-journal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: journal_ceiling DIR [IDENTIFIER]\n");
    return 2;
  }
  sd_journal* j = nullptr;
  if (sd_journal_open_directory(&j, argv[1], 0) < 0) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 1;
  }
  if (argc > 2) {
    const std::string m = std::string("SYSLOG_IDENTIFIER=") + argv[2];
    sd_journal_add_match(j, m.data(), m.size());
  }
  const auto t0 = std::chrono::steady_clock::now();
  unsigned long long n = 0, bytes = 0;
  sd_journal_seek_head(j);
  while (sd_journal_next(j) > 0) {
    const void* data = nullptr;
    size_t len = 0;
    if (sd_journal_get_data(j, "MESSAGE", &data, &len) >= 0) bytes += len;
    ++n;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("ceiling: %llu entries in %.3f s = %.0f entries/s (%llu message bytes)\n", n, s,
              static_cast<double>(n) / s, bytes);
  sd_journal_close(j);
  return 0;
}
