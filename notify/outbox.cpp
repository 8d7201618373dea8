#include "notify/outbox.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>
#include <utility>

#include "agent/core/json.h"
#include "agent/core/text.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"

namespace vigil {

namespace {
// Seqs a file may hold. Why 2^53: a million pages a second for 285 years, and exact in every
// JSON reader; a larger one is corruption, and at 2^64 - 1, max_seq + 1 would wrap next_seq_ to 0
// and new pages would reuse queued seqs (found by fuzz_outbox).
constexpr std::uint64_t kMaxSeq = std::uint64_t{1} << 53;
}  // namespace
namespace {

using Json = nlohmann::json;
// Insertion order: "v" and "op" first, the file is read by people too.
using OrderedJson = nlohmann::ordered_json;

// The record format version this vigil writes and reads; newer records are skipped.
constexpr int kVersion = 1;

// Why 100: compaction rewrites the whole file; the slack keeps a small outbox from being
// rewritten every few done records, and bounds the dead lines a load replays to live + 100.
constexpr std::size_t kCompactSlack = 100;

constexpr std::string_view kSuperseded = "superseded";
constexpr std::string_view kDropped = "dropped: outbox full";

std::string dump_line(const OrderedJson& j) {
  // replace: a done reason can quote a receiver's answer (any bytes); never throw on it.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace) + '\n';
}

std::string add_record(const Page& p) {
  // page_to_json is already one line of valid JSON: spliced in, not parsed and dumped again.
  return R"({"v":1,"op":"add","page":)" + page_to_json(p) + "}\n";
}

std::string done_record(std::uint64_t seq, std::string_view why) {
  OrderedJson j;
  j["v"] = kVersion;
  j["op"] = "done";
  j["seq"] = seq;
  j["why"] = std::string(why);
  return dump_line(j);
}

std::string ref_record(const std::string& target, const std::string& incident,
                       const std::string& id) {
  OrderedJson j;
  j["v"] = kVersion;
  j["op"] = "ref";
  j["target"] = target;
  j["incident"] = incident;
  j["id"] = id;
  return dump_line(j);
}

// Alertmanager peers are named "NAME#N" (notify/page.h).
bool state_based(const std::string& target) { return target.find('#') != std::string::npos; }

bool firing(const Page& p) {
  return p.action == PageAction::trigger || p.action == PageAction::update;
}

// Whether the new page `fresh` replaces the queued, not-in-flight page `old` of the same
// (target, incident). Alertmanager holds state, not events: a newer firing snapshot says all an
// older firing one did. A resolve never replaces the firing page before it: an incident that
// began and ended while Alertmanager was unreachable must still reach it as fired, then
// resolved, or nobody would ever hear of it. Event targets (PagerDuty, OnCall, webhooks,
// statuspage) see every trigger, resolve, acknowledge and change; only a newer update makes an
// older, unsent update pointless.
bool supersedes(const Page& fresh, const Page& old) {
  if (state_based(fresh.target)) return firing(fresh) && firing(old);
  return fresh.action == PageAction::update && old.action == PageAction::update;
}

}  // namespace

Outbox::Outbox(std::string dir, std::size_t max) : dir_(std::move(dir)), max_(max) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  path_ = dir_ + "/outbox.jsonl";
}

bool Outbox::in_flight(std::uint64_t seq) const { return in_flight_.count(seq) != 0; }

std::vector<const Page*> Outbox::queued() const {
  std::vector<const Page*> out;
  out.reserve(pages_.size());
  for (const auto& [seq, p] : pages_) out.push_back(&p);
  return out;
}

