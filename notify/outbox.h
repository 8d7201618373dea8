// The outbox (issue 7): every page is written durably before it is sent, delivered at least once,
// in order per (target, incident): a resolve never overtakes its trigger.
//
// On disk: DIR/outbox.jsonl, append-only, one JSON object per line:
//   {"v":1,"op":"add","page":{...page_to_json...}}   a page queued (seq inside)
//   {"v":1,"op":"done","seq":N,"why":"delivered"}     delivered, skipped, superseded or dropped
//   {"v":1,"op":"ref","target":T,"incident":I,"id":X} a remote id (statuspage incident id)
// Each add()/done() batch is one write() and one fdatasync, like the incident timelines. A crash
// leaves at most a torn last line, which load() skips (reported) and the next append starts a
// fresh line after. The file is rewritten compactly (temp file, fsync, rename, fsync dir) when
// more than half of it is dead records, and at load.
//
// Bounded: at most `max` pages. Adding beyond it drops the oldest SEV3 update, then the oldest
// other SEV3 page, then the same for SEV2; a SEV1 page, a resolve and an acknowledge are never
// dropped (the outbox grows past `max` rather than lose one: a lost resolve would leave the
// target's incident open forever). Drops are counted and returned for the caller to log.
//
// Coalescing (noise and bounded work while a target is down): a new `update` replaces a queued,
// not-in-flight `update` of the same (target, incident) — the newer snapshot says everything the
// older one did. Alertmanager targets (name contains '#') are state-based: a new firing page
// (trigger or update) replaces every queued, not-in-flight firing page of the same (target,
// incident), taking over its `previous` severity to resolve; a resolve replaces nothing, so an
// incident that began and ended during an outage still arrives as fired, then resolved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/observation.h"
#include "agent/core/result.h"
#include "notify/page.h"

namespace vigil {

class Outbox {
 public:
  // `dir` (e.g. /var/lib/vigil) is created 0750 by the first write; the file is 0600 (pages
  // carry evidence lines).
  Outbox(std::string dir, std::size_t max);

  struct LoadReport {
    std::size_t pages = 0;              // queued pages recovered
    int skipped = 0;                    // unreadable lines
    std::vector<std::string> warnings;  // "FILE:LINE: why"
  };
  // Replays the file (absent: empty outbox) and compacts it. Errors only for an unreadable
  // file; bad lines are skipped and reported.
  Result<LoadReport> load();

  struct Added {
    std::vector<std::uint64_t> seqs;  // of the pages added, in order
    std::vector<Page> dropped;        // pages dropped to stay within max (never SEV1)
    std::size_t superseded = 0;       // queued pages replaced by coalescing
    // Why the pages are queued in memory only ("" when they are on disk): the write failed (a
    // full disk). They are sent all the same (a page held back is worse than one a crash could
    // lose); persist() writes them once the disk takes it again.
    std::string not_durable;
  };
  // Queues pages (seq assigned here), durably when the write works, else in memory only (see
  // Added::not_durable). An error only for pages the outbox cannot take at all.
  Result<Added> add(std::vector<Page> pages);
  // Writes the whole queue (compact()) if a write failed since the last one that worked; a no-op
  // otherwise. Called after every write and by the daemon's housekeeping.
  Result<bool> persist();
  // A write failed and the file lacks pages or records that the memory holds.
  bool unsaved() const { return unsaved_; }

  // Pages to try now: for each (target, incident) only its oldest page, if it is not in flight
  // and its next_try <= now. Oldest first.
  std::vector<const Page*> due(TimePoint now) const;
  // The earliest next_try among pages not in flight (nullopt: nothing waits).
  std::optional<TimePoint> next_due() const;

  void begin(std::uint64_t seq);  // an attempt started: in flight
  // The attempt failed: not before `next_try`, remembering the error. No disk write.
  void retry(std::uint64_t seq, TimePoint next_try, std::string error);
  // `target` answered again (a page or a heartbeat got through): its pages waiting out a backoff
  // are due at `now`, so an outage ends for every queued page at once, not one backoff (up to
  // 5 min) later each. Returns how many. No disk write (next_try is not persisted).
  std::size_t wake(const std::string& target, TimePoint now);
  // Done with a page for good: delivered, skipped, or given up (permanent). Durable; when the
  // record cannot be written the page is still forgotten in memory (and the error returned), so
  // it never blocks its queue; a restart sends it again.
  Result<bool> done(std::uint64_t seq, const std::string& why);

  // Remote ids (statuspage incident ids), durable, kept while any page of the incident is queued
  // and for `forget_ref` to drop.
  Result<bool> set_ref(const std::string& target, const std::string& incident,
                       const std::string& id);
  std::string ref(const std::string& target, const std::string& incident) const;
  Result<bool> forget_ref(const std::string& target, const std::string& incident);

  const Page* find(std::uint64_t seq) const;
  std::vector<const Page*> queued() const;  // every queued page, by seq
  bool in_flight(std::uint64_t seq) const;
  std::size_t size() const;
  std::size_t size(Severity s) const;
  std::uint64_t dropped_total() const { return dropped_total_; }
  std::optional<TimePoint> oldest() const;  // `at` of the oldest queued page
  const std::string& path() const { return path_; }

 private:
  // Implementation's choice; kept here so the class is complete.
  Result<bool> append(const std::string& lines);
  Result<bool> compact();
  // Compacts when dead records outnumber live ones by more than a slack (see outbox.cpp); a
  // failure only delays the next try.
  void maybe_compact();

  std::string dir_, path_;
  std::size_t max_;
  std::uint64_t next_seq_ = 1;
  std::map<std::uint64_t, Page> pages_;  // by seq: queued, in order
  std::map<std::uint64_t, bool> in_flight_;
  std::map<std::pair<std::string, std::string>, std::string> refs_;  // (target, incident) -> id
  std::size_t dead_records_ = 0;  // lines in the file that compaction would remove
  std::uint64_t dropped_total_ = 0;
  std::size_t compact_retry_at_ = 0;  // after a failed compaction: dead records to wait for
  bool unsaved_ = false;              // see unsaved()
};

}  // namespace vigil
