#include "agent/core/listen_address.h"

#include <charconv>
#include <cstdio>

namespace vigil {

namespace {

// How much of a rejected address an error quotes: enough to recognise it, not a flood.
constexpr std::size_t kMaxQuoted = 64;

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, kMaxQuoted)) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b >= 0x7f || c == '"' || c == '\\') {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", b);
      out += hex;
    } else {
      out += c;
    }
  }
  if (text.size() > kMaxQuoted) out += "...";
  return out + "\"";
}

}  // namespace

HostPort split_host_port(std::string_view text) {
  HostPort out;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return out;
    }
    out.host = text.substr(1, close - 1);
    out.port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return out;
    out.host = text.substr(0, colon);
    out.port = text.substr(colon + 1);
    if (out.host.find(':') != std::string_view::npos) {
      out.unbracketed_v6 = true;
      return out;
    }
  }
  out.ok = true;
  return out;
}

std::optional<unsigned> parse_port(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 5 || ec != std::errc() || end != text.data() + text.size() ||
      value > 65535) {
    return std::nullopt;
  }
  return value;
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
  const std::string what = "metrics address " + quote(text);
  const HostPort split = split_host_port(text);
  if (split.unbracketed_v6) {
    return make_error(what + ": an IPv6 address needs brackets, as in [::1]:9717");
  }
  if (!split.ok) return make_error(what + ": expected 127.0.0.1:PORT or [::1]:PORT");
  const std::string_view host = split.host;
  const std::optional<unsigned> value = parse_port(split.port);
  if (!value) return make_error(what + ": the port must be a number from 0 to 65535");
  Result<IpAddress> ip = parse_ip(host);
  if (!ip) {
    return make_error(what + ": the host must be a loopback IP address (127.0.0.1 or [::1]), " +
                      "not a name");
  }
  if (!ip->is_loopback()) {
    return make_error(what +
                      " is not a loopback address: metrics are served on 127.0.0.0/8 or ::1 only, "
                      "so that they never leak off the host by accident");
  }
  return ListenAddress{*ip, static_cast<std::uint16_t>(*value)};
}

}  // namespace vigil
