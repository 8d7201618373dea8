// The config of the notifier kinds: each one's own keys of a [[notify]] table (its URL or
// URLs, its secret, its ids; the keys every notifier takes are read by
// agent/config/notify.cpp), and their registration.
#include "notify/config.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "agent/config/reader.h"
#include "agent/config/values.h"

namespace vigil {

namespace {

using config_internal::ConfigReader;
using config_internal::header_name_ok;
using config_internal::header_safe;
using config_internal::iequals;
using config_internal::notify_name_ok;
using config_internal::notify_url;
using config_internal::read_required_secret;
using config_internal::read_secret;
using config_internal::type_name;

// Why 10s to 1h: Prometheus re-sends every minute; faster than 10s is load on the cluster
// without news; slower than 1h, an Alertmanager that restarted (alerts live in its memory)
// would not show a firing incident again for too long.
constexpr Duration kMinResend{10'000};
constexpr Duration kMaxResend{3'600'000};
// Why at least 1m: a status page or a reminder more often than that is noise to its readers.
constexpr Duration kMinUpdate{60'000};

// The one `url` of a kind other than alertmanager. `fallback`: the kind's default, or ""
// when the URL is required (then `missing` says what it is). `endpoint` as notify_url's.
void one_url(ConfigReader& r, const toml::table& t, NotifyConfig& n, std::string_view fallback,
             std::string_view missing, std::string_view endpoint, const std::string& where) {
  if (t.get("urls") != nullptr) return;  // reported as a key of another kind
  const toml::node* un = t.get("url");
  if (un == nullptr) {
    if (!fallback.empty()) {
      n.urls = {std::string(fallback)};
    } else {
      r.error(t.source(), where + "missing required key 'url' (" + std::string(missing) + ")");
    }
    return;
  }
  if (auto u = r.get_string(t, "url", where)) {
    if (notify_url(r, *un, *u, "url", endpoint, where)) n.urls = {*u};
  }
}

void update_every(ConfigReader& r, const toml::table& t, NotifyConfig& n,
                  const std::string& where) {
  if (auto d = r.get_duration(t, "update_every", kMinUpdate, where)) n.update_every = *d;
}

// kind = "alertmanager": every peer of the cluster, the resend period and the heartbeat alert.
void alertmanager(ConfigReader& r, const toml::table& t, NotifyConfig& n,
                  const std::string& where) {
  if (const toml::node* un = t.get("urls"); un == nullptr) {
    // A `url` was reported as the wrong key already; one error is enough.
    if (t.get("url") == nullptr) {
      r.error(t.source(), where +
                              "missing required key 'urls' (every peer of the Alertmanager "
                              "cluster, e.g. urls = [\"http://am1:9093\", \"http://am2:9093\"])");
    }
  } else {
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
  }
  if (auto d = r.get_duration_max(t, "resend_every", kMinResend, kMaxResend, where)) {
    n.resend_every = *d;
  }
  if (auto b = r.get_bool(t, "heartbeat", where)) n.heartbeat = *b;
}

// kind = "pagerduty": the Events API v2 and the integration's routing key.
void pagerduty(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  one_url(r, t, n, "https://events.pagerduty.com", "", "/v2/enqueue", where);
  if (auto s = read_required_secret(r, t, "routing_key",
                                    "the integration key of the PagerDuty service", where)) {
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
  }
}

// kind = "oncall": a Grafana OnCall integration's URL (the secret is in it).
void oncall(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  one_url(r, t, n, "", "the URL of the OnCall integration, of type \"Formatted webhook\"", "",
          where);
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

// kind = "statuspage": the API key, the page and its components, and how often it is updated.
void statuspage(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  one_url(r, t, n, "https://api.statuspage.io", "", "/v1", where);
  if (auto s = read_required_secret(r, t, "api_key", "the Statuspage API key", where)) {
    if (header_safe(r, *s, where)) {
      n.secret = std::move(s->value);
      n.secret_file = std::move(s->file);
    }
  }
  statuspage_ids(r, t, n, where);
  update_every(r, t, n, where);
}

// webhook: the optional HMAC signature and extra headers.
void webhook_signing(ConfigReader& r, const toml::table& t, NotifyConfig& n,
                     const std::string& where) {
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

// kind = "webhook": any receiver that takes a JSON POST.
void webhook(ConfigReader& r, const toml::table& t, NotifyConfig& n, const std::string& where) {
  one_url(r, t, n, "", "the URL to post pages to", "", where);
  webhook_signing(r, t, n, where);
  update_every(r, t, n, where);
}

}  // namespace

void register_notifier_config(ConfigKinds& kinds) {
  // Fields left out keep kinds.h's defaults: SEV3 and up, 60 pages a minute.
  kinds.notifiers.push_back(NotifierKindInfo{
      .name = "alertmanager",
      .kind = NotifierKind::alertmanager,
      .keys = {"urls", "resend_every", "heartbeat"},
      .misplaced_hint = {{"urls", " (the peers of a cluster): kind {kind} takes one 'url'"}},
      .refused = {{"url",
                   "'url' is not for kind alertmanager: list every peer of the cluster in "
                   "'urls', e.g. urls = [\"http://am1:9093\", \"http://am2:9093\"]"}},
      // Alertmanager deduplicates and groups by itself and takes thousands of alerts a second;
      // a limit of 60 would hold a burst of per-address incidents back for minutes.
      .max_per_minute = 6'000,
      .parse = alertmanager,
  });
  kinds.notifiers.push_back(NotifierKindInfo{
      .name = "pagerduty",
      .kind = NotifierKind::pagerduty,
      .keys = {"url", "routing_key", "routing_key_file"},
      .parse = pagerduty,
  });
  kinds.notifiers.push_back(NotifierKindInfo{
      .name = "oncall",
      .kind = NotifierKind::oncall,
      .keys = {"url"},
      .parse = oncall,
  });
  kinds.notifiers.push_back(NotifierKindInfo{
      .name = "statuspage",
      .kind = NotifierKind::statuspage,
      .keys = {"url", "api_key", "api_key_file", "page_id", "component_ids", "update_every"},
      // Why SEV1: a status page is read by customers; it tells of outages, not of every
      // degraded check.
      .severity = Severity::sev1,
      .parse = statuspage,
  });
  kinds.notifiers.push_back(NotifierKindInfo{
      .name = "webhook",
      .kind = NotifierKind::webhook,
      .keys = {"url", "update_every", "hmac_key", "hmac_key_file", "signature_header", "headers"},
      .fallback_for = "a chat tool or a custom receiver",
      .parse = webhook,
  });
}

}  // namespace vigil
