#include "agent/sys/groups.h"

#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <vector>

namespace vigil::sys {

std::optional<unsigned> group_id(const std::string& name) {
  if (name.empty()) return std::nullopt;
  std::vector<char> buf(16 * 1024);
  group g{};
  group* found = nullptr;
  for (;;) {
    const int r = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
    if (r == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (r != 0 || found == nullptr) return std::nullopt;
    return static_cast<unsigned>(found->gr_gid);
  }
}

std::optional<std::string> user_name(unsigned uid) {
  std::vector<char> buf(16 * 1024);
  passwd p{};
  passwd* found = nullptr;
  for (;;) {
    const int r = ::getpwuid_r(static_cast<uid_t>(uid), &p, buf.data(), buf.size(), &found);
    if (r == ERANGE && buf.size() < (1u << 20)) {
      buf.resize(buf.size() * 4);
      continue;
    }
    if (r != 0 || found == nullptr || found->pw_name == nullptr) return std::nullopt;
    return std::string(found->pw_name);
  }
}

}  // namespace vigil::sys
