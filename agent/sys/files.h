// vigil's own files: bounded whole-file reads of its state (JSON), atomic replacement, durable
// appends to its logs (timelines, the outbox), and the symlink swap of a rollback. The only place
// that calls open/rename/symlink/fsync for them.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "agent/core/result.h"

namespace vigil::sys {

// Closes the fd on every return path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now, for the caller to see close()'s error (NFS reports write errors there).
  int release_close();

 private:
  int fd_;
};

// Makes a new directory entry durable (fsync of `dir`; "" is "."). Best effort for most callers:
// the entry is already there for this boot. False, with errno set, when it could not be synced.
bool sync_dir(const std::string& dir);

// mkdir -p with `mode`, fsyncing the parent of each directory it creates. Errors: "cannot create
// DIR: why" (incl. "not a directory" for an existing non-directory).
Result<bool> make_dirs(const std::string& dir, mode_t mode);

// What read_regular_file() answers for a file that does not exist.
enum class IfAbsent { error, nullopt };

// The whole of a regular file (never following a symlink), for vigil's durable logs (timelines,
// the outbox). Errors: "cannot read PATH: why". A missing file is an error too, unless
// IfAbsent::nullopt.
Result<std::optional<std::string>> read_regular_file(const std::string& path, IfAbsent if_absent);

// write() until all of `data` is written (EINTR, short writes). errno is set on false.
bool write_all(int fd, std::string_view data);

// The whole of `path`. Errors: it cannot be opened or read (with errno text), or it is larger
// than `max_bytes`.
Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes);

// A secret (a key or a token, for the config): a regular file that grants nothing to group or
// others, not empty, at most 64 KiB; one trailing newline is dropped. The error (never the
// content) is the rest of a sentence that starts with the file's name (" has mode 0644: ...").
Result<std::string> read_secret_file(const std::string& path);

// Writes `data` to `path` atomically: a temporary file beside it (0600, never through a symlink),
// fsync, rename over `path`, fsync of the directory. The directory is created when missing. On
// failure `path` is untouched and the temporary file removed. Errors: "cannot write PATH: why".
Result<bool> write_file_atomic(const std::string& path, std::string_view data);

// What append_lines() does when the file does not exist yet.
enum class IfMissing { fail, create };
enum class Appended { appended, missing };

// Appends `lines` (whole records, each ending in '\n') to the regular file `path`, never through
// a symlink, in one write, and makes them durable (fdatasync; a file this call created also gets
// its directory entry synced). With IfMissing::create a missing file is created with `mode` (its
// directory 0750); with IfMissing::fail nothing is created and the answer is Appended::missing.
// A line a crash left without its '\n' at the end is closed first, so the new records are never
// glued to the fragment (a reader skips it alone). On a failed write or sync the file is cut back
// to its old size, so it never holds a record the caller was told failed.
// Errors: "cannot open|stat|read|write|sync PATH: why".
Result<Appended> append_lines(const std::string& path, std::string_view lines, IfMissing if_missing,
                              mode_t mode);

// Renames `from` to `to` (replacing it). Errors: "cannot rename FROM to TO: why".
Result<bool> rename_file(const std::string& from, const std::string& to);

// Points the symlink `link` at `target` in one step: a new link under a temporary name in the
// same directory, rename(2) over `link` (a concurrent reader resolves the old target or the new
// one, never a missing name), fsync of the directory. The answer is "" when durable, or a
// warning when the switch happened but the directory could not be synced. Errors: "cannot create
// TEMP: why", "cannot replace LINK: why" (then `link` is unchanged).
Result<std::string> replace_symlink(const std::string& target, const std::string& link);

}  // namespace vigil::sys
