// [[check]] tables: the keys every check takes (timing, streaks, latency, severity, routing,
// flap detection, the ladder); each probe kind (kinds.h, registered by probes/config.cpp) names
// the keys it takes, so a typo is an error, and parses its own.
#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "agent/config/kinds.h"
#include "agent/config/reader.h"
#include "agent/config/sections.h"

namespace vigil::config_internal {

namespace {

// Why 100ms: a tighter loop measures the agent rather than the service, and hammers it.
constexpr Duration kMinInterval{100};
// Why 10: more re-probes than that is a slow check, not a confirmation.
constexpr int kMaxConfirm = 10;
constexpr int kMaxStreak = 1000;

// The keys a check of this probe takes: those every check takes around the probe's own, in the
// order "did you mean" prefers them.
std::vector<std::string_view> check_keys_of(const ProbeKind& kind) {
  const bool timed = kind.timing == ProbeTiming::request;
  std::vector<std::string_view> keys{"name", "probe", "interval"};
  if (timed) keys.push_back("timeout");
  keys.insert(keys.end(), {"fail_after", "recover_after"});
  if (timed)
    keys.insert(keys.end(), {"confirm", "confirm_interval", "latency_warn", "latency_crit"});
  keys.push_back("severity");
  keys.insert(keys.end(), kind.keys.begin(), kind.keys.end());
  keys.insert(keys.end(), {"service", "team", "flap_window", "flap_low", "flap_high", "mitigate"});
  return keys;
}

void severity(ConfigReader& r, const toml::node& node, SeverityRules& rules,
              const std::string& where) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), where +
                               "'severity' must be a table, e.g. severity = { http_5xx = "
                               "\"SEV1\", latency_warn = \"SEV3\" }");
    return;
  }
  for (auto&& [key, value] : *t) {
    const std::string_view k = key.str();
    const std::string what = where + "severity." + std::string(k);
    if (k == "latency_warn") {
      if (auto s = r.get_severity(value, what)) rules.latency_warn = *s;
    } else if (k == "latency_crit") {
      if (auto s = r.get_severity(value, what)) rules.latency_crit = *s;
    } else if (auto kind = parse_failure_kind(k)) {
      if (auto s = r.get_severity(value, what)) rules.set(*kind, *s);
    } else {
      r.error(key.source(), where + "unknown severity rule '" + std::string(k) +
                                "' (known: refused, timeout, reset, dns, tls, protocol, "
                                "http_5xx, http_4xx, http_status, body, error, failed, inactive, "
                                "restart_loop, start_limit, not_found, match, latency_warn, "
                                "latency_crit)");
    }
  }
}

// service / team (routing and correlation), flap detection and the ladder.
void routing(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where,
             CheckSources& sources) {
  for (const char* key : {"service", "team"}) {
    if (auto v = r.get_string(t, key, where)) {
      if (!team_name_ok(*v)) {
        r.error(t.get(key)->source(), where + "'" + key + "' \"" + *v +
                                          "\" must be 1-64 letters, digits, '-', '_' or '.'");
      } else {
        (std::string_view(key) == "service" ? c.service : c.team) = *v;
      }
    }
  }
  if (auto v = r.get_int(t, "flap_window", 4, 64, where)) c.flap.window = *v;
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
      r.error(n->source(), where + "'" + key +
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
    r.error(n != nullptr ? n->source() : t.source(),
            where + "'flap_low' (" + fraction(c.flap.low) + given("flap_low") +
                " must be below 'flap_high' (" + fraction(c.flap.high) + given("flap_high") +
                ": the gap between them is the hysteresis");
  }
  if (const toml::node* m = t.get("mitigate")) {
    c.mitigate = r.string_list(t, "mitigate", "", where);
    sources.ladders.push_back({c.name, m->source()});
  }
}

