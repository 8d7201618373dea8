#include "agent/sys/journal.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"

#include <fcntl.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/sys/clock.h"
#include "agent/sys/log.h"

namespace vigil::sys {

namespace asio = boost::asio;

namespace {

// Why 2,000: a batch long enough to amortise the cursor write, short enough that a flood of
// entries never holds the loop (and so the watchdog, the HTTP checks) for more than a few ms.
constexpr std::size_t kBatch = 2'000;

int add_field_matches(sd_journal* j, const char* field, const std::vector<std::string>& values) {
  for (const std::string& v : values) {
    const std::string m = std::string(field) + "=" + v;
    if (int r = sd_journal_add_match(j, m.data(), m.size()); r < 0) return r;
  }
  return 0;
}

int add_priorities(sd_journal* j, const std::optional<int>& max) {
  if (!max) return 0;
  for (int p = 0; p <= *max; ++p) {
    const std::string m = "PRIORITY=" + std::to_string(p);
    if (int r = sd_journal_add_match(j, m.data(), m.size()); r < 0) return r;
  }
  return 0;
}

// The fields that narrow every branch, and the priority.
int add_narrowing(sd_journal* j, const JournalFilter& f) {
  int r = 0;
  if ((r = add_field_matches(j, "_COMM", f.comms)) < 0) return r;
  if ((r = add_field_matches(j, "_EXE", f.exes)) < 0) return r;
  if ((r = add_field_matches(j, "_UID", f.uids)) < 0) return r;
  if ((r = add_field_matches(j, "_TRANSPORT", f.transports)) < 0) return r;
  return add_priorities(j, f.max_priority);
}

// (units ∧ N) ∨ (identifiers ∧ N), N = comm ∧ exe ∧ uid ∧ transport ∧ priority (each one
// given): sd-journal ORs the values of one field and ANDs different fields within a branch.
int apply_filter(sd_journal* j, const JournalFilter& f) {
  int r = 0;
  if (!f.units.empty()) {
    if ((r = add_field_matches(j, "_SYSTEMD_UNIT", f.units)) < 0) return r;
    if ((r = add_narrowing(j, f)) < 0) return r;
  }
  if (!f.units.empty() && !f.identifiers.empty()) {
    if ((r = sd_journal_add_disjunction(j)) < 0) return r;
  }
  if (!f.identifiers.empty()) {
    if ((r = add_field_matches(j, "SYSLOG_IDENTIFIER", f.identifiers)) < 0) return r;
    if ((r = add_narrowing(j, f)) < 0) return r;
  }
  if (f.units.empty() && f.identifiers.empty()) r = add_narrowing(j, f);
  return r;
}

}  // namespace

struct Journal::Impl {
  sd_journal* j = nullptr;
  bool read_any = false;
  ~Impl() {
    if (j != nullptr) sd_journal_close(j);
  }
};

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

Result<std::unique_ptr<Journal>> Journal::open(const JournalSource& source,
                                               const JournalFilter& filter) {
  auto impl = std::make_unique<Impl>();
  int r = 0;
  if (!source.files.empty()) {
    std::vector<const char*> paths;
    for (const std::string& f : source.files) paths.push_back(f.c_str());
    paths.push_back(nullptr);
    r = sd_journal_open_files(&impl->j, paths.data(), 0);
  } else if (!source.directory.empty()) {
    r = sd_journal_open_directory(&impl->j, source.directory.c_str(), 0);
  } else {
    r = sd_journal_open(&impl->j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
  }
  if (r < 0) {
    impl->j = nullptr;
    return make_error("cannot open the journal: " + errno_text(r));
  }
  // Large MESSAGE fields are evidence, not data to keep in full.
  sd_journal_set_data_threshold(impl->j, 64 * 1024);
  if ((r = apply_filter(impl->j, filter)) < 0) {
    return make_error("cannot set journal matches: " + errno_text(r));
  }
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

bool Journal::seek_after_cursor(const std::string& cursor) {
  sd_journal* j = impl_->j;
  if (sd_journal_seek_cursor(j, cursor.c_str()) < 0) return false;
  // seek_cursor positions *near* the entry; step onto it and make sure it is that entry.
  if (sd_journal_next(j) <= 0) return false;
  return sd_journal_test_cursor(j, cursor.c_str()) > 0;
}

void Journal::seek_realtime(TimePoint at) {
  const auto usec =
      std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
  sd_journal_seek_realtime_usec(impl_->j, static_cast<uint64_t>(std::max<long long>(usec, 0)));
}

void Journal::seek_head() { sd_journal_seek_head(impl_->j); }

TimePoint JournalEntry::at() const { return source->current_time(); }

TimePoint Journal::current_time() const {
  uint64_t usec = 0;
  sd_journal_get_realtime_usec(impl_->j, &usec);
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::microseconds(static_cast<long long>(usec))));
}

std::size_t Journal::read(std::size_t max, const std::function<void(const JournalEntry&)>& each,
                          std::string* warm_up_until) {
  sd_journal* j = impl_->j;
  std::size_t n = 0;
  while (n < max) {
    const int r = sd_journal_next(j);
    if (r <= 0) break;
    ++n;
    impl_->read_any = true;
    const void* data = nullptr;
    size_t len = 0;
    if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8) continue;
    JournalEntry e;
    e.source = this;
    if (warm_up_until != nullptr && !warm_up_until->empty()) {
      e.warm_up = true;
      if (sd_journal_test_cursor(j, warm_up_until->c_str()) > 0) warm_up_until->clear();
    }
    e.message = std::string_view(static_cast<const char*>(data) + 8, len - 8);  // "MESSAGE="
    each(e);
  }
  return n;
}

