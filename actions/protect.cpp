// Addresses never to block: the fixed rules, and the readers of this host's addresses, default
// gateways and live SSH sessions.
// logind's sessions come through agent/sys/sessions.h.
#include "actions/protect.h"
#include "agent/core/text.h"
#include "agent/sys/errors.h"
#include "agent/sys/groups.h"
#include "agent/sys/sessions.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <net/route.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

namespace vigil {
namespace {

using sys::errno_text;

bool is_v4_mapped(const IpAddress& ip) {
  if (ip.family != IpAddress::Family::v6) return false;
  for (std::size_t i = 0; i < 10; ++i) {
    if (ip.bytes[i] != 0) return false;
  }
  return ip.bytes[10] == 0xff && ip.bytes[11] == 0xff;
}

// ::ffff:a.b.c.d as a.b.c.d: the same host, whichever way a reader or a log spelled it.
IpAddress unmapped(const IpAddress& ip) {
  if (!is_v4_mapped(ip)) return ip;
  IpAddress v4;
  std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
  return v4;
}

IpAddress from_bytes(IpAddress::Family family, const void* data) {
  IpAddress ip;
  ip.family = family;
  std::memcpy(ip.bytes.data(), data, family == IpAddress::Family::v4 ? 4 : 16);
  return unmapped(ip);
}

bool all_zero(const IpAddress& ip) {
  const std::size_t n = ip.family == IpAddress::Family::v4 ? 4 : 16;
  return std::all_of(ip.bytes.begin(), ip.bytes.begin() + static_cast<std::ptrdiff_t>(n),
                     [](std::uint8_t b) { return b == 0; });
}

bool is_multicast(const IpAddress& ip) {
  if (ip.family == IpAddress::Family::v4) return (ip.bytes[0] & 0xf0) == 0xe0;  // 224.0.0.0/4
  return ip.bytes[0] == 0xff;                                                   // ff00::/8
}

bool is_broadcast(const IpAddress& ip) {
  return ip.family == IpAddress::Family::v4 && ip.bytes[0] == 0xff && ip.bytes[1] == 0xff &&
         ip.bytes[2] == 0xff && ip.bytes[3] == 0xff;
}

void add_unique(std::vector<IpAddress>& list, const IpAddress& ip) {
  if (std::find(list.begin(), list.end(), ip) == list.end()) list.push_back(ip);
}

// How many hex digits parse_hex32() takes: exactly `digits`, or 1 to `digits`.
enum class HexWidth { exact, up_to };

// `digits` hex digits (see HexWidth) as a number.
std::optional<std::uint32_t> parse_hex32(std::string_view s, std::size_t digits, HexWidth width) {
  if (s.empty() || s.size() > digits || (width == HexWidth::exact && s.size() != digits)) {
    return std::nullopt;
  }
  std::uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// 32 hex digits, in address byte order (as /proc/net/ipv6_route prints them).
std::optional<IpAddress> parse_hex_v6(std::string_view s) {
  if (s.size() != 32) return std::nullopt;
  std::uint8_t bytes[16];
  for (std::size_t i = 0; i < 16; ++i) {
    const auto b = parse_hex32(s.substr(2 * i, 2), 2, HexWidth::exact);
    if (!b) return std::nullopt;
    bytes[i] = static_cast<std::uint8_t>(*b);
  }
  return from_bytes(IpAddress::Family::v6, bytes);
}

Result<std::string> read_proc_file(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(std::string(path) + ": " + errno_text(errno));
  std::string data;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int e = errno;
      ::close(fd);
      return make_error(std::string(path) + ": " + errno_text(e));
    }
    if (n == 0) break;
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

std::string row_error(const char* file, std::size_t line, std::string_view why) {
  return std::string(file) + " line " + std::to_string(line) + ": " + std::string(why);
}

void logind_ssh_peers(SshPeers& out) {
  Result<std::vector<sys::LoginSession>> sessions = sys::remote_sessions();
  if (!sessions) {
    out.warnings.push_back(sessions.error().message);
    return;
  }
  for (const sys::LoginSession& s : *sessions) {
    if (s.service != "sshd") continue;
    Result<IpAddress> ip = parse_ip(s.remote_host);
    if (!ip) {
      // sshd passes a host name when UseDNS is on; resolving it here could be spoofed.
      out.warnings.push_back("logind session " + s.id +
                             ": remote host is not an address, not protected (" +
                             ip.error().message + ")");
      continue;
    }
    std::string user;
    if (s.uid) user = sys::user_name(*s.uid).value_or("uid " + std::to_string(*s.uid));
    out.peers.push_back(SshPeer{unmapped(*ip), user, s.id});
  }
}

void utmp_ssh_peers(SshPeers& out) {
  if (::access(_PATH_UTMPX, R_OK) != 0) {
    // No utmp at all (containers, systems without it) is normal; an unreadable one is not.
    if (errno != ENOENT) {
      out.warnings.push_back(std::string("cannot read ") + _PATH_UTMPX + ": " + errno_text(errno));
    }
    return;
  }
  // The utmpx functions keep one global position: one reader at a time.
  static std::mutex utmp_mutex;
  std::lock_guard lock(utmp_mutex);
  ::setutxent();
  while (const utmpx* record = ::getutxent()) {
    std::optional<SshPeer> peer = ssh_peer_of_utmp(*record);
    if (!peer) continue;
    // A record left behind by a crash names a dead process: it protects nobody.
    if (record->ut_pid <= 0 || (::kill(record->ut_pid, 0) != 0 && errno != EPERM)) continue;
    out.peers.push_back(std::move(*peer));
  }
  ::endutxent();
}

}  // namespace

std::optional<std::string> why_protected(const IpAddress& address, const ProtectedAddresses& p) {
  const IpAddress ip = unmapped(address);
  if (all_zero(ip)) return "unspecified address";
  if (ip.is_loopback()) return "loopback address";
  if (is_multicast(ip)) return "multicast address";
  if (is_broadcast(ip)) return "broadcast address";
  // Link-local addresses are reachable from this link only, so no remote attacker has one; what
  // does have one is this host's router (an IPv6 default gateway is usually fe80::1, and router
  // advertisements come from fe80:: addresses) and, on clouds, the metadata service at
  // 169.254.169.254. Blocking one risks cutting the host off its network for nothing.
  if (ip.is_link_local()) return "link-local address";
  const auto same = [&](const IpAddress& other) { return unmapped(other) == ip; };
  if (std::any_of(p.own.begin(), p.own.end(), same)) return "an address of this host";
  if (std::any_of(p.gateways.begin(), p.gateways.end(), same)) return "the default gateway";
  for (const SshPeer& peer : p.ssh) {
    if (!same(peer.ip)) continue;
    std::string why = "peer of a live SSH session (session " + peer.session;
    if (!peer.user.empty()) why += ", user " + peer.user;
    return why + ")";
  }
  for (const Cidr& cidr : p.allow) {
    if (cidr.contains(ip)) return "allow-listed (" + cidr.to_string() + ")";
  }
  for (const FirewallAllow& f : p.firewall) {
    if (f.source.contains(ip)) return "allowed by the firewall (ufw: " + f.rule + ")";
  }
  return std::nullopt;
}

Result<std::vector<FirewallAllow>> parse_ufw_user_rules(std::string_view text) {
  constexpr std::string_view kTuple = "### tuple ### ";
  std::vector<FirewallAllow> out;
  std::size_t line_no = 0;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.substr(0, kTuple.size()) != kTuple) continue;
    std::vector<std::string_view> w = split_words(line.substr(kTuple.size()));
    if (!w.empty() && w.back().substr(0, 8) == "comment=") w.pop_back();
    // ACTION PROTO DPORT DST SPORT SRC DIR, or with application names: ... SRC DAPP SAPP DIR.
    if (w.size() != 7 && w.size() != 9) {
      return make_error("ufw rules line " + std::to_string(line_no) + ": a tuple of " +
                        std::to_string(w.size()) + " fields, expected 7 or 9");
    }
    const std::string_view action = w[0];
    const std::string_view dir = w.back();
    if (action.substr(0, 5) != "allow" || dir.substr(0, 2) != "in") continue;
    Result<Cidr> src = parse_cidr(w[5]);
    if (!src) {
      return make_error("ufw rules line " + std::to_string(line_no) + ": source \"" +
                        std::string(w[5]) + "\": " + src.error().message);
    }
    if (src->prefix == 0) continue;  // from anywhere
    std::string rule = "allow";
    // append(), not `" " + std::string(...)`: GCC 12 at -O3 warns -Wrestrict on the latter.
    if (w[1] != "any") rule.append(" ").append(w[1]);
    if (w[2] != "any") rule.append(" ").append(w[2]);
    rule.append(" from ").append(src->to_string());
    out.push_back(FirewallAllow{*src, std::move(rule)});
  }
  return out;
}

