#include "agent/sys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

void sync_dir(const std::string& dir) {
  const std::string d = dir.empty() ? std::string(".") : dir;
  const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
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

Result<std::optional<std::string>> read_regular_file(const std::string& path, bool missing_ok) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT && missing_ok) return std::optional<std::string>();
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

bool write_all(int fd, const std::string& data) {
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

}  // namespace vigil::sys
