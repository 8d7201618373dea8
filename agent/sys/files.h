// Small whole-file reads for vigil's own state files (JSON), bounded so a corrupt or hostile file
// cannot make the agent allocate without limit.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "agent/result.h"

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

// Makes a new directory entry durable (fsync of `dir`; "" is "."). Best effort: the entry is
// already there for this boot.
void sync_dir(const std::string& dir);

// mkdir -p with `mode`, fsyncing the parent of each directory it creates. Errors: "cannot create
// DIR: why" (incl. "not a directory" for an existing non-directory).
Result<bool> make_dirs(const std::string& dir, mode_t mode);

// The whole of a regular file (never following a symlink), for vigil's durable logs (timelines,
// the outbox). Errors: "cannot read PATH: why". A missing file is an error too, unless
// `missing_ok`, when it is nullopt.
Result<std::optional<std::string>> read_regular_file(const std::string& path, bool missing_ok);

// write() until all of `data` is written (EINTR, short writes). errno is set on false.
bool write_all(int fd, const std::string& data);

// The whole of `path`. Errors: it cannot be opened or read (with errno text), or it is larger
// than `max_bytes`.
Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes);

}  // namespace vigil::sys
