// The mitigation ledger (agent/mitigate/mitigation.h): the fuzz input is the content of
// STATE/mitigations.json, read by MitigationLedger::from_json (Daemon::load_mitigation_state
// passes it the whole file). Invariants: it returns an error for what it cannot read and never
// throws (the daemon does not catch); an accepted ledger survives to_json and back unchanged; the
// queries the guards make answer sanely.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "agent/mitigate/mitigation.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const Result<MitigationLedger> ledger = MitigationLedger::from_json(fuzz::as_text(data, size));
  if (!ledger) {
    FUZZ_CHECK(!ledger.error().message.empty());
    return 0;
  }
  const std::string json = ledger->to_json();
  const Result<MitigationLedger> back = MitigationLedger::from_json(json);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(back->to_json() == json);

  const TimePoint now = TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 1 / 1));
  const Duration hour = std::chrono::hours(1);
  FUZZ_CHECK(ledger->blocks_within(hour, now) >= 0);
  for (const auto& [key, circuit] : ledger->circuits()) {
    FUZZ_CHECK(ledger->circuit(key) == &circuit);
  }
  MitigationLedger work = *ledger;
  work.ran("restart:app", "app.service", now);
  FUZZ_CHECK(work.runs_within("restart:app", "app.service", hour, now) >= 1);
  FUZZ_CHECK(work.last_run("restart:app", "app.service").has_value());
  work.unrun("restart:app", "app.service", now);
  work.prune(std::chrono::hours(24), now);
  FUZZ_CHECK(MitigationLedger::from_json(work.to_json()).has_value());
  return 0;
}
