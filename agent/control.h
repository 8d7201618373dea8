// The control socket: the running daemon answers the CLI (`vigil status`, `incidents`,
// `maintain`, ...) over a Unix stream socket. One JSON request line in, one JSON answer line
// out, then the connection closes. Access is the file's (the socket is 0660 root:vigil, its
// directory 0750 root:vigil) and, per command, the peer's credentials (control_access.h).
#pragma once

#include <utility>
// (utility first: Boost.Asio's headers use std::exchange without including it)
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/control_access.h"
#include "agent/core/result.h"

namespace vigil {

class ControlServer {
 public:
  using Handler = ControlHandler;

  ControlServer(boost::asio::io_context& io, Handler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path`. A stale socket file (nobody answers on it) is replaced; a live one means
  // another vigil runs, and is an error.
  Result<bool> listen(const std::string& path);
  // Who may run which command (control_access.h). Until set: root only.
  void set_access(ControlAccess access);
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// The CLI side: one request, one answer, blocking, with a deadline. Errors say what to do
// ("is vigil running?", "permission denied: run as root or join the vigil group").
Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                       int timeout_ms = 5000);

}  // namespace vigil
