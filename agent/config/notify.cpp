// [paging] and the [[notify]] tables: the keys every notifier takes, the keys of each kind
// (a key of another kind says which kind it is for), URLs, statuspage ids, webhook headers.
// Secrets are read in secret.cpp; [[escalation]] chains over these in escalation.cpp.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/sys/http.h"

namespace vigil::config_internal {

namespace {

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

// An http(s) URL of a notifier. `endpoint`: the path vigil appends to this base URL, which
// the URL must not already end with ("" when the URL is used as is).
bool notify_url(ConfigReader& r, const toml::node& n, const std::string& url, std::string_view key,
                std::string_view endpoint, const std::string& where) {
  const std::string what = where + "'" + std::string(key) + "' \"" + url + "\": ";
  if (auto problem = sys::validate_http_url(url)) {
    r.error(n.source(), what + *problem);
    return false;
  }
  if (!endpoint.empty() && url_path(url).ends_with(endpoint)) {
    r.error(n.source(),
            what + "give the base URL, without " + std::string(endpoint) + " (vigil adds it)");
    return false;
  }
  return true;
}

// Reports every key of a [[notify]] table that its kind does not take: a key of another kind
// says which kind it is for; an unknown one gets a suggestion among this kind's keys.
void notify_keys(ConfigReader& r, const toml::table& t, NotifierKind kind,
                 const std::string& where) {
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
      r.unknown_key(key, allowed, where);
    } else if (k == "url") {
      r.error(key.source(), where +
                                "'url' is not for kind alertmanager: list every peer of the "
                                "cluster in 'urls', e.g. urls = [\"http://am1:9093\", "
                                "\"http://am2:9093\"]");
    } else if (k == "urls") {
      r.error(key.source(), where +
                                "'urls' is only for kind alertmanager (the peers of a cluster): "
                                "kind " +
                                std::string(to_string(kind)) + " takes one 'url'");
    } else {
      r.error(key.source(), where + "'" + k + "' is only for " + kinds_text(it->kinds));
    }
  }
}

