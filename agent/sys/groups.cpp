#include "agent/sys/groups.h"

#include <grp.h>

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

}  // namespace vigil::sys
