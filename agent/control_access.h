// Who may do what over the control socket (issue 13): a pure decision on the peer's
// credentials, which the kernel vouches for (SO_PEERCRED, SO_PEERGROUPS), never on anything
// the client sends. Read-only commands are for root and the `vigil` group; commands that change
// state (ack closes a circuit and silences escalation, maintain holds pages and mitigations) are
// for root and the configured admin group.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

struct ControlPeer {
  unsigned uid = 0;
  unsigned gid = 0;
  int pid = 0;
  std::vector<unsigned> groups;  // supplementary groups (SO_PEERGROUPS)
};

enum class ControlClass { read, change };

// The class of `cmd`, or nullopt for a command vigil does not know.
std::optional<ControlClass> control_class(std::string_view cmd);

// The largest request line `cmd` may send, newline included. Every request but maintain is an
// id or nothing; maintain carries check names and a reason.
std::size_t control_request_limit(std::string_view cmd);

struct ControlAccess {
  std::optional<unsigned> read_gid;   // the `vigil` group, when it exists
  std::optional<unsigned> admin_gid;  // [agent] admin_group, when set and it exists
  std::string admin_group;            // its name, for messages ("" = not configured)
};

// "" when `peer` may run `cmd`, else why not, as the CLI shows it.
std::string control_denied(const ControlAccess& access, const ControlPeer& peer,
                           std::string_view cmd);

// The whole answer to one request line, newline included, as the control socket sends it: a
// JSON object is required, then the command's request limit, then the permission (a refusal is
// logged with uid and pid), then `handler`, whose exceptions become "internal error" replies.
// An answer over `max_reply` bytes is replaced by an error that says so.
// A command's answer: a JSON object, or the same already serialized (one line, no newline), for
// an answer built from cached text (`vigil incidents` with thousands of summaries: building and
// copying a JSON tree per call held the loop ~40 µs per incident).
struct ControlAnswer {
  ControlAnswer(nlohmann::json j) : json(std::move(j)) {}  // NOLINT: implicit, most answers
  static ControlAnswer serialized(std::string text) {
    ControlAnswer a(nlohmann::json{});
    a.text = std::move(text);
    return a;
  }
  nlohmann::json json;
  std::string text;  // when set, sent as is instead of `json`
};
using ControlHandler = std::function<ControlAnswer(const nlohmann::json&, const ControlPeer&)>;
std::string control_reply(const std::string& line, const ControlPeer& peer,
                          const ControlAccess& access, const ControlHandler& handler,
                          std::size_t max_reply);

}  // namespace vigil