Result<std::vector<FirewallAllow>> ufw_allow_rules(const std::string& dir) {
  std::vector<FirewallAllow> out;
  for (const char* name : {"/user.rules", "/user6.rules"}) {
    const std::string path = dir + name;
    if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) continue;
    Result<std::string> text = read_proc_file(path.c_str());
    if (!text) return text.error();
    Result<std::vector<FirewallAllow>> rules = parse_ufw_user_rules(*text);
    if (!rules) return make_error(path + ": " + rules.error().message);
    out.insert(out.end(), rules->begin(), rules->end());
  }
  return out;
}

Result<std::vector<IpAddress>> host_addresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return make_error("getifaddrs: " + errno_text(errno));
  std::vector<IpAddress> out;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    if (a->ifa_addr->sa_family == AF_INET) {
      sockaddr_in sin{};
      std::memcpy(&sin, a->ifa_addr, sizeof sin);
      add_unique(out, from_bytes(IpAddress::Family::v4, &sin.sin_addr));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      sockaddr_in6 sin6{};
      std::memcpy(&sin6, a->ifa_addr, sizeof sin6);
      add_unique(out, from_bytes(IpAddress::Family::v6, &sin6.sin6_addr));
    }
  }
  ::freeifaddrs(list);
  return out;
}

Result<std::vector<IpAddress>> parse_proc_net_route(std::string_view text) {
  constexpr const char* kFile = "/proc/net/route";
  const std::vector<std::string_view> lines = split_lines(text);
  if (lines.empty() || split_words(lines[0]).empty() || split_words(lines[0])[0] != "Iface") {
    return make_error(std::string(kFile) + ": no \"Iface\" header line");
  }
  std::vector<IpAddress> out;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const std::vector<std::string_view> w = split_words(lines[i]);
    if (w.empty()) continue;
    // Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT
    if (w.size() < 8) return make_error(row_error(kFile, i + 1, "fewer than 8 columns"));
    const auto dest = parse_hex32(w[1], 8, HexWidth::exact);
    const auto gateway = parse_hex32(w[2], 8, HexWidth::exact);
    const auto flags = parse_hex32(w[3], 8, HexWidth::up_to);
    const auto mask = parse_hex32(w[7], 8, HexWidth::exact);
    if (!dest || !gateway || !flags || !mask) {
      return make_error(row_error(kFile, i + 1,
                                  "a Destination, Gateway, Flags or Mask that is "
                                  "not hex"));
    }
    if (*dest != 0 || *mask != 0 || (*flags & RTF_GATEWAY) == 0 || *gateway == 0) continue;
    // The kernel prints the address's 32 bits as a number in its own byte order ("0102A8C0"
    // is 192.168.2.1 on a little-endian host): copying the number's bytes gives the address.
    const std::uint32_t value = *gateway;
    add_unique(out, from_bytes(IpAddress::Family::v4, &value));
  }
  return out;
}

