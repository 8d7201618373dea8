// The block list (actions/block.h): the fuzz input is the content of STATE/blocks.json.
//  1. BlockList::from_json: an accepted list survives to_json and back unchanged; every entry is
//     found by its address, has since <= until and an offence from 1.
//  2. What the daemon does next: plan() and add() a repeat block (never refused for an incident
//     block_comment accepts), expired(), prune(), and reconcile() against a ufw listing that
//     holds a rule for every entry: each rule is either kept or deleted as expired, never both.
//  3. BlockList::load on the same bytes as a file (scratch directory, one file reused): a warning
//     exactly when from_json refused them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "actions/block.h"
#include "agent/incidents/timeline.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const std::string_view text = fuzz::as_text(data, size);
  const Result<BlockList> list = BlockList::from_json(text);

  static const std::string path = fuzz::scratch_dir() + "/blocks.json";
  fuzz::write_file(path, text);
  const BlockList::Loaded loaded = BlockList::load(path);
  FUZZ_CHECK(loaded.warning.empty() == list.has_value());
  if (!list) {
    FUZZ_CHECK(!list.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(loaded.list.to_json() == list->to_json());

  const std::string json = list->to_json();
  const Result<BlockList> back = BlockList::from_json(json);
  FUZZ_CHECK(back.has_value());
  FUZZ_CHECK(back->to_json() == json);
  FUZZ_CHECK(back->size() == list->size());

  // The daemon's clock, not the file's: plan() and prune() take Clock::now().
  const TimePoint now = TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 1 / 1));
  BlockList work = *list;
  UfwStatus ufw;
  ufw.active = true;
  for (const BlockEntry& e : list->entries()) {
    const BlockEntry* found = list->find(e.ip);
    FUZZ_CHECK(found != nullptr);
    FUZZ_CHECK(found->incident == e.incident);
    FUZZ_CHECK(e.since <= e.until);
    FUZZ_CHECK(e.offence >= 1);
    FUZZ_CHECK(valid_block_incident(e.incident));
    const Result<std::string> comment = block_comment(e.incident);
    FUZZ_CHECK(comment.has_value());
    FUZZ_CHECK(incident_of_comment(*comment) == e.incident);
    FUZZ_CHECK(ufw_block_argv(e.ip, *comment).has_value());
    ufw.rules.push_back(UfwRule{e.ip, *comment, e.incident, e.ip.family == IpAddress::Family::v6});

    const int offences = list->offences(e.ip, now);
    FUZZ_CHECK(offences >= 0);
    const BlockEntry next = list->plan(e.ip, e.incident, now, BlockSettings{});
    FUZZ_CHECK(next.offence == offences + 1);
    FUZZ_CHECK(next.since <= next.until);
    FUZZ_CHECK(work.add(next));
    FUZZ_CHECK(work.find(e.ip)->until == next.until);
  }
  (void)list->expired(now);
  const ReconcilePlan plan = reconcile(*list, ufw, now, std::chrono::hours(1));
  FUZZ_CHECK(plan.to_delete.size() + plan.keep.size() + plan.forget.size() == list->size());
  for (const ReconcilePlan::Delete& d : plan.to_delete) {
    FUZZ_CHECK(d.why == ReconcilePlan::Delete::Why::expired);
  }
  FUZZ_CHECK(plan.forget.empty());
  FUZZ_CHECK(plan.adopt.empty());  // every rule came from the list

  work.prune(now);
  const Result<BlockList> saved = BlockList::from_json(work.to_json());
  FUZZ_CHECK(saved.has_value());
  // Not byte-equal: add() appends to the history unsorted when the clock is behind the file's
  // times (from_json sorts), see the report. The same list, though, and stable from here on.
  FUZZ_CHECK(BlockList::from_json(saved->to_json())->to_json() == saved->to_json());
  FUZZ_CHECK(saved->size() == work.size());
  for (const BlockEntry& e : work.entries()) {
    FUZZ_CHECK(saved->offences(e.ip, now) == work.offences(e.ip, now));
    FUZZ_CHECK(saved->find(e.ip) != nullptr && saved->find(e.ip)->until == e.until);
  }
  return 0;
}
