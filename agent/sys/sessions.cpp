#include "agent/sys/sessions.h"

#include <systemd/sd-login.h>

#include <cstdlib>
#include <cstring>
#include <memory>

#include "agent/sys/errors.h"

namespace vigil::sys {
namespace {

// A string libsystemd allocated.
using SdString = std::unique_ptr<char, decltype(&std::free)>;
SdString sd_string(char* s) { return SdString(s, &std::free); }

// Calls getter(id, &value) and owns what it returned; null when it failed or gave nothing.
template <typename Getter>
SdString get(Getter getter, const char* id) {
  char* value = nullptr;
  if (getter(id, &value) < 0) return sd_string(nullptr);
  return sd_string(value);
}

}  // namespace

Result<std::vector<LoginSession>> remote_sessions() {
  char** raw = nullptr;
  const int n = sd_get_sessions(&raw);
  if (n < 0) return make_error("cannot list logind sessions: " + errno_text(-n));
  std::vector<LoginSession> out;
  for (int i = 0; i < n; ++i) {
    const SdString id = sd_string(raw[i]);
    const SdString service = get(sd_session_get_service, id.get());
    const SdString state = get(sd_session_get_state, id.get());
    const SdString host = get(sd_session_get_remote_host, id.get());
    if (service == nullptr || state == nullptr || host == nullptr) continue;
    if (std::strcmp(state.get(), "closing") == 0) continue;
    LoginSession s{id.get(), service.get(), host.get(), std::nullopt};
    uid_t uid = 0;
    if (sd_session_get_uid(id.get(), &uid) >= 0) s.uid = uid;
    out.push_back(std::move(s));
  }
  std::free(raw);  // NOLINT: the array libsystemd allocated; its strings were freed above
  return out;
}

}  // namespace vigil::sys
