// "HOST:PORT" listen addresses (the metrics endpoint), read the same way by the config check and
// by the server.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/core/ip.h"
#include "agent/core/result.h"

namespace vigil {

// A metrics listen address: a loopback IP and a port.
struct ListenAddress {
  IpAddress ip;
  std::uint16_t port = 0;
};

// Parses "127.0.0.1:9717" or "[::1]:9717" (port 0: any free port). Only loopback addresses
// (127.0.0.0/8, ::1) are accepted, so metrics never leak off the host by accident; the error
// says so. Host names are refused (nothing to resolve at config time). For config validation too.
Result<ListenAddress> parse_listen_address(std::string_view text);

// The split parse_listen_address makes, shared with config validation so that both read an
// address the same way: "HOST:PORT" or "[V6]:PORT" -> host (without brackets) and port text.
// `ok` is false when the shape is wrong; `unbracketed_v6` when a bare IPv6 address's colons
// make the port ambiguous.
struct HostPort {
  std::string_view host;
  std::string_view port;
  bool ok = false;
  bool unbracketed_v6 = false;
};
HostPort split_host_port(std::string_view text);
// A port: 1 to 5 decimal digits, at most 65535 (0 included); nullopt otherwise.
std::optional<unsigned> parse_port(std::string_view text);

}  // namespace vigil
