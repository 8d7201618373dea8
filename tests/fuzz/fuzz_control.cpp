// The control socket's request handling, as ControlServer::Impl::answer (agent/control.cpp)
// does it, without the socket: the request line goes through nlohmann::json::parse(line,
// nullptr, false), its "cmd" through control_request_limit and control_denied (agent/
// control_access.h), the name through visible() for the log line, and the reply is dumped the
// way the server dumps it.
//
// Input: byte 0 picks the peer's credentials, byte 1 the host's groups (see below); the rest is
// what the client sent, up to and including its first '\n' (the server reads up to one).
//
// Invariants: nothing throws; root may do anything; a member of neither group may do nothing;
// a read command is refused only to a member of neither group, a change (or unknown) command to
// everyone but root and the admin group; a refusal always says why; a request over its
// command's limit is refused; the reply is one line; visible() leaves no byte a terminal acts on.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/control_access.h"
#include "agent/core/terminal.h"
#include "tests/fuzz/fuzz_common.h"

namespace vigil {
namespace {

constexpr unsigned kVigilGid = 998;
constexpr unsigned kAdminGid = 1001;
// ControlServer's read buffer (kMaxRequest in agent/control.cpp).
constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr std::size_t kMaxReply = 8 << 20;

// No C0 control, DEL, C1 control (U+0080-U+009F) or bidi override (U+202A-202E, U+2066-2069).
bool terminal_safe(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    const auto next = [&](std::size_t k) {
      return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
    };
    if (c == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) return false;
    if (c == 0xe2 && next(1) == 0x80 && next(2) >= 0xaa && next(2) <= 0xae) return false;
    if (c == 0xe2 && next(1) == 0x81 && next(2) >= 0xa6 && next(2) <= 0xa9) return false;
  }
  return true;
}

bool member(const ControlPeer& peer, unsigned gid) {
  if (peer.gid == gid) return true;
  for (const unsigned g : peer.groups) {
    if (g == gid) return true;
  }
  return false;
}

}  // namespace
}  // namespace vigil

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  if (size < 2) return 0;
  // Byte 0: bit 0 root, bits 1-2 primary group (other, vigil, admin, unknown -1), bits 3-4
  // supplementary groups (none, vigil, admin, both), bits 5-7 the uid when not root.
  // Byte 1: bit 0 the vigil group exists, bit 1 the admin group exists, bit 2 one is configured.
  const std::uint8_t who = data[0];
  const std::uint8_t host = data[1];
  ControlPeer peer;
  peer.uid = (who & 1) != 0 ? 0 : 1000 + ((who >> 5) & 7);
  constexpr unsigned kGids[] = {100, kVigilGid, kAdminGid, static_cast<unsigned>(-1)};
  peer.gid = kGids[(who >> 1) & 3];
  if ((who & 0x08) != 0) peer.groups.push_back(kVigilGid);
  if ((who & 0x10) != 0) peer.groups.push_back(kAdminGid);
  peer.pid = 4242;
  ControlAccess access;
  if ((host & 1) != 0) access.read_gid = kVigilGid;
  if ((host & 4) != 0) {
    access.admin_group = "vigil-admin";
    if ((host & 2) != 0) access.admin_gid = kAdminGid;
  }

  std::string_view sent = fuzz::as_text(data + 2, size - 2);
  const std::size_t nl = sent.find('\n');
  if (nl == std::string_view::npos && sent.size() >= kMaxRequest) return 0;  // dropped unread
  if (nl != std::string_view::npos) sent = sent.substr(0, nl + 1);
  const std::string line(sent);

  // The permission table against its rules, for the command the line names (if any).
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (!request.is_discarded() && request.is_object()) {
    const auto cmd = request.find("cmd");
    const std::string name =
        cmd != request.end() && cmd->is_string() ? cmd->get<std::string>() : std::string();
    const std::string denied = control_denied(access, peer, name);
    const std::size_t limit = control_request_limit(name);
    FUZZ_CHECK(limit == 1024 || (name == "maintain" && limit == kMaxRequest));

    const std::optional<ControlClass> c = control_class(name);
    const bool reader = access.read_gid && member(peer, *access.read_gid);
    const bool admin = access.admin_gid && member(peer, *access.admin_gid);
    if (peer.uid == 0) {
      FUZZ_CHECK(denied.empty());
    } else if (c == ControlClass::read) {
      FUZZ_CHECK(denied.empty() == (reader || admin));
    } else {
      // Change commands and unknown ones (which must fail closed) are for admins only.
      FUZZ_CHECK(denied.empty() == admin);
    }
    if (!denied.empty()) FUZZ_CHECK(denied.rfind("permission denied: ", 0) == 0);
    FUZZ_CHECK(terminal_safe("control socket: refused '" + visible(name) + "'"));
  }
  // The server's own answer (agent/control_access.cpp), with a stand-in for the daemon's handler
  // that names the command.
  const std::string out = control_reply(
      line, peer, access,
      [](const nlohmann::json& r, const ControlPeer&) {
        return nlohmann::json{{"ok", true}, {"cmd", r.value("cmd", nlohmann::json())}};
      },
      kMaxReply);
  FUZZ_CHECK(out.find('\n') == out.size() - 1);
  // The CLI reads the reply back (agent/control.cpp, control_request).
  const nlohmann::json back = nlohmann::json::parse(out, nullptr, false);
  FUZZ_CHECK(!back.is_discarded() && back.is_object());
  // What the CLI may print of a hostile name.
  FUZZ_CHECK(terminal_safe(visible(line)));
  return 0;
}
