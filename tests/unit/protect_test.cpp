// Addresses never to block: every reason why_protected() gives (IPv4, IPv6, IPv4-mapped), the
// /proc route parsers on real kernel text, and utmp records as sshd writes them.
#include "actions/protect.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace vigil {
namespace {

IpAddress ip(std::string_view text) {
  Result<IpAddress> r = parse_ip(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : IpAddress{};
}

Cidr cidr(std::string_view text) {
  Result<Cidr> r = parse_cidr(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : Cidr{};
}

// why_protected() with an empty snapshot: only the fixed rules apply.
std::optional<std::string> fixed(std::string_view text) {
  return why_protected(ip(text), ProtectedAddresses{});
}

TEST(ProtectFixed, SpecialAddresses) {
  EXPECT_EQ(fixed("0.0.0.0"), "unspecified address");
  EXPECT_EQ(fixed("::"), "unspecified address");
  EXPECT_EQ(fixed("127.0.0.1"), "loopback address");
  EXPECT_EQ(fixed("127.12.0.9"), "loopback address");
  EXPECT_EQ(fixed("::1"), "loopback address");
  EXPECT_EQ(fixed("224.0.0.1"), "multicast address");
  EXPECT_EQ(fixed("239.255.255.250"), "multicast address");
  EXPECT_EQ(fixed("ff02::1"), "multicast address");
  EXPECT_EQ(fixed("255.255.255.255"), "broadcast address");
  EXPECT_EQ(fixed("169.254.169.254"), "link-local address");
  EXPECT_EQ(fixed("fe80::1"), "link-local address");
  EXPECT_EQ(fixed("febf::1"), "link-local address");
}

TEST(ProtectFixed, OrdinaryAddressesMayBeBlocked) {
  for (const char* a : {"203.0.113.7", "10.1.2.3", "192.168.1.20", "223.255.255.255", "240.0.0.1",
                        "2001:db8::42", "fec0::1", "fd00::7"}) {
    EXPECT_EQ(fixed(a), std::nullopt) << a;
  }
}

TEST(ProtectFixed, Ipv4MappedIsJudgedAsIpv4) {
  // parse_ip already maps ::ffff:a.b.c.d to IPv4; a hand-made mapped address must be too.
  IpAddress mapped;
  mapped.family = IpAddress::Family::v6;
  mapped.bytes[10] = 0xff;
  mapped.bytes[11] = 0xff;
  mapped.bytes[12] = 127;
  mapped.bytes[15] = 1;
  EXPECT_EQ(why_protected(mapped, {}), "loopback address");
  mapped.bytes[12] = 10;
  ProtectedAddresses p;
  p.allow = {cidr("10.0.0.0/8")};
  EXPECT_EQ(why_protected(mapped, p), "allow-listed (10.0.0.0/8)");
  EXPECT_EQ(why_protected(ip("::ffff:10.0.0.1"), p), "allow-listed (10.0.0.0/8)");
}

TEST(ProtectSnapshot, OwnAddresses) {
  ProtectedAddresses p;
  p.own = {ip("192.0.2.10"), ip("2001:db8::10")};
  EXPECT_EQ(why_protected(ip("192.0.2.10"), p), "an address of this host");
  EXPECT_EQ(why_protected(ip("::ffff:192.0.2.10"), p), "an address of this host");
  EXPECT_EQ(why_protected(ip("2001:db8::10"), p), "an address of this host");
  EXPECT_EQ(why_protected(ip("192.0.2.11"), p), std::nullopt);
}

TEST(ProtectSnapshot, OwnAddressGivenAsMapped) {
  ProtectedAddresses p;
  IpAddress mapped;
  mapped.family = IpAddress::Family::v6;
  mapped.bytes[10] = 0xff;
  mapped.bytes[11] = 0xff;
  mapped.bytes[12] = 192;
  mapped.bytes[14] = 2;
  mapped.bytes[15] = 10;
  p.own = {mapped};
  EXPECT_EQ(why_protected(ip("192.0.2.10"), p), "an address of this host");
}

TEST(ProtectSnapshot, Gateways) {
  ProtectedAddresses p;
  p.gateways = {ip("192.0.2.1"), ip("2001:db8::1")};
  EXPECT_EQ(why_protected(ip("192.0.2.1"), p), "the default gateway");
  EXPECT_EQ(why_protected(ip("2001:db8::1"), p), "the default gateway");
  EXPECT_EQ(why_protected(ip("2001:db8::2"), p), std::nullopt);
}

TEST(ProtectSnapshot, SshPeers) {
  ProtectedAddresses p;
  p.ssh = {SshPeer{ip("198.51.100.4"), "root", "3"}, SshPeer{ip("2001:db8::77"), "", "pts/1"}};
  EXPECT_EQ(why_protected(ip("198.51.100.4"), p),
            "peer of a live SSH session (session 3, user root)");
  EXPECT_EQ(why_protected(ip("2001:db8::77"), p), "peer of a live SSH session (session pts/1)");
  EXPECT_EQ(why_protected(ip("198.51.100.5"), p), std::nullopt);
}

TEST(ProtectSnapshot, AllowList) {
  ProtectedAddresses p;
  p.allow = {cidr("10.0.0.0/8"), cidr("2001:db8:100::/48"), cidr("198.51.100.7")};
  EXPECT_EQ(why_protected(ip("10.200.3.4"), p), "allow-listed (10.0.0.0/8)");
  EXPECT_EQ(why_protected(ip("2001:db8:100:5::9"), p), "allow-listed (2001:db8:100::/48)");
  EXPECT_EQ(why_protected(ip("198.51.100.7"), p), "allow-listed (198.51.100.7/32)");
  EXPECT_EQ(why_protected(ip("198.51.100.8"), p), std::nullopt);
  EXPECT_EQ(why_protected(ip("2001:db8:101::1"), p), std::nullopt);
  EXPECT_EQ(why_protected(ip("11.0.0.1"), p), std::nullopt);
}

TEST(ProtectSnapshot, ABadHandMadeCidrProtectsNobody) {
  ProtectedAddresses p;
  Cidr bad;
  bad.base = ip("10.0.0.0");
  bad.prefix = 40;
  p.allow = {bad};
  EXPECT_EQ(why_protected(ip("10.0.0.1"), p), std::nullopt);
}

// Real /proc/net/route text (its header has a trailing tab after "Gateway ", rows are padded).
constexpr const char* kRoute =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT       "
    "                                                \n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0                               "
    "                                                \n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0                               "
    "                                                \n"
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
    "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";

// The hex gateway is the address's 32 bits in host byte order: these expectations hold on
// little-endian hosts (amd64, arm64), which is every host vigil is packaged for.
TEST(ProtectProcRoute, DefaultGateways) {
  Result<std::vector<IpAddress>> gw = parse_proc_net_route(kRoute);
  ASSERT_TRUE(gw) << gw.error().message;
  EXPECT_EQ(*gw, (std::vector<IpAddress>{ip("192.0.2.1"), ip("192.168.1.1")}));
}

TEST(ProtectProcRoute, NoDefaultRoute) {
  Result<std::vector<IpAddress>> gw = parse_proc_net_route(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
  ASSERT_TRUE(gw);
  EXPECT_TRUE(gw->empty());
}

TEST(ProtectProcRoute, DefaultWithoutGatewayFlagOrAddressIsSkipped) {
  Result<std::vector<IpAddress>> gw = parse_proc_net_route(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n"  // point-to-point default
      "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
      "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n");  // duplicate
  ASSERT_TRUE(gw);
  EXPECT_EQ(*gw, (std::vector<IpAddress>{ip("192.0.2.1")}));
}

TEST(ProtectProcRoute, Malformed) {
  EXPECT_FALSE(parse_proc_net_route(""));
  EXPECT_FALSE(parse_proc_net_route("garbage\n"));
  Result<std::vector<IpAddress>> r = parse_proc_net_route(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t0102A8CX\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
  EXPECT_FALSE(parse_proc_net_route("Iface\tDestination\neth0\t00000000\n"));
}

// Real /proc/net/ipv6_route text: a default via fd00::1, connected routes, and the kernel's
// own "unreachable" default on lo (next hop ::).
constexpr const char* kIpv6Route =
    "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0\n"
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000000 00000004 00000000 80200001       lo\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "fe800000000000000000000000000001 00000400 00000001 00000000 00000003    wlan0\n"
    "ff000000000000000000000000000000 08 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";

TEST(ProtectProcIpv6Route, DefaultNextHops) {
  Result<std::vector<IpAddress>> gw = parse_proc_net_ipv6_route(kIpv6Route);
  ASSERT_TRUE(gw) << gw.error().message;
  EXPECT_EQ(*gw, (std::vector<IpAddress>{ip("fd00::1"), ip("fe80::1")}));
}

TEST(ProtectProcIpv6Route, EmptyAndMalformed) {
  Result<std::vector<IpAddress>> none = parse_proc_net_ipv6_route("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
  Result<std::vector<IpAddress>> r = parse_proc_net_ipv6_route(
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "fd00000000000000000000000000000g 00000400 00000003 00000000 00000003     eth0\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(parse_proc_net_ipv6_route("0000 00 eth0\n"));
}

// utmp records as sshd writes them (openssh's loginrec.c: the peer in ut_addr_v6, an IPv4 one
// in the first word only).
utmpx record(short type, const char* user, const char* line, const char* host) {
  utmpx u{};
  u.ut_type = type;
  u.ut_pid = 4242;
  std::strncpy(u.ut_user, user, sizeof u.ut_user);
  std::strncpy(u.ut_line, line, sizeof u.ut_line);
  std::strncpy(u.ut_host, host, sizeof u.ut_host);
  return u;
}

TEST(ProtectUtmp, Ipv4PeerFromAddressField) {
  utmpx u = record(USER_PROCESS, "root", "pts/0", "admin.example.org");
  ASSERT_EQ(::inet_pton(AF_INET, "198.51.100.4", &u.ut_addr_v6[0]), 1);
  std::optional<SshPeer> peer = ssh_peer_of_utmp(u);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->ip, ip("198.51.100.4"));
  EXPECT_EQ(peer->user, "root");
  EXPECT_EQ(peer->session, "pts/0");
}

TEST(ProtectUtmp, Ipv6PeerFromAddressField) {
  utmpx u = record(USER_PROCESS, "alice", "pts/3", "2001:db8::77");
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8::77", u.ut_addr_v6), 1);
  std::optional<SshPeer> peer = ssh_peer_of_utmp(u);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->ip, ip("2001:db8::77"));
  EXPECT_EQ(peer->user, "alice");
}

TEST(ProtectUtmp, MappedPeerIsIpv4) {
  utmpx u = record(USER_PROCESS, "root", "pts/0", "");
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:198.51.100.4", u.ut_addr_v6), 1);
  std::optional<SshPeer> peer = ssh_peer_of_utmp(u);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->ip, ip("198.51.100.4"));
  EXPECT_EQ(peer->ip.family, IpAddress::Family::v4);
}

TEST(ProtectUtmp, HostTextWhenNoAddress) {
  std::optional<SshPeer> peer =
      ssh_peer_of_utmp(record(USER_PROCESS, "bob", "pts/1", "203.0.113.9"));
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->ip, ip("203.0.113.9"));
  // A host name is never resolved, a local display is no peer.
  EXPECT_FALSE(ssh_peer_of_utmp(record(USER_PROCESS, "bob", "pts/1", "admin.example.org")));
  EXPECT_FALSE(ssh_peer_of_utmp(record(USER_PROCESS, "bob", "pts/1", ":0")));
  EXPECT_FALSE(ssh_peer_of_utmp(record(USER_PROCESS, "bob", "tty1", "")));
  EXPECT_FALSE(ssh_peer_of_utmp(record(USER_PROCESS, "bob", "pts/1", "203.0.113.9; reboot")));
}

TEST(ProtectUtmp, OnlyUserProcessRecords) {
  for (short type : {DEAD_PROCESS, LOGIN_PROCESS, INIT_PROCESS, BOOT_TIME, RUN_LVL}) {
    utmpx u = record(type, "root", "pts/0", "198.51.100.4");
    ASSERT_EQ(::inet_pton(AF_INET, "198.51.100.4", &u.ut_addr_v6[0]), 1);
    EXPECT_FALSE(ssh_peer_of_utmp(u)) << type;
  }
}

TEST(ProtectUtmp, FieldsFillingTheirArraysAreNotOverread) {
  utmpx u{};
  u.ut_type = USER_PROCESS;
  std::memset(u.ut_user, 'u', sizeof u.ut_user);
  std::memset(u.ut_line, 'l', sizeof u.ut_line);
  std::memset(u.ut_host, '1', sizeof u.ut_host);  // no NUL anywhere in ut_host
  ASSERT_EQ(::inet_pton(AF_INET, "198.51.100.4", &u.ut_addr_v6[0]), 1);
  std::optional<SshPeer> peer = ssh_peer_of_utmp(u);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->user.size(), sizeof u.ut_user);
  EXPECT_EQ(peer->session.size(), sizeof u.ut_line);
  u.ut_addr_v6[0] = 0;
  EXPECT_FALSE(ssh_peer_of_utmp(u));  // "1111...": not an address
}

// ---------------------------------------------------------------------------------------------
// ufw's allow rules (issue 13): /etc/ufw/user.rules as ufw 0.36 writes it.

constexpr std::string_view kUserRules = R"(*filter
:ufw-user-input - [0:0]
:ufw-user-output - [0:0]
### RULES ###

### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
-A ufw-user-input -p tcp --dport 22 -j ACCEPT

### tuple ### allow any 5432 0.0.0.0/0 any 10.0.0.0/8 in
-A ufw-user-input -p tcp --dport 5432 -s 10.0.0.0/8 -j ACCEPT
-A ufw-user-input -p udp --dport 5432 -s 10.0.0.0/8 -j ACCEPT

### tuple ### allow any any 0.0.0.0/0 any 198.51.100.7 in
-A ufw-user-input -s 198.51.100.7 -j ACCEPT

### tuple ### allow_log tcp 443 0.0.0.0/0 any 192.0.2.0/24 in_eth0 comment=6c6231
-A ufw-user-input -i eth0 -p tcp --dport 443 -s 192.0.2.0/24 -j ACCEPT

### tuple ### allow tcp 22 0.0.0.0/0 any 203.0.113.128/26 OpenSSH - in
-A ufw-user-input -p tcp --dport 22 -s 203.0.113.128/26 -j ACCEPT -m comment --comment 'dapp_OpenSSH'

### tuple ### deny any any 0.0.0.0/0 any 203.0.113.45 in comment=7669676696c3a20
-A ufw-user-input -s 203.0.113.45 -j DROP

### tuple ### limit tcp 22 0.0.0.0/0 any 203.0.113.99 in
### tuple ### reject any any 0.0.0.0/0 any 203.0.113.98 in
### tuple ### allow any any 203.0.113.97 any 0.0.0.0/0 out
### tuple ### route:allow any any 10.2.0.0/16 any 203.0.113.96 in

### END RULES ###
COMMIT
)";

TEST(ProtectUfw, AllowRulesWithASourceAreProtected) {
  Result<std::vector<FirewallAllow>> rules = parse_ufw_user_rules(kUserRules);
  ASSERT_TRUE(rules) << rules.error().message;
  ASSERT_EQ(rules->size(), 4u);
  ProtectedAddresses p;
  p.firewall = *rules;
  EXPECT_EQ(why_protected(ip("10.20.30.40"), p),
            "allowed by the firewall (ufw: allow 5432 from 10.0.0.0/8)");
  EXPECT_EQ(why_protected(ip("198.51.100.7"), p),
            "allowed by the firewall (ufw: allow from 198.51.100.7/32)");
  EXPECT_EQ(why_protected(ip("::ffff:198.51.100.7"), p),
            "allowed by the firewall (ufw: allow from 198.51.100.7/32)");
  EXPECT_EQ(why_protected(ip("192.0.2.200"), p),
            "allowed by the firewall (ufw: allow tcp 443 from 192.0.2.0/24)");
  EXPECT_EQ(why_protected(ip("203.0.113.130"), p),
            "allowed by the firewall (ufw: allow tcp 22 from 203.0.113.128/26)");
  // "allow 22/tcp" from anywhere says nothing about an address; deny, limit, reject, outgoing
  // and routed rules are not trust.
  for (const char* other : {"203.0.113.45", "203.0.113.99", "203.0.113.98", "203.0.113.97",
                            "203.0.113.96", "8.8.8.8"}) {
    EXPECT_EQ(why_protected(ip(other), p), std::nullopt) << other;
  }
}

TEST(ProtectUfw, Ipv6RulesAndEmptyFiles) {
  Result<std::vector<FirewallAllow>> rules = parse_ufw_user_rules(
      "### tuple ### allow any any ::/0 any 2001:db8:5::/48 in\n"
      "### tuple ### allow tcp 22 ::/0 any ::/0 in\n");
  ASSERT_TRUE(rules) << rules.error().message;
  ASSERT_EQ(rules->size(), 1u);
  ProtectedAddresses p;
  p.firewall = *rules;
  EXPECT_EQ(why_protected(ip("2001:db8:5::1"), p),
            "allowed by the firewall (ufw: allow from 2001:db8:5::/48)");
  EXPECT_EQ(why_protected(ip("2001:db8:6::1"), p), std::nullopt);
  Result<std::vector<FirewallAllow>> none = parse_ufw_user_rules("");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(ProtectUfw, MalformedTuplesAreErrorsNotSilence) {
  Result<std::vector<FirewallAllow>> short_tuple =
      parse_ufw_user_rules("*filter\n### tuple ### allow tcp 22\n");
  ASSERT_FALSE(short_tuple);
  EXPECT_EQ(short_tuple.error().message, "ufw rules line 2: a tuple of 3 fields, expected 7 or 9");
  Result<std::vector<FirewallAllow>> bad_source =
      parse_ufw_user_rules("### tuple ### allow any any 0.0.0.0/0 any 10.0.0.300 in\n");
  ASSERT_FALSE(bad_source);
  EXPECT_NE(bad_source.error().message.find("ufw rules line 1: source \"10.0.0.300\""),
            std::string::npos)
      << bad_source.error().message;
}

TEST(ProtectUfw, FilesAreReadMissingOnesAreNoError) {
  char dir[] = "/tmp/vigil-ufw-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir;
  Result<std::vector<FirewallAllow>> none = ufw_allow_rules(d);
  ASSERT_TRUE(none) << none.error().message;
  EXPECT_TRUE(none->empty());
  {
    FILE* f = std::fopen((d + "/user6.rules").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("### tuple ### allow any any ::/0 any 2001:db8::7 in\n", f);
    std::fclose(f);
  }
  Result<std::vector<FirewallAllow>> six = ufw_allow_rules(d);
  ASSERT_TRUE(six) << six.error().message;
  ASSERT_EQ(six->size(), 1u);
  EXPECT_EQ((*six)[0].rule, "allow from 2001:db8::7/128");
  {
    FILE* f = std::fopen((d + "/user.rules").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("### tuple ### allow\n", f);
    std::fclose(f);
  }
  Result<std::vector<FirewallAllow>> bad = ufw_allow_rules(d);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind(d + "/user.rules: ufw rules line 1", 0), 0u)
      << bad.error().message;
  std::remove((d + "/user.rules").c_str());
  std::remove((d + "/user6.rules").c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace vigil