// `urls` (alertmanager: every peer) or `url` (the others), with each kind's default.
void notify_urls(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  if (n.kind == NotifierKind::alertmanager) {
    const toml::node* un = t.get("urls");
    if (un == nullptr) {
      // A `url` was reported as the wrong key already; one error is enough.
      if (t.get("url") == nullptr) {
        r.error(t.source(), where +
                                "missing required key 'urls' (every peer of the Alertmanager "
                                "cluster, e.g. urls = [\"http://am1:9093\", \"http://am2:9093\"])");
      }
      return;
    }
    if (const auto* arr = un->as_array(); arr != nullptr && arr->empty()) {
      r.error(un->source(), where + "'urls' must name at least one Alertmanager");
    }
    std::set<std::string> seen;
    for (auto& [url, item] : r.string_items(t, "urls", where)) {
      if (!notify_url(r, *item, url, "urls", "/api/v2/alerts", where)) continue;
      if (!seen.insert(url).second) {
        r.error(item->source(), where + "'urls' names \"" + url + "\" twice");
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
        r.error(t.source(), where +
                                "missing required key 'url' (the URL of the OnCall integration, "
                                "of type \"Formatted webhook\")");
        break;
      default:
        r.error(t.source(), where + "missing required key 'url' (the URL to post pages to)");
        break;
    }
    return;
  }
  if (auto u = r.get_string(t, "url", where)) {
    const std::string_view endpoint = n.kind == NotifierKind::pagerduty    ? "/v2/enqueue"
                                      : n.kind == NotifierKind::statuspage ? "/v1"
                                                                           : "";
    if (notify_url(r, *un, *u, "url", endpoint, where)) n.urls = {*u};
  }
}

// statuspage: the page and its components, ids that go into the API's URLs and body.
void statuspage_ids(ConfigReader& r, const toml::table& t, NotifyConfig& n,
                    const std::string& where) {
  const auto id_ok = [](std::string_view v) { return notify_name_ok(v); };
  if (const toml::node* p = t.get("page_id")) {
    if (auto v = r.get_string(t, "page_id", where)) {
      if (!id_ok(*v)) {
        r.error(p->source(), where + "'page_id' \"" + *v +
                                 "\" must be 1-64 letters, digits, '-' or '_' (it goes into the "
                                 "API's URL)");
      } else {
        n.page_id = *v;
      }
    }
  } else {
    r.error(t.source(), where +
                            "missing required key 'page_id' (the page's id, as in the API's "
                            "/v1/pages/PAGE_ID)");
  }
  for (auto& [id, item] : r.string_items(t, "component_ids", where)) {
    if (!id_ok(id)) {
      r.error(item->source(),
              where + "'component_ids': \"" + id + "\" must be 1-64 letters, digits, '-' or '_'");
    } else {
      n.component_ids.push_back(id);
    }
  }
}

// webhook: the optional HMAC signature and extra headers.
void webhook(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  const bool has_key = t.get("hmac_key") != nullptr || t.get("hmac_key_file") != nullptr;
  if (auto s = read_secret(r, t, "hmac_key", where)) {
    n.secret = std::move(s->value);
    n.secret_file = std::move(s->file);
  }
  if (const toml::node* sh = t.get("signature_header")) {
    if (auto v = r.get_string(t, "signature_header", where)) {
      if (!header_name_ok(*v)) {
        r.error(sh->source(),
                where + "'signature_header' \"" + *v + "\" is not a valid HTTP header name");
      } else if (!has_key) {
        r.error(sh->source(), where +
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
    r.error(hn->source(), where +
                              "'headers' must be a table, e.g. headers = { Authorization = "
                              "\"Bearer ...\" }");
    return;
  }
  for (auto&& [key, value] : *ht) {
    const std::string name(key.str());
    if (!header_name_ok(name)) {
      r.error(key.source(), where + "header name '" + name + "' is not valid");
      continue;
    }
    // vigil writes these itself: a second copy would make the request ambiguous.
    if (iequals(name, "Content-Type") || iequals(name, "Content-Length") ||
        (has_key && iequals(name, n.signature_header))) {
      r.error(key.source(), where + "header '" + name + "' is set by vigil");
      continue;
    }
    const auto* v = value.as_string();
    if (v == nullptr) {
      r.error(value.source(), where + "header '" + name + "' must be a string, not " +
                                  std::string(type_name(value)));
      continue;
    }
    // Values are not quoted in messages: they are often credentials.
    if (v->get().find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
      r.error(value.source(), where + "header '" + name + "' must not contain a line break");
      continue;
    }
    n.headers.emplace_back(name, v->get());
  }
}

// One [[notify]] table. False when its kind is unknown (nothing else can be checked).
bool notifier(ConfigReader& r, const toml::table& t, NotifyConfig& n,
              std::map<std::string, SourcePos>& names, std::set<std::string>& broken) {
  n.where = r.pos(t.source());
  std::string where = "notify: ";
  const toml::node* name_node = t.get("name");
  std::optional<std::string> name;
  if (name_node != nullptr) {
    name = r.get_string(t, "name", where);
    if (name && !notify_name_ok(*name)) {
      r.error(name_node->source(),
              "notify: name \"" + *name + "\" must be 1-64 letters, digits, '-' or '_'");
    }
    if (name) where = "notify '" + *name + "': ";
  }

  const toml::node* kind_node = t.get("kind");
  std::optional<NotifierKind> kind;
  if (kind_node == nullptr) {
    r.error(t.source(), where +
                            "missing required key 'kind' (alertmanager, pagerduty, oncall, "
                            "statuspage or webhook)");
  } else if (auto k = r.get_string(t, "kind", where)) {
    for (std::size_t i = 0; i < kNotifierKinds.size(); ++i) {
      if (kNotifierKinds[i] == *k) kind = static_cast<NotifierKind>(i);
    }
    if (!kind) {
      const std::string_view best = closest(*k, kNotifierKinds);
      r.error(
          kind_node->source(),
          where + "unknown kind \"" + *k + "\"" +
              (best.empty() ? std::string(" (known: alertmanager, pagerduty, oncall, statuspage, "
                                          "webhook; for a chat tool or a custom receiver: webhook)")
                            : " (did you mean \"" + std::string(best) + "\"?)"));
    }
  }
  if (!kind) {
    if (name) broken.insert(*name);
    return false;
  }
  n.kind = *kind;
  const std::string kind_name(to_string(n.kind));
  n.name = name.value_or(kind_name);
  where = "notify '" + n.name + "': ";

  // The second of two with one name is the error; its position is where the name comes from.
  const toml::node* named_at = name ? name_node : kind_node;
  auto [first, inserted] = names.emplace(n.name, r.pos(named_at->source()));
  if (!inserted) {
    r.error(named_at->source(),
            "duplicate notify name '" + n.name + "' (first defined at " +
                position_text(first->second) + ")" +
                (name ? std::string()
                      : ": the name defaults to the kind; give each one its own 'name'"));
  }

  notify_keys(r, t, n.kind, where);
  notify_urls(r, t, n, where);

  // Why SEV1 for a status page: it is read by customers; it tells of outages, not of every
  // degraded check. Everything else gets every incident by default.
  n.severity = n.kind == NotifierKind::statuspage ? Severity::sev1 : Severity::sev3;
  // Alertmanager deduplicates and groups by itself and takes thousands of alerts a second; a
  // limit of 60 would hold a burst of per-address incidents back for minutes.
  if (n.kind == NotifierKind::alertmanager) n.max_per_minute = 6'000;
  if (const toml::node* s = t.get("severity")) {
    if (auto sev = r.get_severity(*s, where + "'severity'")) n.severity = *sev;
  }
  if (const toml::node* tn = t.get("teams")) {
    const auto* arr = tn->as_array();
    if (arr != nullptr && arr->empty()) {
      r.error(tn->source(), where + "'teams' must not be empty (leave it out to page every team)");
    }
    for (auto& [team, item] : r.string_items(t, "teams", where)) {
      if (!team_name_ok(team)) {
        r.error(item->source(), where + "'teams': \"" + team +
                                    "\" must be 1-64 letters, digits, '-', '_' or '.', as a "
                                    "check's 'team'");
      } else {
        n.teams.push_back(team);
      }
    }
  }

  switch (n.kind) {
    case NotifierKind::alertmanager:
      if (auto d = r.get_duration_max(t, "resend_every", kMinResend, kMaxResend, where)) {
        n.resend_every = *d;
      }
      if (auto b = r.get_bool(t, "heartbeat", where)) n.heartbeat = *b;
      break;
    case NotifierKind::pagerduty:
      if (auto s = read_secret(r, t, "routing_key", where)) {
        const bool chars_ok = std::all_of(s->value.begin(), s->value.end(),
                                          [](unsigned char ch) { return std::isalnum(ch); });
        if (s->value.size() != 32 || !chars_ok) {
          r.error(s->node->source(),
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
        r.error(t.source(), where +
                                "missing required key 'routing_key_file' (or 'routing_key'): "
                                "the integration key of the PagerDuty service");
      }
      break;
    case NotifierKind::oncall:
      break;
    case NotifierKind::statuspage:
      if (auto s = read_secret(r, t, "api_key", where)) {
        if (header_safe(r, *s, where)) {
          n.secret = std::move(s->value);
          n.secret_file = std::move(s->file);
        }
      } else if (t.get("api_key") == nullptr && t.get("api_key_file") == nullptr) {
        r.error(t.source(), where +
                                "missing required key 'api_key_file' (or 'api_key'): the "
                                "Statuspage API key");
      }
      statuspage_ids(r, t, n, where);
      break;
    case NotifierKind::webhook:
      webhook(r, t, n, where);
      break;
  }
  if (n.kind == NotifierKind::statuspage || n.kind == NotifierKind::webhook) {
    if (auto d = r.get_duration(t, "update_every", kMinUpdate, where)) n.update_every = *d;
  }
  if (auto d = r.get_duration_max(t, "timeout", kMinNotifyTimeout, kMaxNotifyTimeout, where)) {
    n.timeout = *d;
  }
  if (auto v = r.get_int(t, "max_per_minute", 1, 10'000, where)) n.max_per_minute = *v;
  if (auto b = r.get_bool(t, "verify_tls", where)) n.verify_tls = *b;
  return true;
}

}  // namespace

std::set<std::string> parse_notifiers(ConfigReader& r, const toml::node& node,
                                      std::vector<NotifyConfig>& out) {
  std::set<std::string> broken;
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.error(node.source(), "'notify' must be an array of tables: write [[notify]]");
    return broken;
  }
  std::map<std::string, SourcePos> names;
  for (const toml::node& item : *arr) {
    NotifyConfig n;
    if (notifier(r, *item.as_table(), n, names, broken)) out.push_back(std::move(n));
  }
  return broken;
}

// [paging]: the outbox, the dead-man heartbeat and incident links.
void parse_paging(ConfigReader& r, const toml::node& node, PagingSettings& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'paging' must be a table: write [paging]");
    return;
  }
  const std::string where = "[paging]: ";
  r.check_keys(*t, {"outbox_max", "heartbeat_every", "heartbeat_url", "link_base"}, where);
  if (auto v = r.get_int(*t, "outbox_max", kMinOutbox, kMaxOutbox, where)) {
    out.outbox_max = static_cast<std::size_t>(*v);
  }
  if (auto d = r.get_duration(*t, "heartbeat_every", kMinHeartbeat, where)) {
    out.heartbeat_every = *d;
  }
  for (const char* key : {"heartbeat_url", "link_base"}) {
    if (auto u = r.get_string(*t, key, where)) {
      if (notify_url(r, *t->get(key), *u, key, "", where)) {
        (std::string_view(key) == "heartbeat_url" ? out.heartbeat_url : out.link_base) = *u;
      }
    }
  }
}

}  // namespace vigil::config_internal
