// Page <-> one JSON object: the outbox's record of a queued page (notify/outbox.h).
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "agent/core/json.h"
#include "agent/incidents/timeline.h"
#include "notify/page.h"

namespace vigil {
namespace {

using Json = nlohmann::json;
// Insertion order: the outbox file is read by people too (`tail`, `grep`), seq and target first.
using OrderedJson = nlohmann::ordered_json;

// Why 64: error messages quote the offending value; a hostile 10 kB value must not flood the log.
constexpr std::size_t kMaxQuoted = 64;

// Own copy of the action names (the public to_string/parse_page_action live in page.cpp): the
// outbox format must not change if display names ever do. Same names, same order as PageAction.
constexpr std::array<std::pair<PageAction, const char*>, 6> kActions{{
    {PageAction::trigger, "trigger"},
    {PageAction::update, "update"},
    {PageAction::acknowledge, "acknowledge"},
    {PageAction::resolve, "resolve"},
    {PageAction::change, "change"},
    {PageAction::heartbeat, "heartbeat"},
}};

const char* action_name(PageAction a) {
  for (const auto& [action, name] : kActions) {
    if (action == a) return name;
  }
  return "trigger";  // unreachable: every enumerator is in kActions
}

std::optional<PageAction> action_from(const std::string& text) {
  for (const auto& [action, name] : kActions) {
    if (text == name) return action;
  }
  return std::nullopt;
}

std::string quoted(const std::string& text) {
  // Dumped, so control characters and invalid UTF-8 in a corrupt record stay printable.
  const std::string cut = text.size() > kMaxQuoted ? text.substr(0, kMaxQuoted) + "..." : text;
  return Json(cut).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// Typed getters: absent keeps the default, present with the wrong JSON type is an error (the
// first one found is reported).
class Reader {
 public:
  explicit Reader(const Json& j) : j_(j) {}

  const Json* find(const char* name) const {
    const auto it = j_.find(name);
    return it == j_.end() ? nullptr : &*it;
  }
  const std::string* string(const char* name) {
    const Json* v = find(name);
    if (v == nullptr) return nullptr;
    if (!v->is_string()) {
      fail(std::string("'") + name + "' must be a string");
      return nullptr;
    }
    return &v->get_ref<const std::string&>();
  }
  void text(const char* name, std::string& out) {
    if (const std::string* s = string(name)) out = *s;
  }
  void boolean(const char* name, bool& out) {
    const Json* v = find(name);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(std::string("'") + name + "' must be true or false");
    out = v->get<bool>();
  }
  void seq(const char* name, std::uint64_t& out) {
    const Json* v = find(name);
    if (v == nullptr) return;
    if (v->is_number_unsigned()) {
      out = v->get<std::uint64_t>();
      return;
    }
    fail(std::string("'") + name + "' must be a non-negative integer");
  }
  std::optional<Severity> severity(const char* name) {
    const std::string* s = string(name);
    if (s == nullptr) return std::nullopt;
    std::optional<Severity> out = parse_severity(*s);
    if (!out) fail(std::string("'") + name + "' must be SEV1..SEV3 (got " + quoted(*s) + ")");
    return out;
  }
  std::optional<TimePoint> time(const char* name) {
    const std::string* s = string(name);
    if (s == nullptr) return std::nullopt;
    std::optional<TimePoint> out = parse_time(*s);
    if (!out) {
      fail(std::string("'") + name + "' must be an RFC 3339 UTC time (got " + quoted(*s) + ")");
    }
    return out;
  }
  // null counts as absent for the optional fields (previous, resolved).
  bool null(const char* name) const {
    const Json* v = find(name);
    return v != nullptr && v->is_null();
  }
  void strings(const char* name, std::vector<std::string>& out) {
    const Json* v = find(name);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(std::string("'") + name + "' must be an array of strings");
    for (const Json& item : *v) {
      if (!item.is_string()) return fail(std::string("'") + name + "' must be an array of strings");
      out.push_back(item.get<std::string>());
    }
  }
  void string_map(const char* name, std::map<std::string, std::string>& out) {
    const Json* v = find(name);
    if (v == nullptr) return;
    if (!v->is_object()) return fail(std::string("'") + name + "' must be an object of strings");
    for (const auto& [key, value] : v->items()) {
      if (!value.is_string()) {
        return fail(std::string("'") + name + "' must be an object of strings (" + quoted(key) +
                    " is not)");
      }
      out[key] = value.get<std::string>();
    }
  }

  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  const std::string& error() const { return error_; }

 private:
  const Json& j_;
  std::string error_;
};

Error page_error(const std::string& why) { return make_error("page: " + why); }

}  // namespace

std::string page_to_json(const Page& p) {
  OrderedJson j;
  j["seq"] = p.seq;
  j["target"] = p.target;
  j["notifier"] = p.notifier;
  j["action"] = action_name(p.action);
  j["incident"] = p.incident;
  j["host"] = p.host;
  j["title"] = p.title;
  j["summary"] = p.summary;
  j["service"] = p.service;
  j["team"] = p.team;
  j["check"] = p.check;
  j["severity"] = std::string(to_string(p.severity));
  if (p.previous) j["previous"] = std::string(to_string(*p.previous));
  j["state"] = p.state;
  j["acknowledged"] = p.acknowledged;
  j["dry_run"] = p.dry_run;
  j["text"] = p.text;
  j["evidence"] = p.evidence;
  j["started"] = format_time(p.started);
  j["at"] = format_time(p.at);
  if (p.resolved) j["resolved"] = format_time(*p.resolved);
  j["details"] = p.details;
  // replace: evidence holds journal lines, any bytes; invalid UTF-8 becomes U+FFFD instead of
  // throwing. Control characters ('\n' too) are escaped: always exactly one line.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<Page> page_from_json(std::string_view text) {
  Result<Json> parsed = parse_json(text);
  if (!parsed) return page_error(parsed.error().message);
  const Json& j = *parsed;
  if (!j.is_object()) return page_error("not a JSON object");
  Reader r(j);
  Page p;

  // Required: a default would silently change what the page means (a resolve read as a
  // trigger, a SEV1 read as a SEV3). Every other field defaults like Page's.
  if (r.find("action") == nullptr) return page_error("missing 'action'");
  if (const std::string* a = r.string("action")) {
    const std::optional<PageAction> action = action_from(*a);
    if (!action) {
      r.fail("'action' must be trigger, update, acknowledge, resolve, change or heartbeat (got " +
             quoted(*a) + ")");
    } else {
      p.action = *action;
    }
  }
  if (r.find("severity") == nullptr) return page_error("missing 'severity'");
  if (const std::optional<Severity> s = r.severity("severity")) p.severity = *s;

  r.seq("seq", p.seq);
  r.text("target", p.target);
  r.text("notifier", p.notifier);
  r.text("incident", p.incident);
  r.text("host", p.host);
  r.text("title", p.title);
  r.text("summary", p.summary);
  r.text("service", p.service);
  r.text("team", p.team);
  r.text("check", p.check);
  if (!r.null("previous")) p.previous = r.severity("previous");
  r.text("state", p.state);
  r.boolean("acknowledged", p.acknowledged);
  r.boolean("dry_run", p.dry_run);
  r.text("text", p.text);
  r.strings("evidence", p.evidence);
  if (const std::optional<TimePoint> t = r.time("started")) p.started = *t;
  if (const std::optional<TimePoint> t = r.time("at")) p.at = *t;
  if (!r.null("resolved")) p.resolved = r.time("resolved");
  r.string_map("details", p.details);
  if (!r.error().empty()) return page_error(r.error());
  return p;
}

}  // namespace vigil
