// Strict IP address and CIDR parsing for text that comes from untrusted places (journal lines).
// A parsed address is later handed as one argv element to firewall tools (`ufw deny from IP`),
// so the parser accepts only unambiguous forms and rejects anything doubtful.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/core/result.h"

namespace vigil {

struct IpAddress {
  enum class Family { v4, v6 };

  // A default IpAddress is 0.0.0.0: zeroed bytes keep == and to_string well defined.
  Family family = Family::v4;
  // Network byte order. IPv4 uses bytes[0..3]; the rest stay zero.
  std::array<std::uint8_t, 16> bytes{};

  // The canonical text: dotted quad without leading zeros for IPv4, RFC 5952 compressed
  // lower-case (inet_ntop) for IPv6. parse_ip(a.to_string()) == a.
  std::string to_string() const;

  // True when the family and the bytes the family uses are equal (unused bytes are ignored).
  bool operator==(const IpAddress& other) const;

  // True for 127.0.0.0/8 and ::1.
  bool is_loopback() const;

  // True for 169.254.0.0/16 and fe80::/10.
  bool is_link_local() const;
};

// The longest text parse_ip considers: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45
// bytes (INET6_ADDRSTRLEN - 1); anything longer cannot be an address.
inline constexpr std::size_t kMaxIpTextLength = 45;

// Parses exactly one IP address and nothing else:
//  - IPv4: a dotted quad of four decimal numbers 0-255, without leading zeros ("01.2.3.4" is
//    rejected: some parsers read it as octal), hex, shortened forms or anything around it;
//  - IPv6: what inet_pton(AF_INET6) accepts, without [brackets] or a %zone id;
//  - an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is returned as the IPv4 address.
// Text longer than kMaxIpTextLength is rejected before anything else is looked at. Never reads
// outside `text` (it need not be NUL-terminated). The error message quotes the input (at most 64
// bytes of it, with control and non-ASCII bytes escaped as \xNN) and says why it was rejected.
Result<IpAddress> parse_ip(std::string_view text);

// An address block: the addresses whose first `prefix` bits equal base's.
struct Cidr {
  IpAddress base;
  // 0 matches every address of base's family; parse_cidr always sets it explicitly.
  int prefix = 0;

  // True when `ip` has base's family and its first `prefix` bits equal base's. A Cidr whose
  // prefix is outside 0-32 (IPv4) or 0-128 (IPv6) contains nothing, so a hand-made bad entry in
  // an allow-list exempts no one.
  bool contains(const IpAddress& ip) const;

  // "base/prefix", with base in canonical form.
  std::string to_string() const;
};

// Parses "10.0.0.0/8", "2001:db8::/32", or a bare address (meaning /32 or /128). The address
// follows parse_ip's rules; the prefix is a decimal number without sign or leading zeros, at most
// 32 (IPv4) or 128 (IPv6); host bits beyond the prefix must be zero. An IPv4-mapped base
// ("::ffff:10.0.0.0/104") is returned as IPv4 with the prefix reduced by 96. Errors quote the
// input and say why.
Result<Cidr> parse_cidr(std::string_view text);

}  // namespace vigil
