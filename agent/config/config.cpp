#include "agent/config/config.h"

#include <fcntl.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "agent/core/ip.h"
#include "agent/core/listen_address.h"
#include "agent/sys/http.h"

namespace vigil {

std::string ConfigError::to_string() const {
  std::ostringstream out;
  out << where.file << ':' << where.line << ':' << where.column << ": " << message;
  return out.str();
}

bool HttpSettings::status_expected(long status) const {
  return std::any_of(expect_status.begin(), expect_status.end(), [status](const StatusRange& r) {
    return status >= r.low && status <= r.high;
  });
}

SeverityRules SeverityRules::defaults() {
  SeverityRules r;
  r.on_failure.fill(Severity::sev1);  // anything not named below is treated as an outage
  for (FailureKind k :
       {FailureKind::refused, FailureKind::timeout, FailureKind::reset, FailureKind::dns,
        FailureKind::tls, FailureKind::protocol, FailureKind::http_5xx, FailureKind::error}) {
    r.set(k, Severity::sev1);
  }
  for (FailureKind k : {FailureKind::http_4xx, FailureKind::http_status, FailureKind::body,
                        FailureKind::unit_inactive, FailureKind::journal_match}) {
    r.set(k, Severity::sev2);
  }
  r.set(FailureKind::not_found, Severity::sev3);
  return r;
}

std::string_view to_string(ActionKind k) {
  switch (k) {
    case ActionKind::restart:
      return "restart";
    case ActionKind::rollback:
      return "rollback";
    case ActionKind::block:
      return "block";
  }
  return "?";
}

const ActionConfig* Config::find_action(std::string_view ref) const {
  const auto it = actions.find(std::string(ref));
  return it == actions.end() ? nullptr : &it->second;
}

const CheckConfig* Config::find_check(std::string_view name) const {
  for (const CheckConfig& c : checks) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string_view to_string(NotifierKind k) {
  switch (k) {
    case NotifierKind::alertmanager:
      return "alertmanager";
    case NotifierKind::pagerduty:
      return "pagerduty";
    case NotifierKind::oncall:
      return "oncall";
    case NotifierKind::statuspage:
      return "statuspage";
    case NotifierKind::webhook:
      return "webhook";
  }
  return "?";
}

const NotifyConfig* Config::find_notify(std::string_view name) const {
  for (const NotifyConfig& n : notify) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

const EscalationConfig* Config::escalation_for(std::string_view team) const {
  const EscalationConfig* catch_all = nullptr;
  for (const EscalationConfig& e : escalations) {
    if (e.team == team) return &e;
    if (e.team.empty()) catch_all = &e;
  }
  return catch_all;
}

namespace {

// Why 100ms: a tighter loop measures the agent rather than the service, and hammers it.
constexpr Duration kMinInterval{100};
// Why 10: more re-probes than that is a slow check, not a confirmation.
constexpr int kMaxConfirm = 10;
constexpr int kMaxStreak = 1000;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word`, if it is a likely typo of it (edit distance <= 2); else "".
template <typename Range>
std::string_view closest(std::string_view word, const Range& candidates) {
  std::string_view best;
  std::size_t best_d = 3;
  for (std::string_view c : candidates) {
    const std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

std::string_view type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    default:
      return "nothing";
  }
}

// ---- Paging ([paging], [[notify]], [[escalation]]) ----

// Why at least 100: fewer pages than one bad hour of a few incidents would drop pages on a
// normal outage. Why at most 1M: at ~2 KiB a page that is 2 GiB of state dir, far beyond any
// outage a human could read the pages of.
constexpr int kMinOutbox = 100;
constexpr int kMaxOutbox = 1'000'000;
// Why at least 10s: a heartbeat only has to beat the central side's "is it dead?" timeout
// (minutes); more often is load on the receivers, not safety.
constexpr Duration kMinHeartbeat{10'000};
// Why 10s to 1h: Prometheus re-sends every minute; faster than 10s is load on the cluster
// without news; slower than 1h, an Alertmanager that restarted (alerts live in its memory)
// would not show a firing incident again for too long.
constexpr Duration kMinResend{10'000};
constexpr Duration kMaxResend{3'600'000};
// Why at least 1m: a status page or a reminder more often than that is noise to its readers.
constexpr Duration kMinUpdate{60'000};
// Why 1s to 60s: a central system slower than a minute to accept a page is down; the outbox
// retries it. Under a second, a busy but healthy receiver would be counted as down.
constexpr Duration kMinNotifyTimeout{1'000};
constexpr Duration kMaxNotifyTimeout{60'000};
// Why at least 1m between escalation steps: a human needs time to see a page and acknowledge
// it; shorter only pages everyone at once.
constexpr Duration kMinEscalationAfter{60'000};
// A secret file is a key or a token, not a document: refuse to read more.
constexpr std::size_t kMaxSecretFile = 64 * 1024;

constexpr std::array<std::string_view, 5> kNotifierKinds{"alertmanager", "pagerduty", "oncall",
                                                         "statuspage", "webhook"};

constexpr unsigned kind_bit(NotifierKind k) { return 1u << static_cast<unsigned>(k); }
constexpr unsigned kAm = kind_bit(NotifierKind::alertmanager);
constexpr unsigned kPd = kind_bit(NotifierKind::pagerduty);
constexpr unsigned kOc = kind_bit(NotifierKind::oncall);
constexpr unsigned kSp = kind_bit(NotifierKind::statuspage);
constexpr unsigned kWh = kind_bit(NotifierKind::webhook);
constexpr unsigned kAnyKind = kAm | kPd | kOc | kSp | kWh;

// Every [[notify]] key and the kinds that take it.
struct NotifyKey {
  std::string_view key;
  unsigned kinds;
};
constexpr std::array<NotifyKey, 22> kNotifyKeys{{
    {"name", kAnyKind},
    {"kind", kAnyKind},
    {"severity", kAnyKind},
    {"teams", kAnyKind},
    {"timeout", kAnyKind},
    {"max_per_minute", kAnyKind},
    {"verify_tls", kAnyKind},
    {"urls", kAm},
    {"resend_every", kAm},
    {"heartbeat", kAm},
    {"url", kPd | kOc | kSp | kWh},
    {"routing_key", kPd},
    {"routing_key_file", kPd},
    {"api_key", kSp},
    {"api_key_file", kSp},
    {"page_id", kSp},
    {"component_ids", kSp},
    {"update_every", kSp | kWh},
    {"hmac_key", kWh},
    {"hmac_key_file", kWh},
    {"signature_header", kWh},
    {"headers", kWh},
}};

// "kind pagerduty", "kinds statuspage and webhook".
std::string kinds_text(unsigned kinds) {
  std::vector<std::string_view> names;
  for (std::size_t i = 0; i < kNotifierKinds.size(); ++i) {
    if (kinds & (1u << i)) names.push_back(kNotifierKinds[i]);
  }
  std::string out = names.size() == 1 ? "kind " : "kinds ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

// A [[notify]] name: it is also part of outbox targets ("am#0") and timeline fields.
bool notify_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_';
  });
}

// A team, as a check's `team` is written.
bool team_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
  });
}

// An HTTP header name: an RFC 9110 token.
bool header_name_ok(std::string_view v) {
  return !v.empty() && v.size() <= 256 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
    return std::isalnum(ch) || (ch != 0 && std::strchr("!#$%&'*+-.^_`|~", ch) != nullptr);
  });
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The path of an http(s) URL already validated, without a trailing '/' ("" for none).
std::string_view url_path(std::string_view url) {
  const auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  const auto start = url.find_first_of("/?#", scheme + 3);
  if (start == std::string_view::npos || url[start] != '/') return {};
  std::string_view path = url.substr(start);
  path = path.substr(0, path.find_first_of("?#"));
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return path;
}

// Reads a secret file: a regular file that grants nothing to group or others, not empty, at
// most kMaxSecretFile; one trailing newline is dropped. The error (never the content) is the
// rest of a sentence that starts with the file's name.
Result<std::string> read_secret_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return make_error(std::string(": cannot read it: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return make_error(std::string(": cannot read it: ") + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return make_error(" is not a regular file");
  // Checked on the open file, before reading: what another user could read is no secret.
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_error(std::string(" has mode ") + mode +
                      ": it must not be readable by group or others (chmod 600)");
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxSecretFile) {
    return make_error(" is larger than 64 KiB: not a key");
  }
  std::string content;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error(std::string(": cannot read it: ") + std::strerror(errno));
    if (n == 0) break;
    content.append(buf, static_cast<std::size_t>(n));
    if (content.size() > kMaxSecretFile) return make_error(" is larger than 64 KiB: not a key");
  }
  if (!content.empty() && content.back() == '\n') {
    content.pop_back();
    if (!content.empty() && content.back() == '\r') content.pop_back();
  }
  if (content.empty()) return make_error(" is empty");
  return content;
}

class Validator {
 public:
  explicit Validator(std::string file) : file_(std::move(file)) {}

  SourcePos pos(const toml::source_region& r) const {
    return SourcePos{file_, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
  }
  void error(const toml::source_region& r, std::string message) {
    errors_.push_back(ConfigError{pos(r), std::move(message)});
  }
  std::vector<ConfigError> take_errors() { return std::move(errors_); }

  // Reports every key of `table` not in `allowed`, suggesting the closest allowed key.
  void check_keys(const toml::table& table, std::initializer_list<std::string_view> allowed,
                  const std::string& where) {
    for (auto&& [key, value] : table) {
      const std::string_view k = key.str();
      if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
      std::string msg = where + "unknown key '" + std::string(k) + "'";
      const std::string_view best = closest(k, allowed);
      if (!best.empty()) msg += " (did you mean '" + std::string(best) + "'?)";
      error(key.source(), msg);
    }
  }

  std::optional<std::string> get_string(const toml::table& t, std::string_view key,
                                        const std::string& where) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (const auto* s = n->as_string()) return s->get();
    error(n->source(),
          where + "'" + std::string(key) + "' must be a string, not " + std::string(type_name(*n)));
    return std::nullopt;
  }