Result<std::vector<IpAddress>> parse_proc_net_ipv6_route(std::string_view text) {
  constexpr const char* kFile = "/proc/net/ipv6_route";
  std::vector<IpAddress> out;
  const std::vector<std::string_view> lines = split_lines(text);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::vector<std::string_view> w = split_words(lines[i]);
    if (w.empty()) continue;
    // dest dest_len src src_len next_hop metric refcnt use flags iface
    if (w.size() < 10) return make_error(row_error(kFile, i + 1, "fewer than 10 columns"));
    const auto dest = parse_hex_v6(w[0]);
    const auto dest_len = parse_hex32(w[1], 2, HexWidth::exact);
    const auto next_hop = parse_hex_v6(w[4]);
    if (!dest || !dest_len || !next_hop) {
      return make_error(
          row_error(kFile, i + 1, "a destination, prefix or next hop that is not hex"));
    }
    if (*dest_len != 0 || !all_zero(*dest) || all_zero(*next_hop)) continue;
    add_unique(out, *next_hop);
  }
  return out;
}

Result<std::vector<IpAddress>> default_gateways() {
  Result<std::string> v4 = read_proc_file("/proc/net/route");
  if (!v4) return v4.error();
  Result<std::vector<IpAddress>> out = parse_proc_net_route(*v4);
  if (!out) return out;
  if (::access("/proc/net/ipv6_route", F_OK) != 0 && errno == ENOENT) return out;  // no IPv6
  Result<std::string> v6 = read_proc_file("/proc/net/ipv6_route");
  if (!v6) return v6.error();
  Result<std::vector<IpAddress>> v6_gateways = parse_proc_net_ipv6_route(*v6);
  if (!v6_gateways) return v6_gateways.error();
  for (const IpAddress& ip : *v6_gateways) add_unique(*out, ip);
  return out;
}

