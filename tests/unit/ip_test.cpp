// parse_ip / parse_cidr: addresses captured from untrusted journal lines, later passed to ufw.
#include "agent/core/ip.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace vigil {
namespace {

// The parsed address, or a failure naming the input and the error.
IpAddress Parse(std::string_view text) {
  Result<IpAddress> r = parse_ip(text);
  EXPECT_TRUE(r.has_value()) << "\"" << text << "\": " << r.error().message;
  return r ? *r : IpAddress{};
}

// The error message, or a failure naming the input and what it parsed to.
std::string ParseError(std::string_view text) {
  Result<IpAddress> r = parse_ip(text);
  EXPECT_FALSE(r.has_value()) << "input of " << text.size() << " bytes parsed as "
                              << r->to_string();
  return r ? std::string() : r.error().message;
}

Cidr ParseCidr(std::string_view text) {
  Result<Cidr> r = parse_cidr(text);
  EXPECT_TRUE(r.has_value()) << "\"" << text << "\": " << r.error().message;
  return r ? *r : Cidr{};
}

std::string ParseCidrError(std::string_view text) {
  Result<Cidr> r = parse_cidr(text);
  EXPECT_FALSE(r.has_value()) << "\"" << text << "\" parsed as " << r->to_string();
  return r ? std::string() : r.error().message;
}

TEST(ParseIp, ValidIpv4) {
  const IpAddress ip = Parse("192.168.1.20");
  EXPECT_EQ(ip.family, IpAddress::Family::v4);
  EXPECT_EQ(ip.bytes[0], 192);
  EXPECT_EQ(ip.bytes[1], 168);
  EXPECT_EQ(ip.bytes[2], 1);
  EXPECT_EQ(ip.bytes[3], 20);
  EXPECT_EQ(ip.to_string(), "192.168.1.20");
  EXPECT_EQ(Parse("0.0.0.0").to_string(), "0.0.0.0");
  EXPECT_EQ(Parse("255.255.255.255").to_string(), "255.255.255.255");
  EXPECT_EQ(Parse("10.0.100.9").to_string(), "10.0.100.9");
}

TEST(ParseIp, ValidIpv6CanonicalForm) {
  const IpAddress ip = Parse("2001:db8::1");
  EXPECT_EQ(ip.family, IpAddress::Family::v6);
  EXPECT_EQ(ip.bytes[0], 0x20);
  EXPECT_EQ(ip.bytes[1], 0x01);
  EXPECT_EQ(ip.bytes[15], 0x01);
  EXPECT_EQ(Parse("2001:DB8:0:0:0:0:0:1").to_string(), "2001:db8::1");
  EXPECT_EQ(Parse("2001:0db8:0000:0000:0000:ff00:0042:8329").to_string(), "2001:db8::ff00:42:8329");
  EXPECT_EQ(Parse("::1").to_string(), "::1");
  EXPECT_EQ(Parse("::").to_string(), "::");
  EXPECT_EQ(Parse("FE80::A:b").to_string(), "fe80::a:b");
  // RFC 5952: a single zero group is not compressed; of two equal runs, the first is.
  EXPECT_EQ(Parse("2001:db8:0:1:1:1:1:1").to_string(), "2001:db8:0:1:1:1:1:1");
  EXPECT_EQ(Parse("2001:db8:0:0:1:0:0:1").to_string(), "2001:db8::1:0:0:1");
}

TEST(ParseIp, ToStringRoundTrips) {
  for (const char* text : {"1.2.3.4", "2001:db8::ff00:42:8329", "::1", "fe80::1"}) {
    const IpAddress ip = Parse(text);
    EXPECT_EQ(Parse(ip.to_string()), ip) << text;
  }
}

TEST(ParseIp, Ipv4MappedIsNormalisedToIpv4) {
  const IpAddress ip = Parse("::ffff:1.2.3.4");
  EXPECT_EQ(ip.family, IpAddress::Family::v4);
  EXPECT_EQ(ip.to_string(), "1.2.3.4");
  EXPECT_EQ(ip, Parse("1.2.3.4"));
  EXPECT_EQ(Parse("::FFFF:0102:0304"), Parse("1.2.3.4"));
  // Not mapped: stays IPv6.
  EXPECT_EQ(Parse("::fffe:1.2.3.4").family, IpAddress::Family::v6);
}

TEST(ParseIp, LongestAddressIsAccepted) {
  constexpr std::string_view kLongest = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
  static_assert(kLongest.size() == kMaxIpTextLength);
  EXPECT_EQ(Parse(kLongest).to_string(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

TEST(ParseIp, HostileStringsAreRejected) {
  for (const char* text : {"1.2.3.4; reboot",
                           "999.1.1.1",
                           "1.2.3",
                           "1.2.3.4.5",
                           " 1.2.3.4",
                           "1.2.3.4 ",
                           "01.2.3.4",
                           "1.2.3.4:22",
                           "[::1]",
                           "fe80::1%eth0",
                           "$(reboot)",
                           "",
                           "\xff\xfe",
                           "0x7f.0.0.1",
                           "1e2.0.0.1",
                           "1.2.3.4\n",
                           "-1.2.3.4",
                           "+1.2.3.4",
                           "1..2.3",
                           "1.2.3.",
                           ".1.2.3.4",
                           "1.2.3.256",
                           "1.2.3.0004",
                           "127.1",
                           "2130706433",
                           "::1 ",
                           "::ffff:01.2.3.4",
                           ":::",
                           "1:2:3:4:5:6:7:8:9",
                           "12345::",
                           "g::1",
                           "::1/128",
                           "localhost",
                           "1.2.3.4\t",
                           "1.2.3.4\r\n",
                           "１.2.3.4",
                           "--1.2.3.4",
                           "1.2.3.4 -j ACCEPT"}) {
    ParseError(text);
  }
}

TEST(ParseIp, EmbeddedNulIsRejected) {
  constexpr std::string_view kWithNul("1.2.3.4\0x", 9);
  const std::string message = ParseError(kWithNul);
  EXPECT_NE(message.find("\\x00"), std::string::npos) << message;
  ParseError(std::string_view("1.2.3.4\0", 8));
}

TEST(ParseIp, NeverReadsPastTheView) {
  // The view ends before "5"; a parser that read up to a NUL would see 1.2.3.45.
  const std::string buffer = "1.2.3.45";
  EXPECT_EQ(Parse(std::string_view(buffer.data(), 7)).to_string(), "1.2.3.4");
  const std::string v6 = "::12345";
  EXPECT_EQ(Parse(std::string_view(v6.data(), 6)).to_string(), "::1234");
}

TEST(ParseIp, OverlongInputIsRejectedBeforeParsing) {
  const std::string huge(10'000, '1');
  const std::string message = ParseError(huge);
  EXPECT_NE(message.find("too long"), std::string::npos) << message;
  EXPECT_NE(message.find("10000 bytes"), std::string::npos) << message;
  EXPECT_LT(message.size(), 200u) << "the message quotes at most 64 bytes";

  // One byte more than the longest address is rejected even though it would otherwise be valid
  // text for inet_pton to look at.
  ParseError(std::string(kMaxIpTextLength + 1, ':'));
}

TEST(ParseIp, ErrorMessageNamesInputAndReason) {
  EXPECT_EQ(ParseError("1.2.3.4; reboot"),
            "invalid IP address \"1.2.3.4; reboot\": ';' cannot appear in an address");
  EXPECT_EQ(ParseError("01.2.3.4"),
            "invalid IP address \"01.2.3.4\": '01' has a leading zero (ambiguous: some parsers "
            "read it as octal)");
  EXPECT_EQ(ParseError("999.1.1.1"), "invalid IP address \"999.1.1.1\": '999' is above 255");
  EXPECT_EQ(ParseError("1.2.3.4:22"),
            "invalid IP address \"1.2.3.4:22\": a port is not allowed; give the bare address");
  EXPECT_NE(ParseError("fe80::1%eth0").find("zone"), std::string::npos);
  EXPECT_NE(ParseError("[::1]").find("brackets"), std::string::npos);
  EXPECT_NE(ParseError("").find("empty"), std::string::npos);
}

TEST(ParseIp, ErrorMessageEscapesAndTruncatesInput) {
  // Control and non-ASCII bytes are shown as \xNN so the log line stays one line of ASCII.
  EXPECT_EQ(ParseError("\xff\xfe"),
            "invalid IP address \"\\xff\\xfe\": byte \\xff cannot appear in an address");
  EXPECT_EQ(ParseError("1\n2"),
            "invalid IP address \"1\\x0a2\": byte \\x0a cannot appear in an "
            "address");
  const std::string long_input = std::string(64, 'a') + "TAIL";
  const std::string message = ParseError(long_input);
  EXPECT_NE(message.find(std::string(64, 'a') + "\"..."), std::string::npos) << message;
  EXPECT_EQ(message.find("TAIL"), std::string::npos) << message;
}

TEST(IpAddress, Equality) {
  EXPECT_EQ(Parse("::1"), Parse("0:0:0:0:0:0:0:1"));
  EXPECT_NE(Parse("1.2.3.4"), Parse("1.2.3.5"));
  // The same bytes in different families are different addresses.
  EXPECT_NE(Parse("::"), Parse("0.0.0.0"));
  // Bytes an IPv4 address does not use do not take part.
  IpAddress a = Parse("1.2.3.4");
  a.bytes[10] = 0xaa;
  EXPECT_EQ(a, Parse("1.2.3.4"));
}

TEST(IpAddress, LoopbackAndLinkLocal) {
  EXPECT_TRUE(Parse("127.0.0.1").is_loopback());
  EXPECT_TRUE(Parse("127.255.0.9").is_loopback());
  EXPECT_TRUE(Parse("::1").is_loopback());
  EXPECT_TRUE(Parse("::ffff:127.0.0.1").is_loopback());
  EXPECT_FALSE(Parse("128.0.0.1").is_loopback());
  EXPECT_FALSE(Parse("::").is_loopback());
  EXPECT_FALSE(Parse("::2").is_loopback());
  EXPECT_FALSE(Parse("1::1").is_loopback());

  EXPECT_TRUE(Parse("169.254.1.1").is_link_local());
  EXPECT_TRUE(Parse("fe80::1").is_link_local());
  EXPECT_TRUE(Parse("febf::1").is_link_local());
  EXPECT_FALSE(Parse("fec0::1").is_link_local());
  EXPECT_FALSE(Parse("169.253.1.1").is_link_local());
  EXPECT_FALSE(Parse("10.0.0.1").is_link_local());
}

TEST(ParseCidr, ValidBlocks) {
  Cidr c = ParseCidr("10.0.0.0/8");
  EXPECT_EQ(c.base, Parse("10.0.0.0"));
  EXPECT_EQ(c.prefix, 8);
  c = ParseCidr("2001:db8::/32");
  EXPECT_EQ(c.base, Parse("2001:db8::"));
  EXPECT_EQ(c.prefix, 32);
  EXPECT_EQ(ParseCidr("0.0.0.0/0").prefix, 0);
  EXPECT_EQ(ParseCidr("::/0").prefix, 0);
  EXPECT_EQ(ParseCidr("192.168.0.0/23").to_string(), "192.168.0.0/23");
}

TEST(ParseCidr, BareAddressIsAFullPrefix) {
  EXPECT_EQ(ParseCidr("1.2.3.4").prefix, 32);
  EXPECT_EQ(ParseCidr("::1").prefix, 128);
  EXPECT_EQ(ParseCidr("::ffff:1.2.3.4").prefix, 32);
}

TEST(ParseCidr, Ipv4MappedBlockBecomesIpv4) {
  const Cidr c = ParseCidr("::ffff:10.0.0.0/104");
  EXPECT_EQ(c.base.family, IpAddress::Family::v4);
  EXPECT_EQ(c.to_string(), "10.0.0.0/8");
  ParseCidrError("::ffff:0.0.0.0/95");
}

TEST(ParseCidr, Errors) {
  for (const char* text :
       {"10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8/8",
        "10.0.0.0/ 8", "10.0.0.0 /8", "10.0.0.0/08", "10.0.0.0/8a", "/8", "bad/8", "10.0.0/8",
        "10.0.0.0/1000", "[2001:db8::]/32", "", "10.0.0.0/99999999999999999999"}) {
    ParseCidrError(text);
  }
  ParseCidrError(std::string(1000, '1') + "/8");
}

TEST(ParseCidr, HostBitsSetIsAnError) {
  EXPECT_EQ(ParseCidrError("10.0.0.1/8"),
            "invalid CIDR \"10.0.0.1/8\": host bits are set after the prefix (did you mean "
            "10.0.0.0/8?)");
  ParseCidrError("2001:db8::1/32");
  ParseCidrError("192.168.1.0/23");
  EXPECT_NE(ParseCidrError("10.0.0.0/33").find("out of range"), std::string::npos);
}

TEST(Cidr, Contains) {
  const Cidr ten = ParseCidr("10.0.0.0/8");
  EXPECT_TRUE(ten.contains(Parse("10.0.0.0")));
  EXPECT_TRUE(ten.contains(Parse("10.255.255.255")));
  EXPECT_TRUE(ten.contains(Parse("::ffff:10.1.2.3")));
  EXPECT_FALSE(ten.contains(Parse("11.0.0.0")));
  EXPECT_FALSE(ten.contains(Parse("9.255.255.255")));
  EXPECT_FALSE(ten.contains(Parse("::a00:1"))) << "IPv6 is never inside an IPv4 block";

  const Cidr odd = ParseCidr("192.168.0.0/23");
  EXPECT_TRUE(odd.contains(Parse("192.168.1.255")));
  EXPECT_FALSE(odd.contains(Parse("192.168.2.0")));

  const Cidr doc = ParseCidr("2001:db8::/32");
  EXPECT_TRUE(doc.contains(Parse("2001:db8:ffff::1")));
  EXPECT_FALSE(doc.contains(Parse("2001:db9::")));
  EXPECT_FALSE(doc.contains(Parse("32.1.13.184"))) << "IPv4 is never inside an IPv6 block";

  const Cidr all4 = ParseCidr("0.0.0.0/0");
  EXPECT_TRUE(all4.contains(Parse("1.2.3.4")));
  EXPECT_FALSE(all4.contains(Parse("::1")));

  const Cidr one = ParseCidr("1.2.3.4");
  EXPECT_TRUE(one.contains(Parse("1.2.3.4")));
  EXPECT_FALSE(one.contains(Parse("1.2.3.5")));

  const Cidr host6 = ParseCidr("fe80::1/128");
  EXPECT_TRUE(host6.contains(Parse("fe80::1")));
  EXPECT_FALSE(host6.contains(Parse("fe80::2")));
}

TEST(Cidr, HandMadeOutOfRangePrefixContainsNothing) {
  Cidr bad{Parse("10.0.0.0"), 40};
  EXPECT_FALSE(bad.contains(Parse("10.0.0.0")));
  bad.prefix = -1;
  EXPECT_FALSE(bad.contains(Parse("10.0.0.0")));
}

}  // namespace
}  // namespace vigil
