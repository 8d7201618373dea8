// Login sessions as systemd-logind records them (sd-login): read-only, no D-Bus round trip.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "agent/core/result.h"

namespace vigil::sys {

struct LoginSession {
  std::string id;           // logind's session id ("42", "c3")
  std::string service;      // the PAM service that opened it ("sshd", "login")
  std::string remote_host;  // as PAM passed it: an address, or a name when sshd has UseDNS
  std::optional<unsigned> uid;
};

// Every session that is not "closing" (the user logged out and only leftover processes remain)
// and has a remote host. A session that vanishes or cannot be read while it is listed is left
// out; an error only when logind's session list itself cannot be read.
Result<std::vector<LoginSession>> remote_sessions();

}  // namespace vigil::sys
