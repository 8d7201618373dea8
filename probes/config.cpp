// The config of the probe kinds (http, unit; journal in journal_config.cpp): each one's keys,
// parsed into its settings, and their registration for the config reader (agent/config/kinds.h).
#include "probes/config.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <sstream>

#include "agent/config/reader.h"
#include "agent/sys/http.h"

namespace vigil {

namespace {

using config_internal::ConfigReader;
using config_internal::type_name;
using config_internal::UnitNamePatterns;

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

// probe = "http"; its `unit` is the unit serving the endpoint (the owner a restart aims at).
void http(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where,
          CheckSources&) {
  if (t.get("unit") != nullptr) {
    if (auto u = r.get_string(t, "unit", where)) {
      r.unit_names(t, {*u}, where, UnitNamePatterns::no);
      c.owner_unit = *u;
    }
  }
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

// probe = "unit": the units and the state they should be in.
void unit(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where,
          CheckSources&) {
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

}  // namespace

void register_probe_config(ConfigKinds& kinds) {
  kinds.probes.push_back(ProbeKind{
      .name = "http",
      .timing = ProbeTiming::request,
      .keys = {"url", "method", "expect_status", "body_contains", "body_regex", "headers",
               "verify_tls", "unit"},
      .parse = http,
  });
  kinds.probes.push_back(ProbeKind{
      .name = "unit",
      .timing = ProbeTiming::none,
      .keys = {"unit", "units", "expect", "restart_loop_count", "restart_loop_window"},
      .parse = unit,
  });
  kinds.probes.push_back(journal_probe_config());
}

}  // namespace vigil
