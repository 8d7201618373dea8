#include "agent/control_access.h"

#include <algorithm>
#include <array>
#include <exception>

#include "agent/core/terminal.h"
#include "agent/sys/log.h"

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

std::string control_reply(const std::string& line, const ControlPeer& peer,
                          const ControlAccess& access, const ControlHandler& handler,
                          std::size_t max_reply) {
  ControlAnswer reply(nlohmann::json{});
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    reply = nlohmann::json{{"ok", false}, {"error", "the request is not a JSON object"}};
  } else {
    const auto cmd = request.find("cmd");
    const std::string name =
        cmd != request.end() && cmd->is_string() ? cmd->get<std::string>() : std::string();
    const std::string denied = control_denied(access, peer, name);
    if (line.size() > control_request_limit(name)) {
      reply = nlohmann::json{
          {"ok", false},
          {"error", "the request is " + std::to_string(line.size()) + " bytes, over the limit of " +
                        std::to_string(control_request_limit(name)) + " for this command"}};
    } else if (!denied.empty()) {
      // Logged: a refused state change is worth a look (a script run by the wrong user, or
      // someone trying), and its uid and pid say who.
      sys::log(sys::LogLevel::warning, "control socket: refused '" + visible(name) + "' from uid " +
                                           std::to_string(peer.uid) + " (pid " +
                                           std::to_string(peer.pid) + "): " + denied);
      reply = nlohmann::json{{"ok", false}, {"error", denied}};
    } else {
      try {
        reply = handler(request, peer);
      } catch (const std::exception& e) {
        reply =
            nlohmann::json{{"ok", false}, {"error", std::string("internal error: ") + e.what()}};
      } catch (...) {
        // Nothing may throw out of an Asio handler, whatever the handler throws.
        reply = nlohmann::json{{"ok", false}, {"error", "internal error"}};
      }
    }
  }
  std::string out = (reply.text.empty()
                         ? reply.json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                         : std::move(reply.text)) +
                    "\n";
  if (out.size() > max_reply) {
    out = nlohmann::json{{"ok", false},
                         {"error", "the answer is " + std::to_string(out.size()) +
                                       " bytes, over the control socket's limit of " +
                                       std::to_string(max_reply) +
                                       "; read the state directory's files instead"}}
              .dump() +
          "\n";
  }
  return out;
}

}  // namespace vigil
