#include "agent/core/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace vigil {
namespace {

// How much of a rejected input an error message quotes: enough to recognise it in a log line,
// little enough that a hostile 10 kB "address" cannot flood the log.
constexpr std::size_t kMaxQuotedInput = 64;

// "/128" is the longest prefix suffix a CIDR can carry.
constexpr std::size_t kMaxCidrTextLength = kMaxIpTextLength + 4;

// The bytes a family uses.
constexpr std::size_t byte_count(IpAddress::Family family) {
  return family == IpAddress::Family::v4 ? 4 : 16;
}

constexpr int bit_count(IpAddress::Family family) {
  return static_cast<int>(byte_count(family)) * 8;
}

void append_hex_escape(std::string& out, unsigned char c) {
  constexpr char kHex[] = "0123456789abcdef";
  out.append("\\x");
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0x0f]);
}

bool is_printable_ascii(unsigned char c) { return c >= 0x20 && c < 0x7f; }

// The input as an error message shows it: in double quotes, at most kMaxQuotedInput bytes, with
// control bytes, non-ASCII bytes, '"' and '\' escaped as \xNN so the message stays one line of
// plain ASCII that cannot be confused with its surroundings.
std::string quote(std::string_view text) {
  std::string out = "\"";
  const std::size_t shown = std::min(text.size(), kMaxQuotedInput);
  for (std::size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (is_printable_ascii(c) && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      append_hex_escape(out, c);
    }
  }
  out.push_back('"');
  if (shown < text.size()) {
    out.append("... (" + std::to_string(text.size()) + " bytes)");
  }
  return out;
}

// One byte as a reason names it: ';' or byte \x00.
std::string describe_byte(unsigned char c) {
  std::string out;
  if (is_printable_ascii(c) && c != '\\') {
    out.append("'").append(1, static_cast<char>(c)).append("'");
  } else {
    out.append("byte ");
    append_hex_escape(out, c);
  }
  return out;
}

Error ip_error(std::string_view text, std::string_view reason) {
  std::string message = "invalid IP address " + quote(text) + ": ";
  message.append(reason);
  return make_error(std::move(message));
}

Error cidr_error(std::string_view text, std::string_view reason) {
  std::string message = "invalid CIDR " + quote(text) + ": ";
  message.append(reason);
  return make_error(std::move(message));
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_address_char(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

// A strict dotted quad. On failure, `reason` says why.
bool parse_ipv4(std::string_view text, IpAddress& out, std::string& reason) {
  IpAddress ip;
  ip.family = IpAddress::Family::v4;
  std::size_t start = 0;
  for (int octet = 0; octet < 4; ++octet) {
    std::size_t end = text.find('.', start);
    if (octet == 3) {
      if (end != std::string_view::npos) {
        reason = "more than 4 dot-separated numbers";
        return false;
      }
      end = text.size();
    } else if (end == std::string_view::npos) {
      reason = "fewer than 4 dot-separated numbers";
      return false;
    }
    const std::string_view part = text.substr(start, end - start);
    if (part.empty()) {
      reason = "empty number between dots";
      return false;
    }
    std::string quoted_part = "'";
    quoted_part.append(part).append("'");
    if (!std::all_of(part.begin(), part.end(), is_digit)) {
      reason = quoted_part + " is not a decimal number";
      return false;
    }
    if (part.size() > 1 && part.front() == '0') {
      reason = quoted_part + " has a leading zero (ambiguous: some parsers read it as octal)";
      return false;
    }
    int value = 0;
    // At most 3 digits are read, so a long run of digits cannot overflow `value`.
    for (std::size_t i = 0; i < part.size() && i < 4; ++i) value = value * 10 + (part[i] - '0');
    if (part.size() > 3 || value > 255) {
      reason = quoted_part + " is above 255";
      return false;
    }
    ip.bytes[static_cast<std::size_t>(octet)] = static_cast<std::uint8_t>(value);
    start = end + 1;
  }
  out = ip;
  return true;
}

// inet_pton(AF_INET6) on a bounded, NUL-terminated copy. The caller has checked the length and
// the alphabet.
bool parse_ipv6(std::string_view text, IpAddress& out) {
  char buffer[kMaxIpTextLength + 1] = {};
  if (text.size() > kMaxIpTextLength) return false;
  std::memcpy(buffer, text.data(), text.size());
  buffer[text.size()] = '\0';
  in6_addr addr{};
  if (inet_pton(AF_INET6, buffer, &addr) != 1) return false;
  IpAddress ip;
  ip.family = IpAddress::Family::v6;
  std::memcpy(ip.bytes.data(), &addr, ip.bytes.size());
  // ::ffff:a.b.c.d is how dual-stack sockets report IPv4 peers; it is the IPv4 address.
  constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), ip.bytes.begin())) {
    IpAddress v4;
    v4.family = IpAddress::Family::v4;
    std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
    ip = v4;
  }
  out = ip;
  return true;
}

// Whether the first `prefix` bits of a and b are equal; prefix must be within the family.
bool prefix_equal(const IpAddress& a, const IpAddress& b, int prefix) {
  const auto full = static_cast<std::size_t>(prefix / 8);
  if (!std::equal(a.bytes.begin(), a.bytes.begin() + static_cast<std::ptrdiff_t>(full),
                  b.bytes.begin())) {
    return false;
  }
  const int rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.bytes[full] & mask) == (b.bytes[full] & mask);
}