  std::optional<bool> get_bool(const toml::table& t, std::string_view key,
                               const std::string& where) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    if (const auto* b = n->as_boolean()) return b->get();
    error(n->source(), where + "'" + std::string(key) + "' must be true or false, not " +
                           std::string(type_name(*n)));
    return std::nullopt;
  }

  std::optional<int> get_int(const toml::table& t, std::string_view key, int low, int high,
                             const std::string& where) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    const auto* i = n->as_integer();
    if (i == nullptr) {
      error(n->source(), where + "'" + std::string(key) + "' must be an integer, not " +
                             std::string(type_name(*n)));
      return std::nullopt;
    }
    if (i->get() < low || i->get() > high) {
      error(n->source(), where + "'" + std::string(key) + "' must be between " +
                             std::to_string(low) + " and " + std::to_string(high) + ", not " +
                             std::to_string(i->get()));
      return std::nullopt;
    }
    return static_cast<int>(i->get());
  }

  // A duration string; `min` is the smallest accepted value.
  std::optional<Duration> get_duration(const toml::table& t, std::string_view key, Duration min,
                                       const std::string& where) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::nullopt;
    const auto* s = n->as_string();
    if (s == nullptr) {
      std::string hint;
      if (n->is_integer() || n->is_floating_point()) {
        std::ostringstream number;
        if (const auto* i = n->as_integer()) number << i->get();
        // A float of seconds becomes whole milliseconds: the parser takes no fractions.
        if (const auto* f = n->as_floating_point()) {
          // In range first: casting 1e300, inf or nan to an integer is undefined.
          const double ms = f->get() * 1000 + 0.5;
          number << (ms >= 0 && ms < 1e15 ? format_duration(Duration(static_cast<long long>(ms)))
                                          : std::string("10s"));
        } else {
          number << "s";
        }
        hint = " (write a string with a unit, e.g. \"" + number.str() + "\")";
      }
      error(n->source(), where + "'" + std::string(key) +
                             "' must be a duration string like \"250ms\", \"5s\" or \"10m\", not " +
                             std::string(type_name(*n)) + hint);
      return std::nullopt;
    }
    Result<Duration> d = parse_duration(s->get());
    if (!d) {
      error(n->source(), where + "'" + std::string(key) + "': " + d.error().message);
      return std::nullopt;
    }
    if (d->count() == 0) {
      error(n->source(), where + "'" + std::string(key) + "' must be greater than zero");
      return std::nullopt;
    }
    // Why 100 years: every duration ends up added to or subtracted from a time in nanoseconds
    // (64 bits, ±292 years); "200000000d" passed before and overflowed the journal window
    // (found by fuzz_config).
    if (*d > Duration(100LL * 365 * 86'400'000)) {
      error(n->source(),
            where + "'" + std::string(key) + "' must be at most 36500d, not \"" + s->get() + "\"");
      return std::nullopt;
    }
    if (*d < min) {
      error(n->source(), where + "'" + std::string(key) + "' must be at least " +
                             format_duration(min) + ", not \"" + s->get() + "\"");
      return std::nullopt;
    }
    return *d;
  }

  std::optional<Severity> get_severity(const toml::node& n, const std::string& what) {
    const auto* s = n.as_string();
    if (s == nullptr) {
      error(n.source(), what + " must be a severity string \"SEV1\", \"SEV2\" or \"SEV3\", not " +
                            std::string(type_name(n)));
      return std::nullopt;
    }
    auto sev = parse_severity(s->get());
    if (!sev) {
      error(n.source(), what + ": unknown severity \"" + s->get() +
                            "\" (expected \"SEV1\", \"SEV2\" or \"SEV3\")");
    }
    return sev;
  }

  void agent(const toml::node& node, AgentSettings& out) {
    const auto* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), "'agent' must be a table: write [agent]");
      return;
    }
    const std::string where = "[agent]: ";
    check_keys(*t,
               {"hostname", "state_dir", "dry_run", "control_socket", "metrics", "upgrade_after",
                "admin_group", "keep_incidents", "max_incidents"},
               where);
    if (const toml::node* n = t->get("keep_incidents")) {
      const auto* z = n->as_string();
      if (z != nullptr && (z->get() == "0" || z->get() == "forever")) {
        out.keep_incidents = Duration::zero();
      } else if (auto d = get_duration(*t, "keep_incidents", Duration(3'600'000), where)) {
        out.keep_incidents = *d;
      }
    }
    if (auto v = get_int(*t, "max_incidents", 100, 10'000'000, where)) out.max_incidents = *v;
    if (auto g = get_string(*t, "admin_group", where)) {
      // A group name as useradd(8) takes it; the group need not exist yet (it is looked up at
      // every start and reload, and a missing one leaves state changes to root).
      const bool valid =
          !g->empty() && g->size() <= 32 &&
          (std::islower(static_cast<unsigned char>(g->front())) || g->front() == '_') &&
          std::all_of(g->begin(), g->end(), [](unsigned char c) {
            return std::islower(c) || std::isdigit(c) || c == '-' || c == '_';
          });
      if (valid) {
        out.admin_group = *g;
      } else {
        error(t->get("admin_group")->source(),
              where + "'admin_group' \"" + *g +
                  "\" is not a group name (lower-case letters, digits, '-', '_'; at most 32)");
      }
    }
    if (auto h = get_string(*t, "hostname", where)) {
      const bool valid =
          !h->empty() && h->size() <= 253 && std::all_of(h->begin(), h->end(), [](unsigned char c) {
            return std::isalnum(c) || c == '-' || c == '.' || c == '_';
          });
      if (valid) {
        out.hostname = *h;
      } else {
        error(t->get("hostname")->source(),
              where + "'hostname' \"" + *h + "\" is not a valid host name");
      }
    }
    if (auto s = get_string(*t, "state_dir", where)) {
      if (s->empty() || s->front() != '/') {
        error(t->get("state_dir")->source(),
              where + "'state_dir' must be an absolute path, not \"" + *s + "\"");
      } else {
        out.state_dir = *s;
      }
    }
    if (auto b = get_bool(*t, "dry_run", where)) out.dry_run = *b ? DryRun::yes : DryRun::no;
    if (auto s = get_string(*t, "control_socket", where)) {
      // Why 100: a socket path must fit sun_path with its NUL: 108 bytes on Linux, 104 on the
      // BSDs. 100 fits everywhere, and the error comes now rather than at bind().
      if (s->empty() || s->front() != '/' || s->size() > 100) {
        error(t->get("control_socket")->source(),
              where + "'control_socket' must be an absolute path of at most 100 bytes, not \"" +
                  *s + "\"" +
                  (s->size() > 100 ? " (" + std::to_string(s->size()) + " bytes)" : std::string()));
      } else {
        out.control_socket = *s;
      }
    }
    if (auto m = get_string(*t, "metrics", where)) {
      if (std::string why = loopback_address_error(*m); !why.empty()) {
        error(t->get("metrics")->source(), where + "'metrics' " + why);
      } else {
        out.metrics_listen = *m;
      }
    }
    if (const toml::node* n = t->get("upgrade_after")) {
      // "0s" (or "0m", ...) is zero too: it means never, like "0", not "too short".
      const auto* z = n->as_string();
      const auto zero = [](const std::string& v) {
        const Result<Duration> d = parse_duration(v);
        return d && d->count() == 0;
      };
      if (z != nullptr && (z->get() == "0" || z->get() == "off" || zero(z->get()))) {
        out.upgrade_after = Duration::zero();
      } else if (auto d = get_duration(*t, "upgrade_after", Duration(1'000), where)) {
        out.upgrade_after = *d;
      }
    }
  }

  // "" when `text` is "ADDRESS:PORT" with a loopback address (127.0.0.0/8 or [::1]) and a
  // port 1-65535; otherwise what is wrong. Metrics carry check names and incident counts:
  // they must not be served off the host by a typo. Splits the text as the daemon's
  // parse_listen_address does (IPv6 only in brackets), so that what passes here also binds.
  static std::string loopback_address_error(const std::string& text) {
    const HostPort split = split_host_port(text);
    if (split.unbracketed_v6) {
      return "needs brackets around an IPv6 address, as in \"[::1]:9717\", not \"" + text + "\"";
    }
    if (!split.ok) {
      return "must be \"ADDRESS:PORT\" (e.g. \"127.0.0.1:9717\"), not \"" + text + "\"";
    }
    const std::string host(split.host);
    const std::string port(split.port);
    const std::optional<unsigned> value = parse_port(port);
    // Port 0 binds "any free port": nothing could be told where to scrape.
    if (!value || *value == 0) return "has an invalid port \"" + port + "\" (1-65535)";
    auto ip = parse_ip(host);
    if (!ip) return "has an invalid address \"" + host + "\": " + ip.error().message;
    if (!ip->is_loopback()) {
      return "must listen on a loopback address (127.0.0.1 or [::1]), not " + host +
             ": scrape it through the host's own Prometheus agent or an SSH tunnel";
    }
    return {};
  }

  void status_item(const toml::node& n, std::vector<StatusRange>& out, const std::string& where) {
    auto valid = [](long long c) { return c >= 100 && c <= 599; };
    if (const auto* i = n.as_integer()) {
      if (!valid(i->get())) {
        error(n.source(), where + "'expect_status': " + std::to_string(i->get()) +
                              " is not an HTTP status code (100-599)");
        return;
      }
      out.push_back({static_cast<int>(i->get()), static_cast<int>(i->get())});
      return;
    }
    if (const auto* s = n.as_string()) {
      const std::string& v = s->get();
      // "2xx" style classes
      if (v.size() == 3 && v[0] >= '1' && v[0] <= '5' && (v[1] == 'x' || v[1] == 'X') &&
          (v[2] == 'x' || v[2] == 'X')) {
        int base = (v[0] - '0') * 100;
        out.push_back({base, base + 99});
        return;
      }
      // "503": a code written as a string
      if (v.size() == 3 &&
          std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
        const int code = std::stoi(v);
        if (valid(code)) {
          out.push_back({code, code});
          return;
        }
      }
      // "200-399" ranges
      int low = 0, high = 0;
      char dash = 0;
      std::istringstream in(v);
      if ((in >> low >> dash >> high) && dash == '-' && in.peek() == EOF && valid(low) &&
          valid(high) && low <= high) {
        out.push_back({low, high});
        return;
      }
      error(n.source(), where + "'expect_status': \"" + v +
                            "\" is not a status code, a class like \"2xx\" or a range like "
                            "\"200-399\"");
      return;
    }
    error(n.source(), where + "'expect_status' items must be integers or strings, not " +
                          std::string(type_name(n)));
  }

  void http(const toml::table& t, CheckConfig& c, const std::string& where) {
    HttpSettings h;
    const toml::node* url = t.get("url");
    if (url == nullptr) {
      error(t.source(), where + "missing required key 'url' for probe \"http\"");
    } else if (auto u = get_string(t, "url", where)) {
      if (auto problem = sys::validate_http_url(*u)) {
        error(url->source(), where + "'url' \"" + *u + "\": " + *problem);
      } else {
        h.url = *u;
      }
    }
    if (auto m = get_string(t, "method", where)) {
      if (*m == "GET") {
        h.method = HttpMethod::get;
      } else if (*m == "HEAD") {
        h.method = HttpMethod::head;
      } else {
        error(t.get("method")->source(),
              where + "'method' must be \"GET\" or \"HEAD\", not \"" + *m + "\"");
      }
    }
    if (const toml::node* es = t.get("expect_status")) {
      std::vector<StatusRange> ranges;
      if (const auto* arr = es->as_array()) {
        if (arr->empty()) error(es->source(), where + "'expect_status' must not be empty");
        for (const toml::node& item : *arr) status_item(item, ranges, where);
      } else {
        status_item(*es, ranges, where);
      }
      if (!ranges.empty()) h.expect_status = std::move(ranges);
    }
    if (auto s = get_string(t, "body_contains", where)) h.body_contains = *s;
    if (auto s = get_string(t, "body_regex", where)) {
      re2::RE2::Options opts;
      opts.set_log_errors(false);
      auto re = std::make_shared<re2::RE2>(*s, opts);
      if (!re->ok()) {
        error(t.get("body_regex")->source(),
              where + "'body_regex' is not a valid RE2 pattern: " + re->error());
      } else {
        h.body_regex = *s;
        h.body_regex_compiled = std::move(re);
      }
    }
    if (h.method == HttpMethod::head && (!h.body_contains.empty() || !h.body_regex.empty())) {
      const toml::node* body_key = t.get(h.body_contains.empty() ? "body_regex" : "body_contains");
      error(body_key->source(), where +
                                    "a HEAD request has no body: 'body_contains'/'body_regex' need "
                                    "method = \"GET\"");
    }
    if (const toml::node* hn = t.get("headers")) {
      if (const auto* ht = hn->as_table()) {
        for (auto&& [key, value] : *ht) {
          const std::string_view name = key.str();
          const bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
          });
          if (!name_ok) {
            error(key.source(), where + "header name '" + std::string(name) + "' is not valid");
            continue;
          }
          const auto* v = value.as_string();
          if (v == nullptr) {
            error(value.source(), where + "header '" + std::string(name) +
                                      "' must be a string, not " + std::string(type_name(value)));
            continue;
          }
          if (v->get().find_first_of("\r\n") != std::string::npos) {
            error(value.source(),
                  where + "header '" + std::string(name) + "' must not contain a line break");
            continue;
          }
          h.headers.emplace_back(std::string(name), v->get());
        }
      } else {
        error(hn->source(), where +
                                "'headers' must be a table, e.g. headers = { Host = "
                                "\"example.org\" }");
      }
    }
    if (auto b = get_bool(t, "verify_tls", where)) h.verify_tls = *b;
    c.settings = std::move(h);
  }

  void severity(const toml::node& node, SeverityRules& rules, const std::string& where) {
    const auto* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), where +
                               "'severity' must be a table, e.g. severity = { http_5xx = "
                               "\"SEV1\", latency_warn = \"SEV3\" }");
      return;
    }
    for (auto&& [key, value] : *t) {
      const std::string_view k = key.str();
      const std::string what = where + "severity." + std::string(k);
      if (k == "latency_warn") {
        if (auto s = get_severity(value, what)) rules.latency_warn = *s;
      } else if (k == "latency_crit") {
        if (auto s = get_severity(value, what)) rules.latency_crit = *s;
      } else if (auto kind = parse_failure_kind(k)) {
        if (auto s = get_severity(value, what)) rules.set(*kind, *s);
      } else {
        error(key.source(), where + "unknown severity rule '" + std::string(k) +
                                "' (known: refused, timeout, reset, dns, tls, protocol, "
                                "http_5xx, http_4xx, http_status, body, error, failed, inactive, "
                                "restart_loop, start_limit, not_found, match, latency_warn, "
                                "latency_crit)");
      }
    }
  }

  void check(const toml::table& t, CheckConfig& c, std::map<std::string, SourcePos>& names) {
    c.where = pos(t.source());
    std::string where = "check: ";
    const toml::node* name_node = t.get("name");
    if (name_node == nullptr) {
      error(t.source(), "check: missing required key 'name'");
    } else if (auto n = get_string(t, "name", where)) {
      const bool valid = !n->empty() && n->size() <= 64 &&
                         std::isalnum(static_cast<unsigned char>(n->front())) &&
                         std::all_of(n->begin(), n->end(), [](unsigned char ch) {
                           return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
                         });
      if (!valid) {
        error(name_node->source(), "check: name \"" + *n +
                                       "\" must be 1-64 letters, digits, '-', '_' or '.', "
                                       "starting with a letter or digit");
      }
      where = "check '" + *n + "': ";
      auto [it, inserted] = names.emplace(*n, pos(name_node->source()));
      if (!inserted) {
        error(name_node->source(), "duplicate check name '" + *n + "' (first defined at " +
                                       it->second.file + ":" + std::to_string(it->second.line) +
                                       ":" + std::to_string(it->second.column) + ")");
      }
      c.name = *n;
    }

    const toml::node* probe_node = t.get("probe");
    std::string probe;
    if (probe_node == nullptr) {
      error(t.source(), where + "missing required key 'probe' (e.g. probe = \"http\")");
    } else if (auto p = get_string(t, "probe", where)) {
      probe = *p;
      if (probe != "http" && probe != "unit" && probe != "journal") {
        error(probe_node->source(),
              where + "unknown probe \"" + probe + "\" (known: \"http\", \"unit\", \"journal\")");
      }
    }
    c.probe = probe;

    const bool is_http = probe == "http";
    if (is_http) {
      check_keys(
          t, {"name",          "probe",       "interval",         "timeout",       "fail_after",
              "recover_after", "confirm",     "confirm_interval", "latency_warn",  "latency_crit",
              "severity",      "url",         "method",           "expect_status", "body_contains",
              "body_regex",    "headers",     "verify_tls",       "unit",          "service",
              "team",          "flap_window", "flap_low",         "flap_high",     "mitigate"},
          where);
    } else if (probe == "unit") {
      check_keys(t,
                 {"name", "probe", "interval", "fail_after", "recover_after", "severity", "unit",
                  "units", "expect", "restart_loop_count", "restart_loop_window", "service", "team",
                  "flap_window", "flap_low", "flap_high", "mitigate"},
                 where);
    } else if (probe == "journal") {
      check_keys(t,
                 {"name", "probe",       "interval",   "fail_after",  "recover_after", "severity",
                  "unit", "units",       "identifier", "identifiers", "comm",          "exe",
                  "uid",  "transport",   "priority",   "pattern",     "patterns",      "ignore",
                  "key",  "count",       "window",     "max_keys",    "catch_up",      "service",
                  "team", "flap_window", "flap_low",   "flap_high",   "mitigate"},
                 where);
    }

    const auto interval = get_duration(t, "interval", kMinInterval, where);
    if (interval) c.interval = *interval;
    const auto timeout = get_duration(t, "timeout", Duration(1), where);
    // Default timeout: 5 s, but never longer than the interval so runs do not pile up.
    c.timeout = timeout ? *timeout : std::min(Duration(5'000), c.interval);
    if (timeout && *timeout > c.interval) {
      error(t.get("timeout")->source(),
            where + "'timeout' (" + format_duration(*timeout) + ") must not exceed 'interval' (" +
                format_duration(c.interval) + (interval ? ")" : ", the default)"));
    }
    if (auto v = get_int(t, "fail_after", 1, kMaxStreak, where)) c.fail_after = *v;
    if (auto v = get_int(t, "recover_after", 1, kMaxStreak, where)) c.recover_after = *v;
    if (auto v = get_int(t, "confirm", 0, kMaxConfirm, where)) c.confirm = *v;
    if (auto v = get_duration(t, "confirm_interval", Duration(10), where)) c.confirm_interval = *v;
    c.latency_warn = get_duration(t, "latency_warn", Duration(1), where);
    c.latency_crit = get_duration(t, "latency_crit", Duration(1), where);
    if (c.latency_warn && c.latency_crit && *c.latency_warn >= *c.latency_crit) {
      error(t.get("latency_warn")->source(),
            where + "'latency_warn' (" + format_duration(*c.latency_warn) +
                ") must be below 'latency_crit' (" + format_duration(*c.latency_crit) + ")");
    }
    for (const char* key : {"latency_warn", "latency_crit"}) {
      if (!is_http) break;
      const auto& v = std::string_view(key) == "latency_warn" ? c.latency_warn : c.latency_crit;
      if (v && *v >= c.timeout) {
        error(t.get(key)->source(), where + "'" + key + "' (" + format_duration(*v) +
                                        ") is not below 'timeout' (" + format_duration(c.timeout) +
                                        "): it could never fire");
      }
    }
    if (const toml::node* s = t.get("severity")) severity(*s, c.severity, where);
    routing(t, c, where);
    if (is_http) http(t, c, where);
    if (probe == "unit") unit(t, c, where);
    if (probe == "journal") journal(t, c, where);
  }

  // service / team (routing and correlation), flap detection, and an HTTP check's owner unit.
  void routing(const toml::table& t, CheckConfig& c, const std::string& where) {
    const auto name_ok = [](const std::string& v) {
      return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char ch) {
        return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
      });
    };
    for (const char* key : {"service", "team"}) {
      if (auto v = get_string(t, key, where)) {
        if (!name_ok(*v)) {
          error(t.get(key)->source(), where + "'" + key + "' \"" + *v +
                                          "\" must be 1-64 letters, digits, '-', '_' or '.'");
        } else {
          (std::string_view(key) == "service" ? c.service : c.team) = *v;
        }
      }
    }
    if (auto v = get_int(t, "flap_window", 4, 64, where)) c.flap.window = *v;
    // As written ("0.6"), not std::to_string's "0.600000".
    const auto fraction = [](double v) {
      std::ostringstream out;
      out << v;
      return out.str();
    };
    bool flap_ok = true;
    for (const char* key : {"flap_low", "flap_high"}) {
      const toml::node* n = t.get(key);
      if (n == nullptr) continue;
      std::optional<double> v;
      if (const auto* f = n->as_floating_point()) v = f->get();
      // Written as "inside (0, 1)" so that nan is refused too.
      if (!v || !(*v > 0.0 && *v < 1.0)) {
        error(n->source(), where + "'" + key +
                               "' must be a fraction between 0 and 1 (e.g. 0.25), not " +
                               (v ? fraction(*v) : std::string(type_name(*n))));
        flap_ok = false;
        continue;
      }
      (std::string_view(key) == "flap_low" ? c.flap.low : c.flap.high) = *v;
    }
    if (flap_ok && c.flap.low >= c.flap.high) {
      const toml::node* n = t.get("flap_low") ? t.get("flap_low") : t.get("flap_high");
      const auto given = [&t](const char* key) { return t.get(key) ? ")" : ", the default)"; };
      error(n != nullptr ? n->source() : t.source(),
            where + "'flap_low' (" + fraction(c.flap.low) + given("flap_low") +
                " must be below 'flap_high' (" + fraction(c.flap.high) + given("flap_high") +
                ": the gap between them is the hysteresis");
    }
    if (const toml::node* m = t.get("mitigate")) {
      c.mitigate = string_list(t, "mitigate", "", where);
      ladders_.push_back({c.name, m->source()});
    }
    if (c.probe == "http" && t.get("unit") != nullptr) {
      if (auto u = get_string(t, "unit", where)) {
        unit_names(t, {*u}, where, false);
        c.owner_unit = *u;
      }
    }
  }

  // A string or an array of strings under `one` or `many` (e.g. unit / units); either key takes
  // either form. `many` may be empty when there is only one spelling.
  std::vector<std::string> string_list(const toml::table& t, std::string_view one,
                                       std::string_view many, const std::string& where) {
    std::vector<std::string> out;
    if (!many.empty() && t.get(one) != nullptr && t.get(many) != nullptr) {
      error(t.get(many)->source(), where + "give either '" + std::string(one) + "' or '" +
                                       std::string(many) + "', not both");
    }
    for (std::string_view key : {one, many}) {
      if (key.empty()) continue;
      const toml::node* n = t.get(key);
      if (n == nullptr) continue;
      if (const auto* s = n->as_string()) {
        out.push_back(s->get());
        continue;
      }
      const auto* arr = n->as_array();
      if (arr == nullptr) {
        error(n->source(), where + "'" + std::string(key) +
                               "' must be a string or an array of strings, not " +
                               std::string(type_name(*n)));
        continue;
      }
      for (const toml::node& item : *arr) {
        if (const auto* s = item.as_string()) {
          out.push_back(s->get());
        } else {
          error(item.source(), where + "'" + std::string(key) + "' items must be strings, not " +
                                   std::string(type_name(item)));
        }
      }
    }
    return out;
  }

  // Unit names as systemd writes them: "nginx.service", "app@1.service", "backup.timer".
  // `globs`: unit checks also take systemd glob patterns ("app@*.service").
  void unit_names(const toml::table& t, const std::vector<std::string>& names,
                  const std::string& where, bool globs) {
    const char* extra = globs ? ":-_.@\\*?[]" : ":-_.@\\";
    for (const std::string& u : names) {
      const auto dot = u.rfind('.');
      const bool chars_ok =
          !u.empty() && u.size() <= 255 &&
          std::all_of(u.begin(), u.end(), [extra](unsigned char ch) {
            return std::isalnum(ch) || (ch != 0 && std::strchr(extra, ch) != nullptr);
          });
      const toml::node* n = t.get("unit") ? t.get("unit") : t.get("units");
      if (!chars_ok || dot == std::string::npos || dot == 0 || dot + 1 == u.size()) {
        error(n->source(), where + "\"" + u +
                               "\" is not a unit name (e.g. \"nginx.service\", \"app@1.service\")");
      }
    }
  }

  void unit(const toml::table& t, CheckConfig& c, const std::string& where) {
    UnitSettings u;
    u.units = string_list(t, "unit", "units", where);
    if (u.units.empty() && t.get("unit") == nullptr && t.get("units") == nullptr) {
      error(t.source(), where + "missing required key 'unit' (e.g. unit = \"nginx.service\")");
    }
    unit_names(t, u.units, where, true);
    if (auto e = get_string(t, "expect", where)) {
      if (*e == "active") {
        u.expect = UnitExpect::active;
      } else if (*e == "inactive") {
        u.expect = UnitExpect::inactive;
      } else {
        error(t.get("expect")->source(),
              where + "'expect' must be \"active\" or \"inactive\", not \"" + *e + "\"");
      }
    }
    if (auto v = get_int(t, "restart_loop_count", 2, 1000, where)) u.restart_loop_count = *v;
    if (auto v = get_duration(t, "restart_loop_window", Duration(1'000), where)) {
      u.restart_loop_window = *v;
    }
    c.settings = std::move(u);
  }

  std::vector<JournalPattern> patterns(const toml::table& t, std::string_view one,
                                       std::string_view many, const std::string& where) {
    std::vector<JournalPattern> out;
    const std::vector<std::string> sources = string_list(t, one, many, where);
    const toml::node* n = t.get(one) ? t.get(one) : (many.empty() ? nullptr : t.get(many));
    re2::RE2::Options opts;
    opts.set_log_errors(false);
    // Why 8 MiB: RE2's DFA cache per pattern; enough for long patterns, bounded for many.
    opts.set_max_mem(8 << 20);
    // Latin-1, i.e. bytes: journal lines are attacker-influenced and may hold invalid UTF-8,
    // which in UTF-8 mode would make \S stop matching and hide a failure from the count.
    opts.set_encoding(re2::RE2::Options::EncodingLatin1);
    for (const std::string& src : sources) {
      auto re = std::make_shared<re2::RE2>(src, opts);
      if (!re->ok()) {
        error(n->source(), where + "'" + std::string(n == t.get(one) ? one : many) +
                               "': not a valid RE2 pattern: " + re->error() + " in /" + src + "/");
        continue;
      }
      out.push_back(JournalPattern{src, std::move(re)});
    }
    return out;
  }

  // comm, exe, uid, transport: fields journald sets from the kernel's view of the sender.
  void trusted_fields(const toml::table& t, JournalSettings& j, const std::string& where) {
    j.comms = string_list(t, "comm", "", where);
    for (const std::string& v : j.comms) {
      // Why 15: the kernel keeps 16 bytes of a task's name with its NUL (TASK_COMM_LEN).
      if (v.empty() || v.size() > 15 || v.find('=') != std::string::npos) {
        error(t.get("comm")->source(), where + "'comm' \"" + v +
                                           "\" is not a process name: 1 to 15 bytes, as in "
                                           "/proc/PID/comm (e.g. comm = \"sshd\")");
      }
    }
    j.exes = string_list(t, "exe", "", where);
    for (const std::string& v : j.exes) {
      if (v.empty() || v.front() != '/') {
        error(t.get("exe")->source(), where + "'exe' \"" + v +
                                          "\" must be an absolute path, as in /proc/PID/exe "
                                          "(e.g. exe = \"/usr/sbin/sshd\")");
      }
    }
    if (const toml::node* n = t.get("uid")) {
      std::vector<const toml::node*> items;
      if (const auto* arr = n->as_array()) {
        for (const toml::node& item : *arr) items.push_back(&item);
      } else {
        items.push_back(n);
      }
      for (const toml::node* item : items) {
        const auto* i = item->as_integer();
        if (i == nullptr || i->get() < 0 || i->get() > 4'294'967'294LL) {
          error(item->source(), where +
                                    "'uid' must be a user id (an integer 0-4294967294) or an "
                                    "array of them, e.g. uid = 0");
          continue;
        }
        j.uids.push_back(std::to_string(i->get()));
      }
    }
    j.transports = string_list(t, "transport", "", where);
    static constexpr std::array<std::string_view, 6> kTransports{"audit",   "driver", "syslog",
                                                                 "journal", "stdout", "kernel"};
    for (const std::string& v : j.transports) {
      if (std::find(kTransports.begin(), kTransports.end(), v) == kTransports.end()) {
        error(t.get("transport")->source(),
              where + "'transport' \"" + v +
                  "\" must be one of audit, driver, syslog, journal, stdout, kernel");
      }
    }
  }

  // Issue 13: a journal check whose finding can start an action must be aimed by what journald
  // vouches for. SYSLOG_IDENTIFIER is whatever the sender wrote (systemd-cat -t sshd), and a
  // process chooses its own comm; the unit (its cgroup), the executable and the uid are the
  // kernel's. The check can act if its own ladder can, or if it joins (service = ...) an
  // incident whose ladder belongs to another check.
  void provenance(const Config& cfg) {
    for (const CheckConfig& c : cfg.checks) {
      const JournalSettings* j = c.journal();
      const auto src = journal_sources_.find(c.name);
      if (j == nullptr || src == journal_sources_.end()) continue;
      std::string why;
      if (!c.mitigate.empty()) {
        why = "its ladder can act (" + c.mitigate.front() + ")";
      } else if (!c.service.empty()) {
        for (const CheckConfig& o : cfg.checks) {
          if (&o != &c && o.service == c.service && !o.mitigate.empty()) {
            why = "it joins service '" + c.service + "', whose check '" + o.name + "' can act (" +
                  o.mitigate.front() + ")";
            break;
          }
        }
      }
      if (why.empty()) continue;
      const std::string where = "check '" + c.name + "': ";
      if (!j->identifiers.empty()) {
        error(src->second.second.value_or(src->second.first),
              where +
                  "'identifier' matches SYSLOG_IDENTIFIER, which any local process can set "
                  "(systemd-cat -t " +
                  j->identifiers.front() + "), and " + why +
                  ": match on what journald records itself instead: write unit = "
                  "\"NAME.service\" (e.g. unit = \"ssh.service\" for sshd), narrowed by "
                  "uid = 0 or exe = \"/usr/sbin/NAME\" when the unit runs other programs");
      } else if (j->units.empty() && j->exes.empty() && j->uids.empty()) {
        error(src->second.first,
              where +
                  "'comm' and 'transport' alone do not say who wrote a line (a process "
                  "names itself), and " +
                  why + ": add unit = \"NAME.service\", exe = \"/path\" or uid = N");
      }
    }
  }

  void journal(const toml::table& t, CheckConfig& c, const std::string& where) {
    JournalSettings j;
    j.units = string_list(t, "unit", "units", where);
    unit_names(t, j.units, where, false);
    j.identifiers = string_list(t, "identifier", "identifiers", where);
    trusted_fields(t, j, where);
    if (j.units.empty() && j.identifiers.empty() && j.exes.empty() && j.uids.empty() &&
        j.comms.empty()) {
      error(t.source(), where +
                            "a journal check needs 'unit' (or 'exe', 'uid', 'comm', "
                            "'identifier'), so entries of other services are never even read");
    }
    const toml::node* id = t.get("identifier") ? t.get("identifier") : t.get("identifiers");
    journal_sources_[c.name] = {t.source(), id ? std::optional(id->source()) : std::nullopt};
    if (const toml::node* p = t.get("priority")) {
      static constexpr std::array<std::string_view, 8> kNames{"emerg",   "alert",  "crit", "err",
                                                              "warning", "notice", "info", "debug"};
      if (const auto* i = p->as_integer(); i != nullptr && i->get() >= 0 && i->get() <= 7) {
        j.max_priority = static_cast<int>(i->get());
      } else if (const auto* s = p->as_string()) {
        for (std::size_t k = 0; k < kNames.size(); ++k) {
          if (kNames[k] == s->get()) j.max_priority = static_cast<int>(k);
        }
      }
      if (!j.max_priority) {
        error(p->source(), where +
                               "'priority' must be 0-7 or one of emerg, alert, crit, err, "
                               "warning, notice, info, debug");
      }
    }
    const bool has_patterns = t.get("pattern") != nullptr || t.get("patterns") != nullptr;
    j.patterns = patterns(t, "pattern", "patterns", where);
    if (!has_patterns) {
      error(t.source(), where + "missing required key 'pattern' (or 'patterns')");
    }
    // An empty list would be a check that never matches: a silent missed detection.
    for (const char* name : {"pattern", "patterns"}) {
      const toml::node* n = t.get(name);
      if (n != nullptr && n->is_array() && n->as_array()->empty()) {
        error(n->source(), where + "'" + name + "' is empty: give at least one pattern");
      }
    }
    j.ignore = patterns(t, "ignore", "", where);
    if (auto k = get_string(t, "key", where)) {
      j.key = *k;
      for (const JournalPattern& p : j.patterns) {
        if (p.re->NamedCapturingGroups().count(j.key) == 0) {
          error(t.get("key")->source(), where + "'key' \"" + j.key +
                                            "\" is not a named group "
                                            "(?P<" +
                                            j.key + ">...) of pattern /" + p.source + "/");
        }
      }
    }
    if (auto v = get_int(t, "count", 1, 100'000, where)) j.count = *v;
    if (auto v = get_duration(t, "window", Duration(1'000), where)) j.window = *v;
    if (auto v = get_int(t, "max_keys", 10, 10'000'000, where))
      j.max_keys = static_cast<std::size_t>(*v);
    if (auto v = get_duration(t, "catch_up", Duration(1), where)) j.catch_up = *v;
    c.settings = std::move(j);
  }

  // [mitigation]: guards for every action.
  void mitigation(const toml::node& node, MitigationSettings& out) {
    const auto* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), "'mitigation' must be a table: write [mitigation]");
      return;
    }
    const std::string where = "[mitigation]: ";
    check_keys(*t,
               {"allow", "protect_ssh_sessions", "respect_ufw_allow", "max_blocks_per_minute",
                "circuit_reset"},
               where);
    if (const toml::node* n = t->get("allow")) {
      const auto* arr = n->as_array();
      if (arr == nullptr) {
        error(n->source(), where +
                               "'allow' must be an array of addresses or CIDR blocks, e.g. "
                               "allow = [\"10.0.0.0/8\", \"2001:db8::1\"]");
      } else {
        for (const toml::node& item : *arr) {
          const auto* str = item.as_string();
          if (str == nullptr) {
            error(item.source(),
                  where + "'allow' items must be strings, not " + std::string(type_name(item)));
            continue;
          }
          auto cidr = parse_cidr(str->get());
          if (!cidr) {
            error(item.source(), where + "'allow': " + cidr.error().message);
          } else {
            out.allow.push_back(*cidr);
          }
        }
      }
    }
    if (auto b = get_bool(*t, "protect_ssh_sessions", where)) out.protect_ssh_sessions = *b;
    if (auto b = get_bool(*t, "respect_ufw_allow", where)) out.respect_ufw_allow = *b;
    if (auto v = get_int(*t, "max_blocks_per_minute", 1, 10'000, where)) {
      out.max_blocks_per_minute = *v;
    }
    if (auto d = get_duration(*t, "circuit_reset", Duration(1'000), where)) out.circuit_reset = *d;
  }

  // [action.KIND.NAME] tables.
  void actions(const toml::node& node, std::map<std::string, ActionConfig>& out) {
    const auto* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), "'action' must be tables like [action.restart.app]");
      return;
    }
    check_keys(*t, {"restart", "rollback", "block"}, "[action]: ");
    for (auto&& [kind_key, kind_node] : *t) {
      const std::string kind_name(kind_key.str());
      ActionKind kind = ActionKind::restart;
      if (kind_name == "rollback")
        kind = ActionKind::rollback;
      else if (kind_name == "block")
        kind = ActionKind::block;
      else if (kind_name != "restart")
        continue;  // reported by check_keys
      const auto* kinds = kind_node.as_table();
      if (kinds == nullptr) {
        error(kind_node.source(),
              "'action." + kind_name + "' must hold tables like [action." + kind_name + ".NAME]");
        continue;
      }
      for (auto&& [name_key, n] : *kinds) {
        ActionConfig a;
        a.kind = kind;
        a.name = std::string(name_key.str());
        a.where = pos(n.source());
        const std::string where = "[action." + kind_name + "." + a.name + "]: ";
        const bool name_ok =
            !a.name.empty() && a.name.size() <= 64 &&
            std::all_of(a.name.begin(), a.name.end(), [](unsigned char ch) {
              return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '@';
            });
        if (!name_ok) {
          error(name_key.source(), where +
                                       "the name must be 1-64 letters, digits, '-', '_', "
                                       "'.' or '@'");
        }
        const auto* at = n.as_table();
        if (at == nullptr) {
          error(n.source(), where + "must be a table");
          continue;
        }
        action(*at, a, where);
        out[a.ref()] = std::move(a);
      }
    }
  }

  void action(const toml::table& t, ActionConfig& a, const std::string& where) {
    switch (a.kind) {
      case ActionKind::restart:
        check_keys(t,
                   {"unit", "reset_failed", "job_timeout", "max_runs", "per", "cooldown",
                    "verify_within", "dry_run"},
                   where);
        break;
      case ActionKind::rollback:
        check_keys(t,
                   {"dir", "unit", "job_timeout", "max_runs", "per", "cooldown", "verify_within",
                    "dry_run", "deployed_within"},
                   where);
        break;
      case ActionKind::block:
        check_keys(t,
                   {"block_for", "max_block_for", "kill_connections", "max_runs", "per", "cooldown",
                    "dry_run"},
                   where);
        // A block is verified by its rule being in place, not by waiting for health.
        a.cooldown = Duration::zero();
        break;
    }
    if (a.kind != ActionKind::block) {
      if (auto u = get_string(t, "unit", where)) {
        unit_names(t, {*u}, where, false);
        a.unit = *u;
      } else if (a.kind == ActionKind::restart && t.get("unit") == nullptr) {
        // [action.restart.nginx] with no unit restarts nginx.service.
        a.unit = a.name.find('.') == std::string::npos ? a.name + ".service" : a.name;
      }
    }
    if (a.kind == ActionKind::rollback) {
      const toml::node* d = t.get("dir");
      if (d == nullptr) {
        error(t.source(), where +
                              "missing required key 'dir' (the directory holding releases/ "
                              "and the current symlink, e.g. \"/srv/app\")");
      } else if (auto v = get_string(t, "dir", where)) {
        if (v->empty() || v->front() != '/' || v->find("/../") != std::string::npos ||
            (v->size() >= 3 && v->compare(v->size() - 3, 3, "/..") == 0)) {
          error(d->source(),
                where + "'dir' must be an absolute path without '..', not \"" + *v + "\"");
        } else {
          a.dir = *v;
        }
      }
    }
    if (auto b = get_bool(t, "reset_failed", where)) a.reset_failed = *b;
    if (auto d = get_duration(t, "deployed_within", Duration(1'000), where)) {
      a.deployed_within = *d;
    }
    if (auto d = get_duration(t, "job_timeout", Duration(1'000), where)) a.job_timeout = *d;
    if (auto d = get_duration(t, "block_for", Duration(1'000), where)) a.block_for = *d;
    if (auto d = get_duration(t, "max_block_for", Duration(1'000), where)) a.max_block_for = *d;
    if (a.max_block_for < a.block_for) {
      const toml::node* n = t.get("max_block_for") ? t.get("max_block_for") : t.get("block_for");
      error(n->source(), where + "'max_block_for' (" + format_duration(a.max_block_for) +
                             ") must not be shorter than 'block_for' (" +
                             format_duration(a.block_for) + ")");
    }
    if (auto b = get_bool(t, "kill_connections", where)) a.kill_connections = *b;
    if (auto v = get_int(t, "max_runs", 1, 1000, where)) a.max_runs = *v;
    if (auto d = get_duration(t, "per", Duration(1'000), where)) a.per = *d;
    if (const toml::node* n = t.get("cooldown")) {
      const auto* z = n->as_string();
      if (z != nullptr && (z->get() == "0" || z->get() == "0s")) {
        a.cooldown = Duration::zero();
      } else if (auto d = get_duration(t, "cooldown", Duration(1), where)) {
        a.cooldown = *d;
      }
    }
    if (auto d = get_duration(t, "verify_within", Duration(1'000), where)) a.verify_within = *d;
    if (auto b = get_bool(t, "dry_run", where)) a.dry_run = *b ? DryRun::yes : DryRun::no;
  }

  // Every ladder step names a defined action that fits the check.
  void ladders(Config& cfg) {
    for (const auto& [check_name, where_src] : ladders_) {
      CheckConfig* c = nullptr;
      for (CheckConfig& x : cfg.checks) {
        if (x.name == check_name) c = &x;
      }
      if (c == nullptr) continue;
      const std::string where = "check '" + check_name + "': ";
      std::set<std::string> seen;
      for (const std::string& ref : c->mitigate) {
        const auto colon = ref.find(':');
        const std::string kind = ref.substr(0, colon);
        if (colon == std::string::npos ||
            (kind != "restart" && kind != "rollback" && kind != "block")) {
          error(where_src, where + "'mitigate': \"" + ref +
                               "\" must be \"KIND:NAME\" with KIND restart, rollback or block "
                               "(e.g. \"restart:app\")");
          continue;
        }
        if (!seen.insert(ref).second) {
          error(where_src, where + "'mitigate' names \"" + ref + "\" twice");
          continue;
        }
        const auto a = cfg.actions.find(ref);
        if (a == cfg.actions.end()) {
          error(where_src, where + "'mitigate': no action \"" + ref + "\" (define it as [action." +
                               kind + "." + ref.substr(colon + 1) + "])");
          continue;
        }
        if (a->second.kind == ActionKind::block) {
          const JournalSettings* j = c->journal();
          if (j == nullptr || j->key.empty()) {
            error(where_src, where + "'mitigate': \"" + ref +
                                 "\" blocks the address a journal check captures: it needs "
                                 "probe = \"journal\" and key = \"NAME\" (a named capture of "
                                 "the IP)");
          }
        } else if (c->journal() != nullptr && !c->journal()->key.empty()) {
          error(where_src, where + "'mitigate': \"" + ref +
                               "\" acts on a service, but this check counts per '" +
                               c->journal()->key + "': only block fits a per-address rule");
        }
      }
    }
  }

  // A string or an array of strings under `key`, each with its node (for the position of an
  // error about one item). Messages as string_list's.
  std::vector<std::pair<std::string, const toml::node*>> string_items(const toml::table& t,
                                                                      std::string_view key,
                                                                      const std::string& where) {
    std::vector<std::pair<std::string, const toml::node*>> out;
    const toml::node* n = t.get(key);
    if (n == nullptr) return out;
    if (const auto* s = n->as_string()) {
      out.emplace_back(s->get(), n);
      return out;
    }
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      error(n->source(), where + "'" + std::string(key) +
                             "' must be a string or an array of strings, not " +
                             std::string(type_name(*n)));
      return out;
    }
    for (const toml::node& item : *arr) {
      if (const auto* s = item.as_string()) {
        out.emplace_back(s->get(), &item);
      } else {
        error(item.source(), where + "'" + std::string(key) + "' items must be strings, not " +
                                 std::string(type_name(item)));
      }
    }
    return out;
  }

  // A duration between `min` and `max`.
  std::optional<Duration> get_duration_max(const toml::table& t, std::string_view key, Duration min,
                                           Duration max, const std::string& where) {
    auto d = get_duration(t, key, min, where);
    if (d && *d > max) {
      error(t.get(key)->source(), where + "'" + std::string(key) + "' must be at most " +
                                      format_duration(max) + ", not \"" +
                                      t.get(key)->as_string()->get() + "\"");
      return std::nullopt;
    }
    return d;
  }

  // An http(s) URL of a notifier. `endpoint`: the path vigil appends to this base URL, which
  // the URL must not already end with ("" when the URL is used as is).
  bool notify_url(const toml::node& n, const std::string& url, std::string_view key,
                  std::string_view endpoint, const std::string& where) {
    const std::string what = where + "'" + std::string(key) + "' \"" + url + "\": ";
    if (auto problem = sys::validate_http_url(url)) {
      error(n.source(), what + *problem);
      return false;
    }
    if (!endpoint.empty() && url_path(url).ends_with(endpoint)) {
      error(n.source(),
            what + "give the base URL, without " + std::string(endpoint) + " (vigil adds it)");
      return false;
    }
    return true;
  }

  // [paging]: the outbox, the dead-man heartbeat and incident links.
  void paging(const toml::node& node, PagingSettings& out) {
    const auto* t = node.as_table();
    if (t == nullptr) {
      error(node.source(), "'paging' must be a table: write [paging]");
      return;
    }
    const std::string where = "[paging]: ";
    check_keys(*t, {"outbox_max", "heartbeat_every", "heartbeat_url", "link_base"}, where);
    if (auto v = get_int(*t, "outbox_max", kMinOutbox, kMaxOutbox, where)) {
      out.outbox_max = static_cast<std::size_t>(*v);
    }
    if (auto d = get_duration(*t, "heartbeat_every", kMinHeartbeat, where)) {
      out.heartbeat_every = *d;
    }
    for (const char* key : {"heartbeat_url", "link_base"}) {
      if (auto u = get_string(*t, key, where)) {
        if (notify_url(*t->get(key), *u, key, "", where)) {
          (std::string_view(key) == "heartbeat_url" ? out.heartbeat_url : out.link_base) = *u;
        }
      }
    }
  }

  // Reports every key of a [[notify]] table that its kind does not take: a key of another kind
  // says which kind it is for; an unknown one gets a suggestion among this kind's keys.
  void notify_keys(const toml::table& t, NotifierKind kind, const std::string& where) {
    const unsigned bit = kind_bit(kind);
    for (auto&& [key, value] : t) {
      const std::string k(key.str());
      const auto it = std::find_if(kNotifyKeys.begin(), kNotifyKeys.end(),
                                   [&k](const NotifyKey& nk) { return nk.key == k; });
      if (it != kNotifyKeys.end() && (it->kinds & bit) != 0) continue;
      if (it == kNotifyKeys.end()) {
        std::vector<std::string_view> allowed;
        for (const NotifyKey& nk : kNotifyKeys) {
          if (nk.kinds & bit) allowed.push_back(nk.key);
        }
        std::string msg = where + "unknown key '" + k + "'";
        const std::string_view best = closest(k, allowed);
        if (!best.empty()) msg += " (did you mean '" + std::string(best) + "'?)";
        error(key.source(), msg);
      } else if (k == "url") {
        error(key.source(), where +
                                "'url' is not for kind alertmanager: list every peer of the "
                                "cluster in 'urls', e.g. urls = [\"http://am1:9093\", "
                                "\"http://am2:9093\"]");
      } else if (k == "urls") {
        error(key.source(), where +
                                "'urls' is only for kind alertmanager (the peers of a cluster): "
                                "kind " +
                                std::string(to_string(kind)) + " takes one 'url'");
      } else {
        error(key.source(), where + "'" + k + "' is only for " + kinds_text(it->kinds));
      }
    }
  }

  struct Secret {
    std::string value;
    std::string file;        // "" when inline
    const toml::node* node;  // for the position of an error about the value
    std::string label;       // "'routing_key'" or "'routing_key_file' \"/etc/vigil/pd.key\""
  };

  // A secret inline (`key`) or read from a file (`key`_file): at most one of them. nullopt when
  // neither is given or it is unusable (reported). No message ever contains the secret.
  std::optional<Secret> secret(const toml::table& t, const std::string& key,
                               const std::string& where) {
    const std::string file_key = key + "_file";
    const toml::node* inline_node = t.get(key);
    const toml::node* file_node = t.get(file_key);
    if (inline_node != nullptr && file_node != nullptr) {
      error(file_node->source(),
            where + "give either '" + key + "' or '" + file_key + "', not both");
      return std::nullopt;
    }
    if (inline_node != nullptr) {
      auto v = get_string(t, key, where);
      if (!v) return std::nullopt;
      if (v->empty()) {
        error(inline_node->source(), where + "'" + key + "' is empty");
        return std::nullopt;
      }
      return Secret{std::move(*v), "", inline_node, "'" + key + "'"};
    }
    if (file_node == nullptr) return std::nullopt;
    auto path = get_string(t, file_key, where);
    if (!path) return std::nullopt;
    if (path->empty() || path->front() != '/') {
      error(file_node->source(),
            where + "'" + file_key + "' must be an absolute path, not \"" + *path + "\"");
      return std::nullopt;
    }
    const std::string label = "'" + file_key + "' \"" + *path + "\"";
    Result<std::string> content = read_secret_file(*path);
    if (!content) {
      error(file_node->source(), where + label + content.error().message);
      return std::nullopt;
    }
    return Secret{std::move(*content), *path, file_node, label};
  }

  // A secret that goes into an HTTP header: no control characters.
  bool header_safe(const Secret& s, const std::string& where) {
    const bool ok = std::none_of(s.value.begin(), s.value.end(),
                                 [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
    if (!ok) {
      error(s.node->source(), where + s.label +
                                  " contains a line break or another control character: it "
                                  "goes into an HTTP header");
    }
    return ok;
  }

  // One [[notify]] table. False when its kind is unknown (nothing else can be checked).
  bool notifier(const toml::table& t, NotifyConfig& n, std::map<std::string, SourcePos>& names) {
    n.where = pos(t.source());
    std::string where = "notify: ";
    const toml::node* name_node = t.get("name");
    std::optional<std::string> name;
    if (name_node != nullptr) {
      name = get_string(t, "name", where);
      if (name && !notify_name_ok(*name)) {
        error(name_node->source(),
              "notify: name \"" + *name + "\" must be 1-64 letters, digits, '-' or '_'");
      }
      if (name) where = "notify '" + *name + "': ";
    }

    const toml::node* kind_node = t.get("kind");
    std::optional<NotifierKind> kind;
    if (kind_node == nullptr) {
      error(t.source(), where +
                            "missing required key 'kind' (alertmanager, pagerduty, oncall, "
                            "statuspage or webhook)");
    } else if (auto k = get_string(t, "kind", where)) {
      for (std::size_t i = 0; i < kNotifierKinds.size(); ++i) {
        if (kNotifierKinds[i] == *k) kind = static_cast<NotifierKind>(i);
      }
      if (!kind) {
        const std::string_view best = closest(*k, kNotifierKinds);
        error(kind_node->source(),
              where + "unknown kind \"" + *k + "\"" +
                  (best.empty()
                       ? std::string(" (known: alertmanager, pagerduty, oncall, statuspage, "
                                     "webhook; for a chat tool or a custom receiver: webhook)")
                       : " (did you mean \"" + std::string(best) + "\"?)"));
      }
    }
    if (!kind) {
      if (name) broken_notify_.insert(*name);
      return false;
    }
    n.kind = *kind;
    const std::string kind_name(to_string(n.kind));
    n.name = name.value_or(kind_name);
    where = "notify '" + n.name + "': ";

    // The second of two with one name is the error; its position is where the name comes from.
    const toml::node* named_at = name ? name_node : kind_node;
    auto [first, inserted] = names.emplace(n.name, pos(named_at->source()));
    if (!inserted) {
      error(named_at->source(),
            "duplicate notify name '" + n.name + "' (first defined at " + first->second.file + ":" +
                std::to_string(first->second.line) + ":" + std::to_string(first->second.column) +
                ")" +
                (name ? std::string()
                      : ": the name defaults to the kind; give each one its own 'name'"));
    }

    notify_keys(t, n.kind, where);
    notify_urls(t, n, where);

    // Why SEV1 for a status page: it is read by customers; it tells of outages, not of every
    // degraded check. Everything else gets every incident by default.
    n.severity = n.kind == NotifierKind::statuspage ? Severity::sev1 : Severity::sev3;
    // Alertmanager deduplicates and groups by itself and takes thousands of alerts a second; a
    // limit of 60 would hold a burst of per-address incidents back for minutes.
    if (n.kind == NotifierKind::alertmanager) n.max_per_minute = 6'000;
    if (const toml::node* s = t.get("severity")) {
      if (auto sev = get_severity(*s, where + "'severity'")) n.severity = *sev;
    }
    if (const toml::node* tn = t.get("teams")) {
      const auto* arr = tn->as_array();
      if (arr != nullptr && arr->empty()) {
        error(tn->source(), where + "'teams' must not be empty (leave it out to page every team)");
      }
      for (auto& [team, item] : string_items(t, "teams", where)) {
        if (!team_name_ok(team)) {
          error(item->source(), where + "'teams': \"" + team +
                                    "\" must be 1-64 letters, digits, '-', '_' or '.', as a "
                                    "check's 'team'");
        } else {
          n.teams.push_back(team);
        }
      }
    }

    switch (n.kind) {
      case NotifierKind::alertmanager:
        if (auto d = get_duration_max(t, "resend_every", kMinResend, kMaxResend, where)) {
          n.resend_every = *d;
        }
        if (auto b = get_bool(t, "heartbeat", where)) n.heartbeat = *b;
        break;
      case NotifierKind::pagerduty:
        if (auto s = secret(t, "routing_key", where)) {
          const bool chars_ok = std::all_of(s->value.begin(), s->value.end(),
                                            [](unsigned char ch) { return std::isalnum(ch); });
          if (s->value.size() != 32 || !chars_ok) {
            error(s->node->source(),
                  where + s->label +
                      ": a routing key is exactly 32 letters and digits (the integration key of "
                      "an Events API v2 integration); this one has " +
                      (s->value.size() != 32 ? std::to_string(s->value.size()) + " characters"
                                             : std::string("other characters")));
          } else {
            n.secret = std::move(s->value);
            n.secret_file = std::move(s->file);
          }
        } else if (t.get("routing_key") == nullptr && t.get("routing_key_file") == nullptr) {
          error(t.source(), where +
                                "missing required key 'routing_key_file' (or 'routing_key'): "
                                "the integration key of the PagerDuty service");
        }
        break;
      case NotifierKind::oncall:
        break;
      case NotifierKind::statuspage:
        if (auto s = secret(t, "api_key", where)) {
          if (header_safe(*s, where)) {
            n.secret = std::move(s->value);
            n.secret_file = std::move(s->file);
          }
        } else if (t.get("api_key") == nullptr && t.get("api_key_file") == nullptr) {
          error(t.source(), where +
                                "missing required key 'api_key_file' (or 'api_key'): the "
                                "Statuspage API key");
        }
        statuspage_ids(t, n, where);
        break;
      case NotifierKind::webhook:
        webhook(t, n, where);
        break;
    }
    if (n.kind == NotifierKind::statuspage || n.kind == NotifierKind::webhook) {
      if (auto d = get_duration(t, "update_every", kMinUpdate, where)) n.update_every = *d;
    }
    if (auto d = get_duration_max(t, "timeout", kMinNotifyTimeout, kMaxNotifyTimeout, where)) {
      n.timeout = *d;
    }
    if (auto v = get_int(t, "max_per_minute", 1, 10'000, where)) n.max_per_minute = *v;
    if (auto b = get_bool(t, "verify_tls", where)) n.verify_tls = *b;
    return true;
  }

  // `urls` (alertmanager: every peer) or `url` (the others), with each kind's default.
  void notify_urls(const toml::table& t, NotifyConfig& n, const std::string& where) {
    if (n.kind == NotifierKind::alertmanager) {
      const toml::node* un = t.get("urls");
      if (un == nullptr) {
        // A `url` was reported as the wrong key already; one error is enough.
        if (t.get("url") == nullptr) {
          error(t.source(), where +
                                "missing required key 'urls' (every peer of the Alertmanager "
                                "cluster, e.g. urls = [\"http://am1:9093\", \"http://am2:9093\"])");
        }
        return;
      }
      if (const auto* arr = un->as_array(); arr != nullptr && arr->empty()) {
        error(un->source(), where + "'urls' must name at least one Alertmanager");
      }
      std::set<std::string> seen;
      for (auto& [url, item] : string_items(t, "urls", where)) {
        if (!notify_url(*item, url, "urls", "/api/v2/alerts", where)) continue;
        if (!seen.insert(url).second) {
          error(item->source(), where + "'urls' names \"" + url + "\" twice");
          continue;
        }
        n.urls.push_back(url);
      }
      return;
    }
    if (t.get("urls") != nullptr) return;  // reported by notify_keys
    const toml::node* un = t.get("url");
    if (un == nullptr) {
      switch (n.kind) {
        case NotifierKind::pagerduty:
          n.urls = {"https://events.pagerduty.com"};
          break;
        case NotifierKind::statuspage:
          n.urls = {"https://api.statuspage.io"};
          break;
        case NotifierKind::oncall:
          error(t.source(), where +
                                "missing required key 'url' (the URL of the OnCall integration, "
                                "of type \"Formatted webhook\")");
          break;
        default:
          error(t.source(), where + "missing required key 'url' (the URL to post pages to)");
          break;
      }
      return;
    }
    if (auto u = get_string(t, "url", where)) {
      const std::string_view endpoint = n.kind == NotifierKind::pagerduty    ? "/v2/enqueue"
                                        : n.kind == NotifierKind::statuspage ? "/v1"
                                                                             : "";
      if (notify_url(*un, *u, "url", endpoint, where)) n.urls = {*u};
    }
  }

  // statuspage: the page and its components, ids that go into the API's URLs and body.
  void statuspage_ids(const toml::table& t, NotifyConfig& n, const std::string& where) {
    const auto id_ok = [](std::string_view v) { return notify_name_ok(v); };
    if (const toml::node* p = t.get("page_id")) {
      if (auto v = get_string(t, "page_id", where)) {
        if (!id_ok(*v)) {
          error(p->source(), where + "'page_id' \"" + *v +
                                 "\" must be 1-64 letters, digits, '-' or '_' (it goes into the "
                                 "API's URL)");
        } else {
          n.page_id = *v;
        }
      }
    } else {
      error(t.source(), where +
                            "missing required key 'page_id' (the page's id, as in the API's "
                            "/v1/pages/PAGE_ID)");
    }
    for (auto& [id, item] : string_items(t, "component_ids", where)) {
      if (!id_ok(id)) {
        error(item->source(),
              where + "'component_ids': \"" + id + "\" must be 1-64 letters, digits, '-' or '_'");
      } else {
        n.component_ids.push_back(id);
      }
    }
  }

  // webhook: the optional HMAC signature and extra headers.
  void webhook(const toml::table& t, NotifyConfig& n, const std::string& where) {
    const bool has_key = t.get("hmac_key") != nullptr || t.get("hmac_key_file") != nullptr;
    if (auto s = secret(t, "hmac_key", where)) {
      n.secret = std::move(s->value);
      n.secret_file = std::move(s->file);
    }
    if (const toml::node* sh = t.get("signature_header")) {
      if (auto v = get_string(t, "signature_header", where)) {
        if (!header_name_ok(*v)) {
          error(sh->source(),
                where + "'signature_header' \"" + *v + "\" is not a valid HTTP header name");
        } else if (!has_key) {
          error(sh->source(), where +
                                  "'signature_header' needs 'hmac_key_file' (or 'hmac_key'): "
                                  "there is nothing to sign with");
        } else {
          n.signature_header = *v;
        }
      }
    }
    const toml::node* hn = t.get("headers");
    if (hn == nullptr) return;
    const auto* ht = hn->as_table();
    if (ht == nullptr) {
      error(hn->source(), where +
                              "'headers' must be a table, e.g. headers = { Authorization = "
                              "\"Bearer ...\" }");
      return;
    }
    for (auto&& [key, value] : *ht) {
      const std::string name(key.str());
      if (!header_name_ok(name)) {
        error(key.source(), where + "header name '" + name + "' is not valid");
        continue;
      }
      // vigil writes these itself: a second copy would make the request ambiguous.
      if (iequals(name, "Content-Type") || iequals(name, "Content-Length") ||
          (has_key && iequals(name, n.signature_header))) {
        error(key.source(), where + "header '" + name + "' is set by vigil");
        continue;
      }
      const auto* v = value.as_string();
      if (v == nullptr) {
        error(value.source(), where + "header '" + name + "' must be a string, not " +
                                  std::string(type_name(value)));
        continue;
      }
      // Values are not quoted in messages: they are often credentials.
      if (v->get().find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
        error(value.source(), where + "header '" + name + "' must not contain a line break");
        continue;
      }
      n.headers.emplace_back(name, v->get());
    }
  }

  void notifiers(const toml::node& node, std::vector<NotifyConfig>& out) {
    const auto* arr = node.as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      error(node.source(), "'notify' must be an array of tables: write [[notify]]");
      return;
    }
    std::map<std::string, SourcePos> names;
    for (const toml::node& item : *arr) {
      NotifyConfig n;
      if (notifier(*item.as_table(), n, names)) out.push_back(std::move(n));
    }
  }

  // [[escalation]] chains: after the notifiers, whose names and kinds the steps are checked
  // against.
  void escalations(const toml::node& node, Config& cfg) {
    const auto* arr = node.as_array();
    if (arr == nullptr || !arr->is_array_of_tables()) {
      error(node.source(), "'escalation' must be an array of tables: write [[escalation]]");
      return;
    }
    std::map<std::string, SourcePos> teams;
    for (const toml::node& item : *arr) {
      EscalationConfig e;
      escalation(*item.as_table(), e, cfg, teams);
      cfg.escalations.push_back(std::move(e));
    }
  }

  void escalation(const toml::table& t, EscalationConfig& e, const Config& cfg,
                  std::map<std::string, SourcePos>& teams) {
    e.where = pos(t.source());
    const toml::node* team_node = t.get("team");
    if (team_node != nullptr) {
      if (auto v = get_string(t, "team", "escalation: ")) {
        if (!v->empty() && !team_name_ok(*v)) {
          error(team_node->source(), "escalation: 'team' \"" + *v +
                                         "\" must be 1-64 letters, digits, '-', '_' or '.' (or "
                                         "\"\" for every team)");
        }
        e.team = *v;
      }
    }
    const std::string where =
        e.team.empty() ? std::string("escalation (every team): ") : "escalation '" + e.team + "': ";
    check_keys(t, {"team", "steps"}, where);
    const toml::node* at = team_node != nullptr ? team_node : &t;
    if (auto [first, inserted] = teams.emplace(e.team, pos(at->source())); !inserted) {
      const std::string first_at = first->second.file + ":" + std::to_string(first->second.line) +
                                   ":" + std::to_string(first->second.column);
      error(at->source(), e.team.empty()
                              ? "duplicate escalation chain for every team (first defined at " +
                                    first_at + "): give one of them a 'team'"
                              : "duplicate escalation chain for team '" + e.team +
                                    "' (first defined at " + first_at + ")");
    }

    const toml::node* sn = t.get("steps");
    if (sn == nullptr) {
      error(t.source(), where +
                            "missing required key 'steps' (e.g. steps = [{ notify = \"primary\" "
                            "}, { notify = \"secondary\", after = \"5m\" }])");
      return;
    }
    const auto* steps = sn->as_array();
    if (steps == nullptr) {
      error(sn->source(), where +
                              "'steps' must be an array of tables, e.g. steps = [{ notify = "
                              "\"primary\" }, { notify = \"secondary\", after = \"5m\" }]");
      return;
    }
    if (steps->empty()) {
      error(sn->source(), where + "'steps' must have at least one step");
      return;
    }
    std::map<std::string, std::size_t> seen;  // notifier -> its step (1-based)
    for (std::size_t i = 0; i < steps->size(); ++i) {
      const toml::node& item = *steps->get(i);
      const std::string sw = where + "step " + std::to_string(i + 1) + ": ";
      const auto* st = item.as_table();
      if (st == nullptr) {
        error(item.source(), sw +
                                 "must be a table like { notify = \"primary\", after = \"5m\" }, "
                                 "not " +
                                 std::string(type_name(item)));
        continue;
      }
      check_keys(*st, {"notify", "after"}, sw);
      EscalationStep step;
      const toml::node* nn = st->get("notify");
      if (nn == nullptr) {
        error(st->source(), sw + "missing required key 'notify' (the name of a [[notify]])");
      } else if (auto name = get_string(*st, "notify", sw)) {
        step.notify = *name;
        escalation_target(*nn, *name, cfg, sw);
        if (auto [first, inserted] = seen.emplace(*name, i + 1); !inserted) {
          error(nn->source(), sw + "\"" + *name + "\" is already step " +
                                  std::to_string(first->second) + " of this chain");
        }
      }
      const toml::node* an = st->get("after");
      if (i == 0) {
        if (an != nullptr) {
          const auto* s = an->as_string();
          const Result<Duration> d =
              s != nullptr ? parse_duration(s->get()) : Result<Duration>(make_error(""));
          if (!d || d->count() != 0) {
            error(an->source(), sw + "'after' must be \"0s\" or left out: the first step is paged "
                                     "with the incident");
          }
        }
      } else if (an == nullptr) {
        error(st->source(), sw + "missing required key 'after' (how long step " +
                                std::to_string(i) +
                                " has to acknowledge before this step is paged, at least 1m)");
      } else if (auto d = get_duration(*st, "after", kMinEscalationAfter, sw)) {
        step.after = *d;
      }
      e.steps.push_back(std::move(step));
    }
  }

  // A step names a webhook: the other kinds escalate on their own, or page nobody.
  void escalation_target(const toml::node& n, const std::string& name, const Config& cfg,
                         const std::string& where) {
    if (broken_notify_.count(name) != 0) return;  // its own error says what is wrong
    const NotifyConfig* target = cfg.find_notify(name);
    if (target == nullptr) {
      error(n.source(), where + "no notifier \"" + name +
                            "\" (define it as a [[notify]] with name = \"" + name +
                            "\" and kind = \"webhook\")");
      return;
    }
    std::string why;
    switch (target->kind) {
      case NotifierKind::webhook:
        return;
      case NotifierKind::pagerduty:
        why = "PagerDuty escalates on its own (the service's escalation policy)";
        break;
      case NotifierKind::oncall:
        why = "Grafana OnCall escalates on its own (the integration's escalation chain)";
        break;
      case NotifierKind::alertmanager:
        why = "Alertmanager routes and repeats on its own (its route tree)";
        break;
      case NotifierKind::statuspage:
        why = "a status page informs readers, it pages nobody";
        break;
    }
    error(n.source(), where + "\"" + name + "\" is kind " + std::string(to_string(target->kind)) +
                          ": " + why + "; a chain pages webhooks only");
  }

  Config document(const toml::table& root) {
    Config cfg;
    check_keys(root, {"agent", "check", "mitigation", "action", "paging", "notify", "escalation"},
               "");
    if (const toml::node* a = root.get("agent")) agent(*a, cfg.agent);
    if (const toml::node* m = root.get("mitigation")) mitigation(*m, cfg.mitigation);
    if (const toml::node* a = root.get("action")) actions(*a, cfg.actions);
    if (const toml::node* p = root.get("paging")) paging(*p, cfg.paging);
    if (const toml::node* n = root.get("notify")) notifiers(*n, cfg.notify);
    if (const toml::node* e = root.get("escalation")) escalations(*e, cfg);
    if (const toml::node* checks = root.get("check")) {
      const auto* arr = checks->as_array();
      if (arr == nullptr || !arr->is_array_of_tables()) {
        error(checks->source(), "'check' must be an array of tables: write [[check]]");
      } else {
        std::map<std::string, SourcePos> names;
        for (const toml::node& n : *arr) {
          CheckConfig c;
          check(*n.as_table(), c, names);
          cfg.checks.push_back(std::move(c));
        }
      }
    }
    ladders(cfg);
    provenance(cfg);
    return cfg;
  }

 private:
  std::vector<std::pair<std::string, toml::source_region>> ladders_;  // check, its `mitigate`
  std::set<std::string> broken_notify_;  // [[notify]] names whose kind is unknown
  // Journal checks: their table and their `identifier` key, if any (for provenance()).
  std::map<std::string, std::pair<toml::source_region, std::optional<toml::source_region>>>
      journal_sources_;
  std::string file_;
  std::vector<ConfigError> errors_;
};

std::string default_hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

}  // namespace

LoadResult parse_config(std::string_view text, const std::string& path) {
  LoadResult result;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& e) {
    const auto& r = e.source();
    result.errors.push_back(ConfigError{
        SourcePos{path, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)},
        "syntax error: " + std::string(e.description())});
    return result;
  }
  Validator v(path);
  Config cfg = v.document(root);
  result.errors = v.take_errors();
  std::stable_sort(
      result.errors.begin(), result.errors.end(), [](const ConfigError& a, const ConfigError& b) {
        return std::tie(a.where.line, a.where.column) < std::tie(b.where.line, b.where.column);
      });
  if (result.errors.empty()) {
    cfg.path = path;
    if (cfg.agent.hostname.empty()) cfg.agent.hostname = default_hostname();
    result.config = std::move(cfg);
  }
  return result;
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back(ConfigError{
        SourcePos{path, 0, 0}, "cannot read config file: " + std::string(std::strerror(errno))});
    return r;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return parse_config(buf.str(), path);
}

}  // namespace vigil
