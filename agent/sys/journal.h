// sd-journal, followed on the Asio loop: per-reader matches (so unrelated entries are never
// read), a saved cursor so nothing is missed or read twice across restarts, and rotation,
// vacuuming and journald restarts handled by sd-journal itself (SD_JOURNAL_INVALIDATE).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/observation.h"
#include "agent/core/result.h"

namespace vigil::sys {

class Journal;

struct JournalEntry {
  std::string_view message;  // valid only during the callback
  // Already seen before a restart: read again only to rebuild counting windows, not to report.
  bool warm_up = false;
  const Journal* source = nullptr;
  // The entry's realtime timestamp; read on demand (most entries never need it). Valid only
  // during the callback.
  TimePoint at() const;
};

struct JournalFilter {
  std::vector<std::string> units;        // _SYSTEMD_UNIT=, any of them
  std::vector<std::string> identifiers;  // SYSLOG_IDENTIFIER=, any of them
  std::optional<int> max_priority;       // PRIORITY <= this
  // Each narrows both of the above (_COMM=, _EXE=, _UID=, _TRANSPORT=, any value of each).
  std::vector<std::string> comms;
  std::vector<std::string> exes;
  std::vector<std::string> uids;
  std::vector<std::string> transports;
};

struct JournalSource {
  std::string directory;           // a journal directory (replay); empty = the system journal
  std::vector<std::string> files;  // journal files (replay)
};

// Opens a journal with the filter applied. Exposed for `vigil replay` and benchmarks.
class Journal {
 public:
  static Result<std::unique_ptr<Journal>> open(const JournalSource& source,
                                               const JournalFilter& filter);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Positions: at `cursor` (the entry after it is read next) if it is still in the journal;
  // returns false if it is not (rotated away, vacuumed, foreign).
  bool seek_after_cursor(const std::string& cursor);
  void seek_realtime(TimePoint at);
  void seek_head();
  // Reads up to `max` entries from the position on; returns how many were read. With
  // `warm_up_until`, entries up to and including that cursor are flagged warm_up.
  std::size_t read(std::size_t max, const std::function<void(const JournalEntry&)>& each,
                   std::string* warm_up_until = nullptr);
  // The realtime timestamp of the current entry.
  TimePoint current_time() const;
  // The cursor of the last entry read, or "" if none was.
  std::string cursor() const;

  struct Impl;

 private:
  explicit Journal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class JournalFollower;
};

// Follows the system journal on the loop from a saved position.
class JournalFollower {
 public:
  struct Options {
    JournalFilter filter;
    std::string cursor_file;     // where the position is kept (state_dir/journal/CHECK.cursor)
    Duration catch_up{600'000};  // first start, or cursor gone: start this far back
    // On a resume, entries this far before the saved position are read again as warm_up, so
    // counting windows survive a restart: no line missed, none counted twice.
    Duration warm_up{0};
  };
  using Batch = std::function<void(const JournalEntry&)>;

  JournalFollower(boost::asio::io_context& io, Options options);
  ~JournalFollower();
  JournalFollower(const JournalFollower&) = delete;
  JournalFollower& operator=(const JournalFollower&) = delete;

  // Starts following; `each` runs on the loop for every new entry, in order. The cursor is
  // saved (atomically) after each batch, so a restart resumes right after the last entry seen.
  Result<bool> start(Batch each);
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace vigil::sys