std::string Journal::cursor() const {
  if (!impl_->read_any) return {};
  char* c = nullptr;
  if (sd_journal_get_cursor(impl_->j, &c) < 0) return {};
  std::string out = c;
  free(c);  // NOLINT: allocated by libsystemd
  return out;
}

struct JournalFollower::Impl : std::enable_shared_from_this<JournalFollower::Impl> {
  Impl(asio::io_context& ctx, Options o) : io(ctx), options(std::move(o)), timer(ctx) {}

  void position() {
    std::ifstream in(options.cursor_file);
    std::string cursor;
    std::getline(in, cursor);
    if (!cursor.empty()) {
      if (journal->seek_after_cursor(cursor)) {
        saved = cursor;
        if (options.warm_up.count() > 0) {
          // Rebuild the counting windows from what was already seen, then go on live.
          journal->seek_realtime(journal->current_time() - options.warm_up);
          warm_up_until = cursor;
        }
        return;
      }
      log(LogLevel::warning, "journal position " + options.cursor_file +
                                 " is no longer in the journal (rotated or vacuumed); reading "
                                 "back " +
                                 format_duration(options.catch_up));
    }
    journal->seek_realtime(Clock::now() - options.catch_up);
  }

  void drain() {
    if (!each) return;
    const std::size_t n = journal->read(kBatch, each, &warm_up_until);
    if (!each) return;  // stopped from inside a callback
    if (n > 0) save();
    if (n == kBatch) {
      // More to read: yield to the loop, then go on.
      asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock()) self->drain();
      });
      return;
    }
    arm();
  }

  void save() {
    const std::string c = journal->cursor();
    if (c.empty() || c == saved) return;
    if (Result<bool> r = write_file_atomic(options.cursor_file, c + "\n"); !r) {
      if (!save_failed) log(LogLevel::err, r.error().message);
      save_failed = true;
      return;
    }
    save_failed = false;
    saved = c;
  }

  void arm() {
    if (desc) {
      desc->async_wait(asio::posix::stream_descriptor::wait_read,
                       [weak = weak_from_this()](const boost::system::error_code& ec) {
                         auto self = weak.lock();
                         if (!self || ec || !self->each) return;
                         // NOP, APPEND or INVALIDATE (rotation, vacuum, journald restart):
                         // sd-journal re-maps files itself; we just read on.
                         sd_journal_process(self->journal->impl_->j);
                         self->drain();
                       });
    }
    // sd_journal_get_timeout: inotify may not see everything (e.g. files on some file
    // systems); honour the wake-up sd-journal asks for, bounded to once a second.
    uint64_t usec = 0;
    Duration wait{1'000};
    if (sd_journal_get_timeout(journal->impl_->j, &usec) >= 0 && usec != UINT64_MAX) {
      const uint64_t now = monotonic_usec();
      wait = std::min(wait, Duration(usec > now ? (usec - now) / 1000 : 0));
    }
    timer.expires_after(wait);
    timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      auto self = weak.lock();
      if (!self || ec || !self->each) return;
      if (self->desc) {
        boost::system::error_code ignored;
        self->desc->cancel(ignored);
      }
      sd_journal_process(self->journal->impl_->j);
      self->drain();
    });
  }

  void stop() {
    each = nullptr;
    timer.cancel();
    if (desc) {
      boost::system::error_code ignored;
      desc->cancel(ignored);
      (void)desc->release();
      desc.reset();
    }
  }

  asio::io_context& io;
  Options options;
  asio::steady_timer timer;
  std::unique_ptr<Journal> journal;
  std::optional<asio::posix::stream_descriptor> desc;
  Batch each;
  std::string saved;
  std::string warm_up_until;  // entries up to this cursor are warm-up
  bool save_failed = false;
};

JournalFollower::JournalFollower(asio::io_context& io, Options options)
    : impl_(std::make_shared<Impl>(io, std::move(options))) {}

JournalFollower::~JournalFollower() { impl_->stop(); }

Result<bool> JournalFollower::start(Batch each) {
  Result<std::unique_ptr<Journal>> j = Journal::open(JournalSource{}, impl_->options.filter);
  if (!j) return j.error();
  impl_->journal = std::move(*j);
  const int fd = sd_journal_get_fd(impl_->journal->impl_->j);
  if (fd < 0) return make_error("sd_journal_get_fd: " + errno_text(fd));
  impl_->desc.emplace(impl_->io, fd);
  impl_->position();
  impl_->each = std::move(each);
  asio::post(impl_->io, [weak = std::weak_ptr<Impl>(impl_)] {
    if (auto self = weak.lock()) self->drain();
  });
  return true;
}

void JournalFollower::stop() { impl_->stop(); }

}  // namespace vigil::sys
