// [[check]] tables: the keys every check takes (timing, streaks, latency, severity, routing,
// flap detection, the ladder) and those of the http and unit probes; the journal probe's keys
// are in journal.cpp. Each probe names the keys it takes, so a typo is an error.
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <memory>
#include <sstream>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/sys/http.h"

namespace vigil::config_internal {

namespace {

// Why 100ms: a tighter loop measures the agent rather than the service, and hammers it.
constexpr Duration kMinInterval{100};
// Why 10: more re-probes than that is a slow check, not a confirmation.
constexpr int kMaxConfirm = 10;
constexpr int kMaxStreak = 1000;

// One item of `expect_status`: 503, "503", "2xx" or "200-399".
void status_item(ConfigReader& r, const toml::node& n, std::vector<StatusRange>& out,
                 const std::string& where) {
  auto valid = [](long long c) { return c >= 100 && c <= 599; };
  if (const auto* i = n.as_integer()) {
    if (!valid(i->get())) {
      r.error(n.source(), where + "'expect_status': " + std::to_string(i->get()) +
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
    r.error(n.source(), where + "'expect_status': \"" + v +
                            "\" is not a status code, a class like \"2xx\" or a range like "
                            "\"200-399\"");
    return;
  }
  r.error(n.source(), where + "'expect_status' items must be integers or strings, not " +
                          std::string(type_name(n)));
}

void http(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where) {
  HttpSettings h;
  const toml::node* url = t.get("url");
  if (url == nullptr) {
    r.error(t.source(), where + "missing required key 'url' for probe \"http\"");
  } else if (auto u = r.get_string(t, "url", where)) {
    if (auto problem = sys::validate_http_url(*u)) {
      r.error(url->source(), where + "'url' \"" + *u + "\": " + *problem);
    } else {
      h.url = *u;
    }
  }
  if (auto m = r.get_string(t, "method", where)) {
    if (*m == "GET") {
      h.method = HttpMethod::get;
    } else if (*m == "HEAD") {
      h.method = HttpMethod::head;
    } else {
      r.error(t.get("method")->source(),
              where + "'method' must be \"GET\" or \"HEAD\", not \"" + *m + "\"");
    }
  }
  if (const toml::node* es = t.get("expect_status")) {
    std::vector<StatusRange> ranges;
    if (const auto* arr = es->as_array()) {
      if (arr->empty()) r.error(es->source(), where + "'expect_status' must not be empty");
      for (const toml::node& item : *arr) status_item(r, item, ranges, where);
    } else {
      status_item(r, *es, ranges, where);
    }
    if (!ranges.empty()) h.expect_status = std::move(ranges);
  }
  if (auto s = r.get_string(t, "body_contains", where)) h.body_contains = *s;
  if (auto s = r.get_string(t, "body_regex", where)) {
    re2::RE2::Options opts;
    opts.set_log_errors(false);
    auto re = std::make_shared<re2::RE2>(*s, opts);
    if (!re->ok()) {
      r.error(t.get("body_regex")->source(),
              where + "'body_regex' is not a valid RE2 pattern: " + re->error());
    } else {
      h.body_regex = *s;
      h.body_regex_compiled = std::move(re);
    }
  }
  if (h.method == HttpMethod::head && (!h.body_contains.empty() || !h.body_regex.empty())) {
    const toml::node* body_key = t.get(h.body_contains.empty() ? "body_regex" : "body_contains");
    r.error(body_key->source(), where +
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
          r.error(key.source(), where + "header name '" + std::string(name) + "' is not valid");
          continue;
        }
        const auto* v = value.as_string();
        if (v == nullptr) {
          r.error(value.source(), where + "header '" + std::string(name) +
                                      "' must be a string, not " + std::string(type_name(value)));
          continue;
        }
        if (v->get().find_first_of("\r\n") != std::string::npos) {
          r.error(value.source(),
                  where + "header '" + std::string(name) + "' must not contain a line break");
          continue;
        }
        h.headers.emplace_back(std::string(name), v->get());
      }
    } else {
      r.error(hn->source(), where +
                                "'headers' must be a table, e.g. headers = { Host = "
                                "\"example.org\" }");
    }
  }
  if (auto b = r.get_bool(t, "verify_tls", where)) h.verify_tls = *b;
  c.settings = std::move(h);
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

// service / team (routing and correlation), flap detection, and an HTTP check's owner unit.
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
  if (c.probe == "http" && t.get("unit") != nullptr) {
    if (auto u = r.get_string(t, "unit", where)) {
      r.unit_names(t, {*u}, where, UnitNamePatterns::no);
      c.owner_unit = *u;
    }
  }
}

void unit(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where) {
  UnitSettings u;
  u.units = r.string_list(t, "unit", "units", where);
  if (u.units.empty() && t.get("unit") == nullptr && t.get("units") == nullptr) {
    r.error(t.source(), where + "missing required key 'unit' (e.g. unit = \"nginx.service\")");
  }
  r.unit_names(t, u.units, where, UnitNamePatterns::globs);
  if (auto e = r.get_string(t, "expect", where)) {
    if (*e == "active") {
      u.expect = UnitExpect::active;
    } else if (*e == "inactive") {
      u.expect = UnitExpect::inactive;
    } else {
      r.error(t.get("expect")->source(),
              where + "'expect' must be \"active\" or \"inactive\", not \"" + *e + "\"");
    }
  }
  if (auto v = r.get_int(t, "restart_loop_count", 2, 1000, where)) u.restart_loop_count = *v;
  if (auto v = r.get_duration(t, "restart_loop_window", Duration(1'000), where)) {
    u.restart_loop_window = *v;
  }
  c.settings = std::move(u);
}

void check(ConfigReader& r, const toml::table& t, CheckConfig& c,
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
  std::string probe;
  if (probe_node == nullptr) {
    r.error(t.source(), where + "missing required key 'probe' (e.g. probe = \"http\")");
  } else if (auto p = r.get_string(t, "probe", where)) {
    probe = *p;
    if (probe != "http" && probe != "unit" && probe != "journal") {
      r.error(probe_node->source(),
              where + "unknown probe \"" + probe + "\" (known: \"http\", \"unit\", \"journal\")");
    }
  }
  c.probe = probe;

  const bool is_http = probe == "http";
  if (is_http) {
    r.check_keys(
        t, {"name",          "probe",       "interval",         "timeout",       "fail_after",
            "recover_after", "confirm",     "confirm_interval", "latency_warn",  "latency_crit",
            "severity",      "url",         "method",           "expect_status", "body_contains",
            "body_regex",    "headers",     "verify_tls",       "unit",          "service",
            "team",          "flap_window", "flap_low",         "flap_high",     "mitigate"},
        where);
  } else if (probe == "unit") {
    r.check_keys(t,
                 {"name", "probe", "interval", "fail_after", "recover_after", "severity", "unit",
                  "units", "expect", "restart_loop_count", "restart_loop_window", "service", "team",
                  "flap_window", "flap_low", "flap_high", "mitigate"},
                 where);
  } else if (probe == "journal") {
    r.check_keys(t,
                 {"name", "probe",       "interval",   "fail_after",  "recover_after", "severity",
                  "unit", "units",       "identifier", "identifiers", "comm",          "exe",
                  "uid",  "transport",   "priority",   "pattern",     "patterns",      "ignore",
                  "key",  "count",       "window",     "max_keys",    "catch_up",      "service",
                  "team", "flap_window", "flap_low",   "flap_high",   "mitigate"},
                 where);
  }

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
    if (!is_http) break;
    const auto& v = std::string_view(key) == "latency_warn" ? c.latency_warn : c.latency_crit;
    if (v && *v >= c.timeout) {
      r.error(t.get(key)->source(), where + "'" + key + "' (" + format_duration(*v) +
                                        ") is not below 'timeout' (" + format_duration(c.timeout) +
                                        "): it could never fire");
    }
  }
  if (const toml::node* s = t.get("severity")) severity(r, *s, c.severity, where);
  routing(r, t, c, where, sources);
  if (is_http) http(r, t, c, where);
  if (probe == "unit") unit(r, t, c, where);
  if (probe == "journal") parse_journal(r, t, c, where, sources);
}

}  // namespace

void parse_checks(ConfigReader& r, const toml::node& node, std::vector<CheckConfig>& out,
                  CheckSources& sources) {
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.error(node.source(), "'check' must be an array of tables: write [[check]]");
    return;
  }
  std::map<std::string, SourcePos> names;
  for (const toml::node& n : *arr) {
    CheckConfig c;
    check(r, *n.as_table(), c, names, sources);
    out.push_back(std::move(c));
  }
}

}  // namespace vigil::config_internal
