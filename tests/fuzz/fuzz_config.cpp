// parse_config on any text (what `vigil check-config` and a reload read). Invariants: nothing
// throws or crashes; a config comes back exactly when there is no error; errors are sorted by
// position and each says where and what; the lookups a valid config promises work. A valid
// config is then used the way the agent uses it first: each journal check gets a JournalScanner
// that scans a line and expires its window at a real time, and durations are formatted.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/config/config.h"
#include "agent/load_config.h"
#include "probes/journal.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const std::string path = "fuzz.toml";
  const LoadResult r = parse_config(fuzz::as_text(data, size), path);
  FUZZ_CHECK(r.config.has_value() == r.errors.empty());
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    const ConfigError& e = r.errors[i];
    FUZZ_CHECK(!e.message.empty());
    FUZZ_CHECK(!e.to_string().empty());
    if (i > 0) {
      const SourcePos& a = r.errors[i - 1].where;
      const SourcePos& b = e.where;
      FUZZ_CHECK(a.line < b.line || (a.line == b.line && a.column <= b.column) || a.file != b.file);
    }
  }
  if (!r.config) return 0;
  const Config& cfg = *r.config;

  for (const CheckConfig& c : cfg.checks) {
    FUZZ_CHECK(cfg.find_check(c.name) == &c);
    FUZZ_CHECK(!format_duration(c.interval).empty());
    FUZZ_CHECK(!format_duration(c.timeout).empty());
    for (const std::string& ref : c.mitigate) FUZZ_CHECK(cfg.find_action(ref) != nullptr);
    (void)c.severity.for_failure(FailureKind{});
    if (const JournalSettings* j = c.journal()) {
      FUZZ_CHECK(!j->patterns.empty());
      FUZZ_CHECK(j->count >= 1);
      (void)journal_filter(*j);
      // What the probe does with the first entries: scan, then expire on its tick.
      const TimePoint now = Clock::now();
      JournalScanner scanner(*j);
      const JournalScanner::Result hit =
          scanner.scan("Failed password for root from 192.0.2.7 port 22 ssh2", now);
      FUZZ_CHECK(hit.count <= j->count);
      (void)scanner.expire(now + std::chrono::seconds(1));
      (void)scanner.count(hit.key, now);
    }
  }
  for (const auto& [ref, a] : cfg.actions) {
    FUZZ_CHECK(a.ref() == ref);
    FUZZ_CHECK(cfg.find_action(ref) == &a);
  }
  for (const NotifyConfig& n : cfg.notify) FUZZ_CHECK(cfg.find_notify(n.name) == &n);
  for (const EscalationConfig& e : cfg.escalations) {
    for (const EscalationStep& s : e.steps) FUZZ_CHECK(cfg.find_notify(s.notify) != nullptr);
    (void)cfg.escalation_for(e.team);
  }
  for (const Cidr& allowed : cfg.mitigation.allow) FUZZ_CHECK(allowed.contains(allowed.base));
  return 0;
}
