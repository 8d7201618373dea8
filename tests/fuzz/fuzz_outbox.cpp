// The outbox file (notify/outbox.h): the fuzz input is the content of DIR/outbox.jsonl, written to
// a scratch directory (one file, reused) and replayed by Outbox::load, which then compacts it.
// Invariants: load fails only for an unreadable file; queued pages have distinct, increasing,
// non-zero seqs; the compacted file loads again with nothing skipped and the same pages and
// refs; a page added after the load gets a seq no page ever had (a seq must never name two
// pages), is found by it, and dropping to stay within `max` never drops a SEV1, a resolve or an
// acknowledge.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "notify/outbox.h"
#include "notify/page.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  static const std::string dir = fuzz::scratch_dir() + "/state";
  std::filesystem::create_directories(dir);
  fuzz::write_file(dir + "/outbox.jsonl", fuzz::as_text(data, size));

  Outbox box(dir, 3);
  const Result<Outbox::LoadReport> report = box.load();
  FUZZ_CHECK(report.has_value());
  FUZZ_CHECK(report->pages == box.size());
  FUZZ_CHECK(static_cast<std::size_t>(report->skipped) <= report->warnings.size());
  std::uint64_t last = 0;
  std::vector<std::string> before;
  for (const Page* p : box.queued()) {
    FUZZ_CHECK(p->seq > last);
    last = p->seq;
    FUZZ_CHECK(box.find(p->seq) == p);
    before.push_back(page_to_json(*p));
  }
  FUZZ_CHECK(box.size(Severity::sev1) + box.size(Severity::sev2) + box.size(Severity::sev3) ==
             box.size());
  const TimePoint now = TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 1 / 1));
  (void)box.due(now);
  (void)box.next_due();
  (void)box.oldest();

  // The compacted file: clean, and the same queue.
  Outbox again(dir, 3);
  const Result<Outbox::LoadReport> second = again.load();
  FUZZ_CHECK(second.has_value());
  FUZZ_CHECK(second->skipped == 0);
  std::vector<std::string> after;
  for (const Page* p : again.queued()) {
    after.push_back(page_to_json(*p));
    FUZZ_CHECK(again.ref(p->target, p->incident) == box.ref(p->target, p->incident));
  }
  FUZZ_CHECK(after == before);

  Page fresh;
  fresh.target = "pagerduty";
  fresh.notifier = "pagerduty";
  fresh.action = PageAction::update;
  fresh.incident = "20260101-000000-fuzz";
  fresh.severity = Severity::sev3;
  fresh.at = now;
  const Result<Outbox::Added> added = box.add({fresh});
  FUZZ_CHECK(added.has_value());
  FUZZ_CHECK(added->seqs.size() == 1);
  const std::uint64_t seq = added->seqs.front();
  FUZZ_CHECK(seq > last);
  bool fresh_dropped = false;
  for (const Page& d : added->dropped) {
    FUZZ_CHECK(d.severity != Severity::sev1);
    FUZZ_CHECK(d.action != PageAction::resolve && d.action != PageAction::acknowledge);
    fresh_dropped = fresh_dropped || d.seq == seq;
  }
  if (!fresh_dropped) {
    const Page* found = box.find(seq);
    FUZZ_CHECK(found != nullptr);
    FUZZ_CHECK(found->incident == fresh.incident && found->target == fresh.target);
  }
  return 0;
}