void check(ConfigReader& r, const toml::table& t, const ConfigKinds& kinds, CheckConfig& c,
           std::map<std::string, SourcePos>& names, CheckSources& sources) {
  c.where = r.pos(t.source());
  std::string where = "check: ";
  const toml::node* name_node = t.get("name");
  if (name_node == nullptr) {
    r.error(t.source(), "check: missing required key 'name'");
  } else if (auto n = r.get_string(t, "name", where)) {
    const bool valid = !n->empty() && n->size() <= 64 &&
                       std::isalnum(static_cast<unsigned char>(n->front())) &&
                       std::all_of(n->begin(), n->end(), [](unsigned char ch) {
                         return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.';
                       });
    if (!valid) {
      r.error(name_node->source(), "check: name \"" + *n +
                                       "\" must be 1-64 letters, digits, '-', '_' or '.', "
                                       "starting with a letter or digit");
    }
    where = "check '" + *n + "': ";
    auto [it, inserted] = names.emplace(*n, r.pos(name_node->source()));
    if (!inserted) {
      r.error(name_node->source(), "duplicate check name '" + *n + "' (first defined at " +
                                       position_text(it->second) + ")");
    }
    c.name = *n;
  }

  const toml::node* probe_node = t.get("probe");
  const ProbeKind* kind = nullptr;
  if (probe_node == nullptr) {
    r.error(t.source(), where + "missing required key 'probe' (e.g. probe = \"http\")");
  } else if (auto p = r.get_string(t, "probe", where)) {
    c.probe = *p;
    kind = kinds.probe(*p);
    if (kind == nullptr) {
      r.error(probe_node->source(), where + "unknown probe \"" + *p + "\" (known: " +
                                        join_names(kinds.probe_names(), ", ", ", ", "\"") + ")");
    }
  }
  if (kind != nullptr) r.check_keys(t, check_keys_of(*kind), where);

  const auto interval = r.get_duration(t, "interval", kMinInterval, where);
  if (interval) c.interval = *interval;
  const auto timeout = r.get_duration(t, "timeout", Duration(1), where);
  // Default timeout: 5 s, but never longer than the interval so runs do not pile up.
  c.timeout = timeout ? *timeout : std::min(Duration(5'000), c.interval);
  if (timeout && *timeout > c.interval) {
    r.error(t.get("timeout")->source(),
            where + "'timeout' (" + format_duration(*timeout) + ") must not exceed 'interval' (" +
                format_duration(c.interval) + (interval ? ")" : ", the default)"));
  }
  if (auto v = r.get_int(t, "fail_after", 1, kMaxStreak, where)) c.fail_after = *v;
  if (auto v = r.get_int(t, "recover_after", 1, kMaxStreak, where)) c.recover_after = *v;
  if (auto v = r.get_int(t, "confirm", 0, kMaxConfirm, where)) c.confirm = *v;
  if (auto v = r.get_duration(t, "confirm_interval", Duration(10), where)) c.confirm_interval = *v;
  c.latency_warn = r.get_duration(t, "latency_warn", Duration(1), where);
  c.latency_crit = r.get_duration(t, "latency_crit", Duration(1), where);
  if (c.latency_warn && c.latency_crit && *c.latency_warn >= *c.latency_crit) {
    r.error(t.get("latency_warn")->source(),
            where + "'latency_warn' (" + format_duration(*c.latency_warn) +
                ") must be below 'latency_crit' (" + format_duration(*c.latency_crit) + ")");
  }
  for (const char* key : {"latency_warn", "latency_crit"}) {
    if (kind == nullptr || kind->timing != ProbeTiming::request) break;
    const auto& v = std::string_view(key) == "latency_warn" ? c.latency_warn : c.latency_crit;
    if (v && *v >= c.timeout) {
      r.error(t.get(key)->source(), where + "'" + key + "' (" + format_duration(*v) +
                                        ") is not below 'timeout' (" + format_duration(c.timeout) +
                                        "): it could never fire");
    }
  }
  if (const toml::node* s = t.get("severity")) severity(r, *s, c.severity, where);
  routing(r, t, c, where, sources);
  if (kind != nullptr && kind->parse != nullptr) kind->parse(r, t, c, where, sources);
}

}  // namespace

void parse_checks(ConfigReader& r, const toml::node& node, const ConfigKinds& kinds,
                  std::vector<CheckConfig>& out, CheckSources& sources) {
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.error(node.source(), "'check' must be an array of tables: write [[check]]");
    return;
  }
  std::map<std::string, SourcePos> names;
  for (const toml::node& n : *arr) {
    CheckConfig c;
    check(r, *n.as_table(), kinds, c, names, sources);
    out.push_back(std::move(c));
  }
}

}  // namespace vigil::config_internal
