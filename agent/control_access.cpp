#include "agent/control_access.h"

#include <algorithm>
#include <array>

namespace vigil {

namespace {

bool member(const ControlPeer& peer, unsigned gid) {
  return peer.gid == gid ||
         std::find(peer.groups.begin(), peer.groups.end(), gid) != peer.groups.end();
}

}  // namespace

std::optional<ControlClass> control_class(std::string_view cmd) {
  static constexpr std::array<std::string_view, 3> kRead{"status", "incidents", "incident"};
  static constexpr std::array<std::string_view, 2> kChange{"ack", "maintain"};
  if (std::find(kRead.begin(), kRead.end(), cmd) != kRead.end()) return ControlClass::read;
  if (std::find(kChange.begin(), kChange.end(), cmd) != kChange.end()) return ControlClass::change;
  return std::nullopt;
}

std::size_t control_request_limit(std::string_view cmd) {
  // Why 64 KiB for maintain: a window over a few hundred named checks and a reason; 1 KiB for
  // the rest: a command name and an incident id.
  return cmd == "maintain" ? 64 * 1024 : 1024;
}

std::string control_denied(const ControlAccess& access, const ControlPeer& peer,
                           std::string_view cmd) {
  const std::optional<ControlClass> c = control_class(cmd);
  if (peer.uid == 0) return {};
  const std::string who = "uid " + std::to_string(peer.uid);
  // A command this table does not know is root's (and the admins'): a command added to the
  // daemon but not here must fail closed.
  if (!c && access.admin_gid && member(peer, *access.admin_gid)) return {};
  if (!c) return "permission denied: unknown command for " + who;
  if (*c == ControlClass::read) {
    if ((access.read_gid && member(peer, *access.read_gid)) ||
        (access.admin_gid && member(peer, *access.admin_gid))) {
      return {};
    }
    return "permission denied: " + who + " is neither root nor in the vigil group";
  }
  if (access.admin_gid && member(peer, *access.admin_gid)) return {};
  return "permission denied: '" + std::string(cmd) + "' changes what vigil does; " + who +
         " must be root" +
         (access.admin_group.empty()
              ? std::string(" (or set [agent] admin_group and join that group)")
              : " or in the admin group '" + access.admin_group + "'" +
                    (access.admin_gid ? "" : ", which does not exist on this host"));
}

}  // namespace vigil