Result<Outbox::LoadReport> Outbox::load() {
  Result<std::optional<std::string>> read = sys::read_regular_file(path_, sys::IfAbsent::nullopt);
  if (!read) return read.error();
  pages_.clear();
  in_flight_.clear();
  refs_.clear();
  dead_records_ = 0;
  compact_retry_at_ = 0;
  LoadReport report;
  if (!read->has_value()) return report;  // nothing written yet: an empty outbox
  const std::string& data = **read;

  std::uint64_t max_seq = 0;
  std::size_t records = 0;  // non-blank lines: what compaction would rewrite or remove
  for (const LogLine& l : log_lines(data)) {
    const int line_no = l.number;
    const std::string_view line = l.text;
    const bool torn = l.torn;
    ++records;
    const std::string where = path_ + ":" + std::to_string(line_no) + ": ";
    const auto skip = [&](const std::string& why) {
      ++report.skipped;
      report.warnings.push_back(
          where + (torn ? "torn last line (no newline), skipped: " : "unreadable line, skipped: ") +
          why);
    };

    // A last line without its newline is kept if it parses: a prefix of a JSON object is never
    // a whole object, so only the newline was lost.
    Result<Json> parsed = parse_json(line);
    if (!parsed) {
      skip(parsed.error().message);
      continue;
    }
    const Json& j = *parsed;
    if (!j.is_object()) {
      skip("not a JSON object");
      continue;
    }
    const auto v = j.find("v");
    if (v == j.end() || !v->is_number_integer()) {
      skip("no \"v\"");
      continue;
    }
    if (v->get<std::int64_t>() > kVersion) {
      // Written by a newer vigil (a downgrade): its meaning is unknown here. Skipped, and gone
      // after the compaction below; what this vigil still holds is delivered at least once.
      ++report.skipped;
      report.warnings.push_back(where + "record version " + v->dump() +
                                " is newer than this vigil's (" + std::to_string(kVersion) +
                                "), skipped");
      continue;
    }
    if (v->get<std::int64_t>() < kVersion) {
      skip("unknown version " + v->dump());
      continue;
    }
    const auto op = j.find("op");
    if (op == j.end() || !op->is_string()) {
      skip("no \"op\"");
      continue;
    }
    const std::string& kind = op->get_ref<const std::string&>();
    if (kind == "add") {
      const auto page = j.find("page");
      if (page == j.end() || !page->is_object()) {
        skip("\"page\" is not an object");
        continue;
      }
      Result<Page> p = page_from_json(page->dump());
      if (!p) {
        skip(p.error().message);
        continue;
      }
      if (p->seq == 0 || p->seq > kMaxSeq) {
        skip(p->seq == 0 ? "page without a seq" : "seq beyond 2^53");
        continue;
      }
      if (pages_.count(p->seq) != 0) {
        skip("seq " + std::to_string(p->seq) + " queued twice");
        continue;
      }
      max_seq = std::max(max_seq, p->seq);
      const std::uint64_t seq = p->seq;
      pages_.emplace(seq, std::move(*p));
    } else if (kind == "done") {
      const auto seq = j.find("seq");
      if (seq == j.end() || !seq->is_number_unsigned() || seq->get<std::uint64_t>() > kMaxSeq) {
        skip("\"seq\" is not an integer from 0 to 2^53");
        continue;
      }
      // A done record outlives its page's add (until compaction): its seq still counts.
      max_seq = std::max(max_seq, seq->get<std::uint64_t>());
      pages_.erase(seq->get<std::uint64_t>());
    } else if (kind == "ref") {
      const auto target = j.find("target");
      const auto incident = j.find("incident");
      const auto id = j.find("id");
      if (target == j.end() || !target->is_string() || incident == j.end() ||
          !incident->is_string() || id == j.end() || !id->is_string()) {
        skip("a ref needs string \"target\", \"incident\" and \"id\"");
        continue;
      }
      auto key = std::make_pair(target->get<std::string>(), incident->get<std::string>());
      if (id->get_ref<const std::string&>().empty()) {
        refs_.erase(key);
      } else {
        refs_[std::move(key)] = id->get<std::string>();
      }
    } else {
      skip("unknown op \"" + kind.substr(0, 64) + "\"");
      continue;
    }
  }
  next_seq_ = std::max(next_seq_, max_seq + 1);
  dead_records_ = records - std::min(records, pages_.size() + refs_.size());
  report.pages = pages_.size();

  // At load, always: a restart after a crash is the moment the torn and unreadable lines go.
  // A failure is not fatal: the file is still whole lines, appends go on after it.
  if (Result<bool> c = compact(); !c) {
    report.warnings.push_back(path_ + ": not compacted: " + c.error().message);
  }
  return report;
}

