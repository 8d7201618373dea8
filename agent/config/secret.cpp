// The secrets of notifiers (routing keys, API keys, HMAC keys): inline, or read from a file
// that grants nothing to group or others. No message ever contains a secret.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/core/result.h"

namespace vigil::config_internal {

namespace {

// A secret file is a key or a token, not a document: refuse to read more.
constexpr std::size_t kMaxSecretFile = 64 * 1024;

// Reads a secret file: a regular file that grants nothing to group or others, not empty, at
// most kMaxSecretFile; one trailing newline is dropped. The error (never the content) is the
// rest of a sentence that starts with the file's name.
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

}  // namespace

std::optional<Secret> read_secret(ConfigReader& r, const toml::table& t, const std::string& key,
                                  const std::string& where) {
  const std::string file_key = key + "_file";
  const toml::node* inline_node = t.get(key);
  const toml::node* file_node = t.get(file_key);
  if (inline_node != nullptr && file_node != nullptr) {
    r.error(file_node->source(),
            where + "give either '" + key + "' or '" + file_key + "', not both");
    return std::nullopt;
  }
  if (inline_node != nullptr) {
    auto v = r.get_string(t, key, where);
    if (!v) return std::nullopt;
    if (v->empty()) {
      r.error(inline_node->source(), where + "'" + key + "' is empty");
      return std::nullopt;
    }
    return Secret{std::move(*v), "", inline_node, "'" + key + "'"};
  }
  if (file_node == nullptr) return std::nullopt;
  auto path = r.get_string(t, file_key, where);
  if (!path) return std::nullopt;
  if (path->empty() || path->front() != '/') {
    r.error(file_node->source(),
            where + "'" + file_key + "' must be an absolute path, not \"" + *path + "\"");
    return std::nullopt;
  }
  const std::string label = "'" + file_key + "' \"" + *path + "\"";
  Result<std::string> content = read_secret_file(*path);
  if (!content) {
    r.error(file_node->source(), where + label + content.error().message);
    return std::nullopt;
  }
  return Secret{std::move(*content), *path, file_node, label};
}

bool header_safe(ConfigReader& r, const Secret& s, const std::string& where) {
  const bool ok = std::none_of(s.value.begin(), s.value.end(),
                               [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
  if (!ok) {
    r.error(s.node->source(), where + s.label +
                                  " contains a line break or another control character: it "
                                  "goes into an HTTP header");
  }
  return ok;
}

}  // namespace vigil::config_internal
