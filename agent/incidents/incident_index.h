// The incident index (issue 13): STATE/incident-index.jsonl, one line per version of a resolved
// incident's timeline, holding the summary `vigil incidents` shows. A cache, never the truth: an
// entry counts only while its timeline file still has the size and mtime the entry names, so a
// lost, stale or damaged line costs one parse of that timeline, never a wrong answer. With it, a
// start and `vigil incidents` parse only the timelines written since their entry (the open
// incidents, a crash's last writes), not every kept file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/result.h"

namespace vigil {

class IncidentIndex {
 public:
  using Stamp = std::pair<std::uintmax_t, std::int64_t>;  // IncidentStore::stamp(): size, mtime
  struct Entry {
    Stamp stamp{};
    // Pages were still owed when the entry was written (a resolve not yet queued): the timeline
    // must be replayed at start so the pager can plan them.
    bool owed = false;
    nlohmann::json summary;  // incident_summary_json()
  };

  // Why 64 MiB: an entry is about 300 bytes; max_incidents (10,000 by default) a few MB even
  // before compaction. Beyond the cap the index is ignored (every timeline is parsed once).
  static constexpr std::size_t kMaxBytes = 64u << 20;

  explicit IncidentIndex(std::string path);

  struct LoadReport {
    std::size_t entries = 0;
    int skipped = 0;  // lines that are not a whole entry
  };
  // Reads the file (missing: empty). The last line of an id wins. Error: unreadable or over
  // kMaxBytes (the index is then empty).
  Result<LoadReport> load();

  // The entry of `id` if it is the one for this version of its timeline.
  const Entry* find(const std::string& id, const Stamp& stamp) const;

  // Appends an entry (no fsync: a lost line costs a parse, nothing else).
  Result<bool> put(const std::string& id, Entry entry);

  // Rewrites the file (atomically) with the entries of `keep` only, one line each.
  Result<bool> compact(const std::set<std::string>& keep);

  std::size_t size() const { return entries_.size(); }
  const std::string& path() const { return path_; }

 private:
  static std::string line(const std::string& id, const Entry& e);

  std::string path_;
  std::map<std::string, Entry> entries_;
};

}  // namespace vigil