Result<Outbox::Added> Outbox::add(std::vector<Page> pages) {
  Added out;
  if (pages.empty()) return out;
  const std::uint64_t first = next_seq_;
  for (std::size_t i = 0; i < pages.size(); ++i) pages[i].seq = first + i;

  // Planned first, then written, then applied (also when the write failed: see not_durable).
  std::map<std::uint64_t, std::string_view> removed;  // seq -> why
  const auto idle = [&](const Page& q) { return !in_flight(q.seq) && removed.count(q.seq) == 0; };
  for (std::size_t i = 0; i < pages.size(); ++i) {
    Page& fresh = pages[i];
    const auto consider = [&](const Page& old) {
      if (old.target != fresh.target || old.incident != fresh.incident || !idle(old)) return;
      if (!supersedes(fresh, old)) return;
      removed.emplace(old.seq, kSuperseded);
      ++out.superseded;
      // The target still holds what it had before `old` (never sent): old's previous severity
      // if it had one, else old's own. The replacement resolves that alert if its severity
      // differs (labels are an Alertmanager alert's identity).
      if (state_based(fresh.target)) {
        const Severity held = old.previous.value_or(old.severity);
        fresh.previous = held != fresh.severity ? std::optional<Severity>(held) : std::nullopt;
      }
    };
    for (const auto& [seq, old] : pages_) consider(old);
    for (std::size_t k = 0; k < i; ++k) consider(pages[k]);
  }

  // Bounded: the oldest idle SEV3, then SEV2 (oldest first: the newest snapshot of a low-severity
  // incident is worth more than its first). A dropped trigger can leave a later page of the same
  // (target, incident) queued, an update or resolve of an incident the target never heard of:
  // accepted. Dropping whole incidents instead would lose the newest facts, and such a page is
  // at worst refused (permanent, logged) or ignored; Alertmanager takes any snapshot as the alert.
  std::size_t live = pages_.size() + pages.size() - removed.size();
  // A resolve or acknowledge is never dropped: without it the target's incident stays open
  // forever, since vigil's timeline already says it was sent. Updates go before triggers.
  const auto droppable = [](const Page& q, bool updates_only) {
    if (q.action == PageAction::resolve || q.action == PageAction::acknowledge) return false;
    return !updates_only || q.action == PageAction::update;
  };
  const auto oldest_idle = [&](Severity s, bool updates_only) -> const Page* {
    for (const auto& [seq, q] : pages_) {
      if (q.severity == s && idle(q) && droppable(q, updates_only)) return &q;
    }
    for (const Page& q : pages) {
      if (q.severity == s && idle(q) && droppable(q, updates_only)) return &q;
    }
    return nullptr;
  };
  while (live > max_) {
    const Page* victim = nullptr;
    for (const Severity s : {Severity::sev3, Severity::sev2}) {
      for (const bool updates_only : {true, false}) {
        if (victim == nullptr) victim = oldest_idle(s, updates_only);
      }
    }
    if (victim == nullptr) break;  // only SEV1, resolves, acks and pages in flight: grow
    removed.emplace(victim->seq, kDropped);
    out.dropped.push_back(*victim);
    --live;
  }

  std::string data;
  for (const Page& p : pages) data += add_record(p);
  for (const auto& [seq, why] : removed) data += done_record(seq, why);
  // Advanced before the write: a failed write may still have reached the disk (a failed
  // truncate), and a seq must never name two pages.
  next_seq_ = first + pages.size();
  if (Result<bool> w = append(data); !w) {
    out.not_durable = w.error().message;
    unsaved_ = true;
  }

  for (const auto& [seq, why] : removed) pages_.erase(seq);
  for (Page& p : pages) {
    out.seqs.push_back(p.seq);
    if (removed.count(p.seq) == 0) pages_.emplace(p.seq, std::move(p));
  }
  dropped_total_ += out.dropped.size();
  dead_records_ += 2 * removed.size();  // each one's add and its done
  if (unsaved_ && out.not_durable.empty()) {
    (void)persist();  // an earlier write failed and this one worked: the disk has room again
  } else {
    maybe_compact();
  }
  return out;
}

Result<bool> Outbox::persist() {
  if (!unsaved_) return true;
  Result<bool> w = compact();
  if (w) unsaved_ = false;
  return w;
}

std::vector<const Page*> Outbox::due(TimePoint now) const {
  std::vector<const Page*> out;
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const auto& [seq, p] : pages_) {
    // Only the group's oldest page may go: in flight or waiting, it holds back the rest.
    if (!seen.emplace(p.target, p.incident).second) continue;
    if (!in_flight(seq) && p.next_try <= now) out.push_back(&p);
  }
  return out;
}

std::optional<TimePoint> Outbox::next_due() const {
  // Heads only, as due() sees them: a page waiting behind its group's head is not due at its
  // own next_try (its default, the epoch, would wake the loop for nothing, again and again).
  std::optional<TimePoint> out;
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const auto& [seq, p] : pages_) {
    if (!seen.emplace(p.target, p.incident).second) continue;
    if (in_flight(seq)) continue;
    if (!out || p.next_try < *out) out = p.next_try;
  }
  return out;
}

void Outbox::begin(std::uint64_t seq) {
  if (pages_.count(seq) != 0) in_flight_[seq] = true;
}