// `base` with every bit after the first `prefix` cleared.
IpAddress network_of(const IpAddress& base, int prefix) {
  IpAddress out;
  out.family = base.family;
  const auto full = static_cast<std::size_t>(prefix / 8);
  std::copy(base.bytes.begin(), base.bytes.begin() + static_cast<std::ptrdiff_t>(full),
            out.bytes.begin());
  const int rest = prefix % 8;
  if (rest != 0) {
    out.bytes[full] = static_cast<std::uint8_t>(base.bytes[full] & (0xff << (8 - rest)));
  }
  return out;
}

}  // namespace

std::string IpAddress::to_string() const {
  if (family == Family::v4) {
    std::string out;
    for (std::size_t i = 0; i < 4; ++i) {
      if (i != 0) out.push_back('.');
      out.append(std::to_string(bytes[i]));
    }
    return out;
  }
  in6_addr addr{};
  std::memcpy(&addr, bytes.data(), bytes.size());
  char buffer[INET6_ADDRSTRLEN] = {};
  // Cannot fail: the buffer is large enough for any IPv6 address.
  if (inet_ntop(AF_INET6, &addr, buffer, sizeof buffer) == nullptr) return std::string();
  return std::string(buffer);
}

bool IpAddress::operator==(const IpAddress& other) const {
  if (family != other.family) return false;
  const auto n = static_cast<std::ptrdiff_t>(byte_count(family));
  return std::equal(bytes.begin(), bytes.begin() + n, other.bytes.begin());
}

bool IpAddress::is_loopback() const {
  if (family == Family::v4) return bytes[0] == 127;
  return std::all_of(bytes.begin(), bytes.end() - 1, [](std::uint8_t b) { return b == 0; }) &&
         bytes[15] == 1;
}

bool IpAddress::is_link_local() const {
  if (family == Family::v4) return bytes[0] == 169 && bytes[1] == 254;
  return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80;
}

Result<IpAddress> parse_ip(std::string_view text) {
  if (text.size() > kMaxIpTextLength) {
    return ip_error(text, "too long (" + std::to_string(text.size()) + " bytes; at most " +
                              std::to_string(kMaxIpTextLength) + ")");
  }
  if (text.empty()) return ip_error(text, "empty");
  if (text.front() == '[' || text.back() == ']') {
    return ip_error(text, "brackets are not allowed; give the bare address");
  }
  if (text.find('%') != std::string_view::npos) {
    return ip_error(text, "zone ids ('%...') are not allowed");
  }
  for (const char c : text) {
    if (!is_address_char(c)) {
      return ip_error(
          text, describe_byte(static_cast<unsigned char>(c)) + " cannot appear in an address");
    }
  }
  IpAddress ip;
  if (text.find(':') == std::string_view::npos) {
    std::string reason;
    if (!parse_ipv4(text, ip, reason)) return ip_error(text, reason);
    return ip;
  }
  if (!parse_ipv6(text, ip)) {
    // "1.2.3.4:22": an IPv4 address with a port is a common thing to capture by mistake.
    const std::string_view head = text.substr(0, text.find(':'));
    IpAddress ignored;
    std::string ignored_reason;
    if (parse_ipv4(head, ignored, ignored_reason)) {
      return ip_error(text, "a port is not allowed; give the bare address");
    }
    return ip_error(text, "not a valid IPv6 address");
  }
  return ip;
}

bool Cidr::contains(const IpAddress& ip) const {
  if (ip.family != base.family) return false;
  if (prefix < 0 || prefix > bit_count(base.family)) return false;
  return prefix_equal(base, ip, prefix);
}

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

Result<Cidr> parse_cidr(std::string_view text) {
  if (text.size() > kMaxCidrTextLength) {
    return cidr_error(text, "too long (" + std::to_string(text.size()) + " bytes; at most " +
                                std::to_string(kMaxCidrTextLength) + ")");
  }
  const std::size_t slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  Result<IpAddress> ip = parse_ip(address);
  if (!ip) return cidr_error(text, ip.error().message);
  const bool mapped = ip->family == IpAddress::Family::v4 && address.find(':') != address.npos;
  const int max_prefix = bit_count(ip->family);
  Cidr cidr{*ip, max_prefix};
  if (slash == std::string_view::npos) return cidr;

  const std::string_view digits = text.substr(slash + 1);
  if (digits.empty()) return cidr_error(text, "no prefix length after '/'");
  if (!std::all_of(digits.begin(), digits.end(), is_digit)) {
    return cidr_error(text, "the prefix length is not a decimal number");
  }
  if (digits.size() > 1 && digits.front() == '0') {
    return cidr_error(text, "the prefix length has a leading zero");
  }
  if (digits.size() > 3) return cidr_error(text, "the prefix length is out of range");
  int prefix = 0;
  for (const char c : digits) prefix = prefix * 10 + (c - '0');
  if (mapped) {
    // The 96 bits of ::ffff: are the mapping itself; the IPv4 prefix is what follows them.
    if (prefix < 96 || prefix > 128) {
      return cidr_error(text,
                        "an IPv4-mapped prefix must be 96-128, got " + std::to_string(prefix));
    }
    prefix -= 96;
  } else if (prefix > max_prefix) {
    return cidr_error(text, "prefix length " + std::to_string(prefix) + " is out of range (0-" +
                                std::to_string(max_prefix) + ")");
  }
  const IpAddress network = network_of(*ip, prefix);
  if (!(network == *ip)) {
    return cidr_error(text, "host bits are set after the prefix (did you mean " +
                                network.to_string() + "/" + std::to_string(prefix) + "?)");
  }
  cidr.prefix = prefix;
  return cidr;
}

}  // namespace vigil