std::optional<SshPeer> ssh_peer_of_utmp(const utmpx& record) {
  if (record.ut_type != USER_PROCESS) return std::nullopt;
  const auto text_of = [](const char* field, std::size_t size) {
    return std::string(field, ::strnlen(field, size));
  };
  // sshd stores the peer in ut_addr_v6: an IPv4 peer in the first word only (a v4-mapped one
  // too), an IPv6 peer in all four.
  std::optional<IpAddress> ip;
  const auto& words = record.ut_addr_v6;
  if (words[1] != 0 || words[2] != 0 || words[3] != 0) {
    ip = from_bytes(IpAddress::Family::v6, words);
  } else if (words[0] != 0) {
    ip = from_bytes(IpAddress::Family::v4, words);
  } else {
    Result<IpAddress> parsed = parse_ip(text_of(record.ut_host, sizeof record.ut_host));
    if (!parsed) return std::nullopt;  // local (":0", "") or a host name: not an address
    ip = unmapped(*parsed);
  }
  if (all_zero(*ip)) return std::nullopt;
  return SshPeer{*ip, text_of(record.ut_user, sizeof record.ut_user),
                 text_of(record.ut_line, sizeof record.ut_line)};
}

SshPeers ssh_session_peers() {
  SshPeers out;
  logind_ssh_peers(out);
  utmp_ssh_peers(out);
  return out;
}

ProtectedAddresses gather_protected(std::vector<Cidr> allow, ProtectSsh ssh,
                                    ProtectFirewall firewall) {
  ProtectedAddresses p;
  p.allow = std::move(allow);
  if (firewall == ProtectFirewall::yes) {
    if (Result<std::vector<FirewallAllow>> rules = ufw_allow_rules()) {
      p.firewall = std::move(*rules);
    } else {
      p.warnings.push_back("ufw's allow rules are not protected: " + rules.error().message);
    }
  }
  if (Result<std::vector<IpAddress>> own = host_addresses()) {
    p.own = std::move(*own);
  } else {
    p.warnings.push_back("this host's addresses are not protected: " + own.error().message);
  }
  if (Result<std::vector<IpAddress>> gw = default_gateways()) {
    p.gateways = std::move(*gw);
  } else {
    p.warnings.push_back("the default gateways are not protected: " + gw.error().message);
  }
  if (ssh == ProtectSsh::yes) {
    SshPeers peers = ssh_session_peers();
    p.ssh = std::move(peers.peers);
    for (std::string& w : peers.warnings) p.warnings.push_back("SSH sessions: " + std::move(w));
  }
  return p;
}

}  // namespace vigil
