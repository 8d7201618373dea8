// [fleet] (docs/FLEET.md): the etcd cluster that keeps one budget for the automated actions of
// many hosts, and the check across sections that a capped action has a fleet to ask.
#include <algorithm>
#include <cctype>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/sys/http.h"

namespace vigil::config_internal {

namespace {

// Fleet names and host names become etcd key segments (/vigil/FLEET/slots/ACTION/HOST): no
// '/', nothing a human could misread in `etcdctl get --prefix`.
bool key_segment_ok(std::string_view v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

}  // namespace

void parse_fleet(ConfigReader& r, const toml::node& node, FleetSettings& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'fleet' must be a table: write [fleet]");
    return;
  }
  const std::string where = "[fleet]: ";
  r.check_keys(*t,
               {"name", "etcd", "lease_ttl", "timeout", "retry", "unreachable", "ca_file",
                "cert_file", "key_file"},
               where);
  if (auto n = r.get_string(*t, "name", where)) {
    if (key_segment_ok(*n)) {
      out.name = *n;
    } else {
      r.error(t->get("name")->source(),
              where +
                  "'name' must be 1-64 letters, digits, '-', '_' or '.' (it is part of the "
                  "etcd keys), not \"" +
                  *n + "\"");
    }
  } else if (t->get("name") == nullptr) {
    r.error(node.source(), where +
                               "needs a 'name' (e.g. name = \"web-eu\"): hosts share a "
                               "budget only when they name the same fleet");
  }
  const auto urls = r.string_items(*t, "etcd", where);
  if (t->get("etcd") != nullptr && urls.empty() && t->get("etcd")->as_array() != nullptr) {
    r.error(t->get("etcd")->source(),
            where +
                "'etcd' is empty: give the cluster's client URLs (e.g. etcd = "
                "[\"http://10.0.0.1:2379\"])");
  }
  if (t->get("etcd") == nullptr) {
    r.error(
        node.source(),
        where + "needs 'etcd', the cluster's client URLs (e.g. etcd = [\"http://10.0.0.1:2379\"])");
  }
  for (const auto& [url, n] : urls) {
    if (auto problem = sys::validate_http_url(url)) {
      r.error(n->source(), where + "'etcd' \"" + url + "\": " + *problem);
    } else if (url.find('?') != std::string::npos || url.find('#') != std::string::npos) {
      r.error(n->source(), where + "'etcd' \"" + url +
                               "\": give the client URL alone (vigil adds /v3/...), without a "
                               "query or fragment");
    } else {
      std::string base = url;
      while (base.ends_with('/')) base.pop_back();
      out.etcd.push_back(base);
    }
  }
  // The lease must outlive a few missed keep-alives (sent every third of it).
  if (auto d = r.get_duration_max(*t, "lease_ttl", Duration(5'000), Duration(3'600'000), where)) {
    out.lease_ttl = *d;
  }
  if (auto d = r.get_duration_max(*t, "timeout", Duration(100), Duration(60'000), where)) {
    out.timeout = *d;
  }
  if (auto d = r.get_duration_max(*t, "retry", Duration(1'000), Duration(3'600'000), where)) {
    out.retry = *d;
  }
  if (out.timeout * 3 > out.lease_ttl) {
    const toml::node* at = t->get("timeout") != nullptr ? t->get("timeout") : t->get("lease_ttl");
    r.error(at != nullptr ? at->source() : node.source(),
            where +
                "'timeout' must be at most a third of 'lease_ttl': a keep-alive that takes "
                "longer than that loses the lease");
  }
  if (auto u = r.get_string(*t, "unreachable", where)) {
    if (*u == "hold") {
      out.unreachable = FleetUnreachable::hold;
    } else if (*u == "act") {
      out.unreachable = FleetUnreachable::act;
    } else {
      r.error(t->get("unreachable")->source(),
              where +
                  "'unreachable' must be \"hold\" (capped actions wait while etcd cannot "
                  "be reached; the default) or \"act\", not \"" +
                  *u + "\"");
    }
  }
  for (const auto& [key, field] :
       {std::pair{"ca_file", &out.ca_file}, std::pair{"cert_file", &out.cert_file},
        std::pair{"key_file", &out.key_file}}) {
    if (auto f = r.get_string(*t, key, where)) {
      if (f->empty() || f->front() != '/') {
        r.error(t->get(key)->source(),
                where + "'" + key + "' must be an absolute path, not \"" + *f + "\"");
      } else {
        *field = *f;
      }
    }
  }
  if (t->get("cert_file") != nullptr && t->get("key_file") == nullptr) {
    r.error(t->get("cert_file")->source(),
            where + "'cert_file' needs 'key_file' (a client certificate and its key)");
  } else if (t->get("key_file") != nullptr && t->get("cert_file") == nullptr) {
    r.error(t->get("key_file")->source(),
            where + "'key_file' needs 'cert_file' (a client certificate and its key)");
  }
}

void check_fleet_caps(ConfigReader& r, const Config& cfg, const toml::table& root) {
  // A [fleet] that is there but wrong has its own errors; the caps are not worth more noise.
  if (root.get("fleet") != nullptr) return;
  const auto* actions = root.get("action") != nullptr ? root.get("action")->as_table() : nullptr;
  for (const auto& [ref, a] : cfg.actions) {
    if (!a.fleet_capped() || cfg.fleet.enabled()) continue;
    const toml::node* key = nullptr;
    if (actions != nullptr) {
      if (const auto* kind = actions->get(std::string(to_string(a.kind)))) {
        if (const auto* k = kind->as_table(); k != nullptr) {
          if (const auto* at = k->get(a.name); at != nullptr && at->as_table() != nullptr) {
            key = at->as_table()->get(a.fleet_max > 0 ? "fleet_max" : "fleet_max_percent");
          }
        }
      }
    }
    const std::string message =
        "[action." + std::string(to_string(a.kind)) + "." + a.name + "]: '" +
        (a.fleet_max > 0 ? "fleet_max" : "fleet_max_percent") +
        "' needs a [fleet] section with the etcd cluster that keeps the budget";
    if (key != nullptr) {
      r.error(key->source(), message);
    } else {
      r.error(toml::source_region{}, message);
    }
  }
}

}  // namespace vigil::config_internal
