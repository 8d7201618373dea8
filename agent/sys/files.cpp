#include "agent/sys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "agent/sys/errors.h"

namespace vigil::sys {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

int Fd::release_close() {
  const int r = ::close(fd_);
  fd_ = -1;
  return r;
}

bool sync_dir(const std::string& dir) {
  const std::string d = dir.empty() ? std::string(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  errno = err;
  return synced;
}

Result<bool> make_dirs(const std::string& dir_text, mode_t mode) {
  const std::filesystem::path dir(dir_text);
  const auto made = [&dir]() -> Result<bool> {
    sync_dir(dir.parent_path().string());
    return true;
  };
  if (::mkdir(dir.c_str(), mode) == 0) return made();
  int err = errno;
  if (err == ENOENT && dir.has_parent_path() && dir.parent_path() != dir) {
    if (Result<bool> r = make_dirs(dir.parent_path().string(), mode); !r) return r;
    if (::mkdir(dir.c_str(), mode) == 0) return made();
    err = errno;
  }
  if (err == EEXIST) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return true;
    return make_error("cannot create " + dir.string() + ": not a directory");
  }
  return make_error("cannot create " + dir.string() + ": " + errno_text(err));
}

Result<std::optional<std::string>> read_regular_file(const std::string& path, IfAbsent if_absent) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT && if_absent == IfAbsent::nullopt) return std::optional<std::string>();
    return make_error("cannot read " + path + ": " + errno_text(errno));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return make_error("cannot read " + path + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) return make_error("cannot read " + path + ": not a regular file");
  std::string data;
  data.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error("cannot read " + path + ": " + errno_text(errno));
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>(std::move(data));
}

bool write_all(int fd, std::string_view data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(errno_text(errno));
  std::string data;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      return make_error(errno_text(e));
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
    if (data.size() > max_bytes) {
      ::close(fd);
      return make_error("larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return data;
}

Result<bool> write_file_atomic(const std::string& path, std::string_view data) {
  const std::filesystem::path p(path);
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return make_error("cannot write " + tmp + ": " + errno_text(errno));
  const auto fail = [&](int err) -> Error {
    ::unlink(tmp.c_str());
    return make_error("cannot write " + path + ": " + errno_text(err));
  };
  if (!write_all(fd.get(), data)) return fail(errno);
  if (::fsync(fd.get()) != 0) return fail(errno);
  if (fd.release_close() != 0) return fail(errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(errno);
  sync_dir(p.parent_path().string());
  return true;
}

Result<Appended> append_lines(const std::string& path, std::string_view lines, IfMissing if_missing,
                              mode_t mode) {
  // O_RDWR, not O_WRONLY: the last byte is read to repair a torn line (below).
  // O_NOFOLLOW: the directory is vigil's; a symlink in it is not one of its files.
  constexpr int kFlags = O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
  const std::filesystem::path p(path);
  bool created = false;
  int raw = ::open(path.c_str(), kFlags);
  if (raw < 0 && errno == ENOENT) {
    if (if_missing == IfMissing::fail) return Appended::missing;
    if (Result<bool> r = make_dirs(p.parent_path().string(), 0750); !r) return r.error();
    // O_EXCL tells whether this call created the file (and so must sync the directory).
    raw = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, mode);
    created = raw >= 0;
    if (raw < 0 && errno == EEXIST) raw = ::open(path.c_str(), kFlags);
  }
  if (raw < 0) return make_error("cannot open " + path + ": " + errno_text(errno));
  const Fd fd(raw);

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return make_error("cannot stat " + path + ": " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode)) return make_error("cannot append to " + path + ": not a regular file");
  std::string data;
  if (st.st_size > 0) {
    char last = '\n';
    if (::pread(fd.get(), &last, 1, st.st_size - 1) != 1) {
      return make_error("cannot read " + path + ": " + errno_text(errno));
    }
    if (last != '\n') data += '\n';
  }
  data += lines;

  // If taking the batch back fails too, the newline repair above isolates the fragment on the
  // next append.
  const auto undo = [&](const char* what, int err) -> Error {
    const bool undone = ::ftruncate(fd.get(), st.st_size) == 0;
    return make_error(std::string("cannot ") + what + " " + path + ": " + errno_text(err) +
                      (undone ? "" : " (a partial record is left; a reader skips it)"));
  };
  if (!write_all(fd.get(), data)) return undo("write", errno);
  if (::fdatasync(fd.get()) != 0) return undo("sync", errno);
  if (created) sync_dir(p.parent_path().string());
  return Appended::appended;
}

Result<bool> rename_file(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return make_error("cannot rename " + from + " to " + to + ": " + errno_text(errno));
  }
  return true;
}

Result<std::string> replace_symlink(const std::string& target, const std::string& link) {
  // Why 100: temporary names are unique per process and call; a collision means a stale link
  // left by a crashed vigil with the same pid, and skipping a few of those is enough.
  constexpr int kTempAttempts = 100;
  static std::atomic<unsigned long> counter{0};
  const std::filesystem::path l(link);
  const std::string dir = l.parent_path().string();
  const std::string base = (dir.empty() ? std::string() : dir + "/") + "." + l.filename().string() +
                           ".vigil-" + std::to_string(::getpid()) + "-";
  std::string temp;
  for (int attempt = 0;; ++attempt) {
    temp = base + std::to_string(counter.fetch_add(1));
    if (::symlink(target.c_str(), temp.c_str()) == 0) break;
    if (errno != EEXIST || attempt + 1 == kTempAttempts) {
      return make_error("cannot create " + temp + ": " + errno_text(errno));
    }
  }
  if (::rename(temp.c_str(), link.c_str()) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    return make_error("cannot replace " + link + ": " + errno_text(e));
  }
  if (!sync_dir(dir)) {
    return "fsync of " + (dir.empty() ? std::string(".") : dir) + " failed (" + errno_text(errno) +
           ")";
  }
  return std::string();
}

namespace {
// A secret file is a key or a token, not a document: refuse to read more.
constexpr std::size_t kMaxSecretFile = 64 * 1024;

}  // namespace

Result<std::string> read_secret_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return make_error(std::string(": cannot read it: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return make_error(std::string(": cannot read it: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return make_error(" is not a regular file");
  // Checked on the open file, before reading: what another user could read is no secret.
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(std::string(" has mode ") + mode +
                      ": it must not be readable by group or others (chmod 600)");
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxSecretFile) {
    return make_error(" is larger than 64 KiB: not a key");
  }
  std::string content;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string(": cannot read it: ") + std::strerror(errno));
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > kMaxSecretFile) return make_error(" is larger than 64 KiB: not a key");
  }
  if (!content.empty() && content.back() == '\n') {
    content.pop_back();
    if (!content.empty() && content.back() == '\r') content.pop_back();
  }
  if (content.empty()) return make_error(" is empty");
  return content;
}

}  // namespace vigil::sys
