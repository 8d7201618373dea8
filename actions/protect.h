// Addresses the block action must never block, each refusal with a reason a human reads in the
// timeline (ANCHORS.md #7: fail2ban banned its own server and its admins). The decision is a
// pure function of the address and a ProtectedAddresses snapshot; the readers that fill the
// snapshot are thin, with their parsing split out as pure functions.
#pragma once

#include <utmpx.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/ip.h"
#include "agent/core/result.h"

namespace vigil {

// A live, authenticated remote login. Only these count as admins: an established TCP connection
// to port 22 does not (a brute-force attacker has those too).
struct SshPeer {
  IpAddress ip;
  std::string user;     // "" when unknown
  std::string session;  // logind's session id ("3"), or the utmp line ("pts/0")
};

// A source the admin's firewall lets in: an `allow` rule of ufw from a given address or network
// (any port, any protocol). Blocking it would override a decision a human wrote down.
struct FirewallAllow {
  Cidr source;
  std::string rule;  // as ufw shows it, for the refusal's reason: "allow tcp 5432 from 10.0.0.0/8"
};

struct ProtectedAddresses {
  std::vector<Cidr> allow;              // configured allow-list
  std::vector<FirewallAllow> firewall;  // ufw's allow rules with a source
  std::vector<IpAddress> own;           // this host's addresses
  std::vector<IpAddress> gateways;      // default gateways, v4 and v6
  std::vector<SshPeer> ssh;             // peers of live SSH sessions
  std::vector<std::string> warnings;    // readers that failed (the rest still protects)
};

// nullopt when blocking `ip` is allowed; otherwise why not: "unspecified address", "loopback
// address", "multicast address", "broadcast address", "link-local address", "an address of this
// host", "the default gateway", "peer of a live SSH session (session 3, user root)",
// "allow-listed (10.0.0.0/8)". An IPv4-mapped IPv6 address (::ffff:a.b.c.d), on either side, is
// judged as the IPv4 address.
std::optional<std::string> why_protected(const IpAddress& ip, const ProtectedAddresses& p);

// This host's addresses (getifaddrs), every interface, up or down.
Result<std::vector<IpAddress>> host_addresses();

// Gateways of the IPv4 default routes in /proc/net/route's text: rows whose Destination and Mask
// are 00000000, with the RTF_GATEWAY flag and a non-zero Gateway (hex, in the kernel's byte
// order). Duplicates are dropped. Errors: no header, or a row that does not parse.
Result<std::vector<IpAddress>> parse_proc_net_route(std::string_view text);
// Next hops of the IPv6 default routes (::/0) in /proc/net/ipv6_route's text; routes without a
// next hop (the "unreachable" defaults on lo, on-link defaults) are skipped. Errors: a row that
// does not parse.
Result<std::vector<IpAddress>> parse_proc_net_ipv6_route(std::string_view text);
// Both files read and parsed; a missing /proc/net/ipv6_route (IPv6 disabled) is no error.
Result<std::vector<IpAddress>> default_gateways();

// The remote peer of one utmp record, if it is a login from an address: USER_PROCESS, and a
// remote address in ut_addr_v6 (sshd fills it) or else a ut_host that parse_ip accepts (a host
// name is not resolved, so not protected). session = ut_line, user = ut_user. Whether its
// process still lives is the reader's check (a crash can leave a stale record).
std::optional<SshPeer> ssh_peer_of_utmp(const struct utmpx& record);

// Peers of live SSH sessions: logind's sessions whose service is "sshd" (state online or active;
// the remote host parsed strictly with parse_ip), plus utmp's remote logins, because pam_systemd
// may be absent. Errors from one source are in `warnings`; the other's peers still count.
struct SshPeers {
  std::vector<SshPeer> peers;
  std::vector<std::string> warnings;
};
SshPeers ssh_session_peers();

enum class ProtectSsh { no, yes };

// The sources of the incoming `allow` rules in the text of ufw's /etc/ufw/user.rules or
// user6.rules, from their "### tuple ###" lines (ACTION PROTO DPORT DST SPORT SRC [APPS] DIR).
// A rule from anywhere (0.0.0.0/0, ::/0) is no statement about an address and is skipped, as
// are deny/reject/limit, outgoing and routed rules. Errors: a tuple that does not parse.
Result<std::vector<FirewallAllow>> parse_ufw_user_rules(std::string_view text);
// Both files read and parsed; missing files (ufw not installed, or no rules yet) are no error.
Result<std::vector<FirewallAllow>> ufw_allow_rules(const std::string& dir = "/etc/ufw");

enum class ProtectFirewall { no, yes };

// Calls the readers. A failing reader adds a warning and protects nothing; the fixed rules
// (loopback, multicast, ...) and `allow` always apply.
ProtectedAddresses gather_protected(std::vector<Cidr> allow, ProtectSsh ssh,
                                    ProtectFirewall firewall = ProtectFirewall::yes);

}  // namespace vigil