void Outbox::retry(std::uint64_t seq, TimePoint next_try, std::string error) {
  const auto it = pages_.find(seq);
  if (it == pages_.end()) return;
  in_flight_.erase(seq);
  ++it->second.attempts;
  it->second.next_try = next_try;
  it->second.last_error = std::move(error);
}

std::size_t Outbox::wake(const std::string& target, TimePoint now) {
  std::size_t n = 0;
  for (auto& [seq, p] : pages_) {
    if (p.target != target || in_flight(seq) || p.next_try <= now) continue;
    p.next_try = now;
    ++n;
  }
  return n;
}

Result<bool> Outbox::done(std::uint64_t seq, const std::string& why) {
  const auto it = pages_.find(seq);
  if (it == pages_.end()) return false;  // already done (or never queued): nothing to record
  // Forgotten in memory even when the record cannot be written (disk full): the page must not
  // hold back its (target, incident) queue, resolves included. The file still holds it, so a
  // restart sends it again: at least once, as promised.
  Result<bool> w = append(done_record(seq, why));
  pages_.erase(it);
  in_flight_.erase(seq);
  if (!w) {
    unsaved_ = true;
    return w;
  }
  if (unsaved_) return persist();
  dead_records_ += 2;
  maybe_compact();
  return true;
}

Result<bool> Outbox::set_ref(const std::string& target, const std::string& incident,
                             const std::string& id) {
  if (id.empty()) return forget_ref(target, incident);
  auto key = std::make_pair(target, incident);
  const auto it = refs_.find(key);
  if (it != refs_.end() && it->second == id) return true;
  if (Result<bool> w = append(ref_record(target, incident, id)); !w) return w;
  if (it != refs_.end()) {
    it->second = id;
    ++dead_records_;  // the record it replaces
  } else {
    refs_.emplace(std::move(key), id);
  }
  maybe_compact();
  return true;
}

std::string Outbox::ref(const std::string& target, const std::string& incident) const {
  const auto it = refs_.find(std::make_pair(target, incident));
  return it == refs_.end() ? std::string() : it->second;
}

Result<bool> Outbox::forget_ref(const std::string& target, const std::string& incident) {
  const auto it = refs_.find(std::make_pair(target, incident));
  if (it == refs_.end()) return true;
  if (Result<bool> w = append(ref_record(target, incident, "")); !w) return w;
  refs_.erase(it);
  dead_records_ += 2;  // the ref record and this one
  maybe_compact();
  return true;
}

const Page* Outbox::find(std::uint64_t seq) const {
  const auto it = pages_.find(seq);
  return it == pages_.end() ? nullptr : &it->second;
}

std::size_t Outbox::size() const { return pages_.size(); }

std::size_t Outbox::size(Severity s) const {
  return static_cast<std::size_t>(std::count_if(
      pages_.begin(), pages_.end(), [s](const auto& entry) { return entry.second.severity == s; }));
}

std::optional<TimePoint> Outbox::oldest() const {
  std::optional<TimePoint> out;
  for (const auto& [seq, p] : pages_) {
    if (!out || p.at < *out) out = p.at;
  }
  return out;
}

Result<bool> Outbox::append(const std::string& lines) {
  // 0600: pages carry evidence lines.
  Result<sys::Appended> r = sys::append_lines(path_, lines, sys::IfMissing::create, 0600);
  if (!r) return r.error();
  return true;
}

Result<bool> Outbox::compact() {
  std::string data;
  for (const auto& [seq, p] : pages_) data += add_record(p);
  for (const auto& [key, id] : refs_) data += ref_record(key.first, key.second, id);
  // Seqs never repeat across restarts: if the newest seq is no longer queued, its done record
  // stays as the high-water mark load() reads (one line).
  const std::uint64_t last = next_seq_ - 1;
  const bool mark = last > 0 && (pages_.empty() || pages_.rbegin()->first < last);
  if (mark) data += done_record(last, "compacted (seq high-water mark)");

  if (Result<bool> r = sys::write_file_atomic(path_, data); !r) return r;
  dead_records_ = mark ? 1 : 0;
  return true;
}

void Outbox::maybe_compact() {
  if (dead_records_ <= pages_.size() + refs_.size() + kCompactSlack) return;
  // After a failure, wait for twice the dead records: a full or read-only disk must not cost a
  // whole rewrite on every page.
  if (dead_records_ < compact_retry_at_) return;
  // A failure is not the caller's: its records are durable, the file is only longer.
  compact_retry_at_ = compact() ? 0 : 2 * dead_records_;
}

}  // namespace vigil
