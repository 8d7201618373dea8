// parse_ip and parse_cidr on any bytes (they parse journal captures: hostile text). Invariants:
// an accepted address's canonical text parses again to the same address and is a fixed point;
// a plain dotted quad is already canonical; a bare address is its own /32 or /128; an accepted
// CIDR round-trips and contains its base; every error is one line of printable ASCII.
#include <cstddef>
#include <cstdint>

#include "agent/core/ip.h"
#include "tests/fuzz/fuzz_common.h"

using vigil::IpAddress;
using vigil::fuzz::printable_ascii;

namespace {

int bits_of(const IpAddress& ip) { return ip.family == IpAddress::Family::v4 ? 32 : 128; }

void check_ip(std::string_view text) {
  const vigil::Result<IpAddress> ip = vigil::parse_ip(text);
  if (!ip) {
    FUZZ_CHECK(!ip.error().message.empty());
    FUZZ_CHECK(printable_ascii(ip.error().message));
    FUZZ_CHECK(ip.error().message.size() < 512);
    return;
  }
  FUZZ_CHECK(text.size() <= vigil::kMaxIpTextLength);
  const std::string canonical = ip->to_string();
  FUZZ_CHECK(!canonical.empty());
  const vigil::Result<IpAddress> again = vigil::parse_ip(canonical);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *ip);
  FUZZ_CHECK(again->family == ip->family);
  FUZZ_CHECK(again->to_string() == canonical);
  // Unused bytes of an IPv4 address stay zero (== and to_string rely on it).
  if (ip->family == IpAddress::Family::v4) {
    for (std::size_t i = 4; i < ip->bytes.size(); ++i) FUZZ_CHECK(ip->bytes[i] == 0);
    // The journal probe keeps a dotted quad as captured: it must already be canonical.
    if (text.find(':') == std::string_view::npos) FUZZ_CHECK(canonical == text);
  }
  (void)ip->is_loopback();
  (void)ip->is_link_local();

  const vigil::Result<vigil::Cidr> bare = vigil::parse_cidr(text);
  FUZZ_CHECK(bare.has_value());
  FUZZ_CHECK(bare->base == *ip);
  FUZZ_CHECK(bare->prefix == bits_of(*ip));
  FUZZ_CHECK(bare->contains(*ip));
}

void check_cidr(std::string_view text) {
  const vigil::Result<vigil::Cidr> cidr = vigil::parse_cidr(text);
  if (!cidr) {
    FUZZ_CHECK(!cidr.error().message.empty());
    FUZZ_CHECK(printable_ascii(cidr.error().message));
    FUZZ_CHECK(cidr.error().message.size() < 1024);
    return;
  }
  FUZZ_CHECK(cidr->prefix >= 0 && cidr->prefix <= bits_of(cidr->base));
  FUZZ_CHECK(cidr->contains(cidr->base));
  const std::string canonical = cidr->to_string();
  const vigil::Result<vigil::Cidr> again = vigil::parse_cidr(canonical);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->base == cidr->base);
  FUZZ_CHECK(again->prefix == cidr->prefix);
  FUZZ_CHECK(again->to_string() == canonical);
  // The base is the network itself (host bits zero): its canonical text parses as an address.
  FUZZ_CHECK(vigil::parse_ip(cidr->base.to_string()).has_value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = vigil::fuzz::as_text(data, size);
  check_ip(text);
  check_cidr(text);
  return 0;
}
