#include "agent/incidents/timeline.h"
#include "agent/core/json.h"
#include "agent/core/text.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

namespace vigil {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
// Written in insertion order, so "at" and "type" come first: the files are read by people too
// (`tail -f`, `grep`), not only by load().
using OrderedJson = nlohmann::ordered_json;

// Why 128: ids are "YYYYMMDD-HHMMSS-<slug of at most 40>" plus a "-N" suffix, far below it, and
// far below NAME_MAX (255) with the ".jsonl" extension.
constexpr std::size_t kMaxIdLength = 128;

// Why 64: error messages quote the offending value; a hostile 10 kB value must not flood the log.
constexpr std::size_t kMaxQuoted = 64;

std::string in_quotes(std::string_view text) {
  std::string out = "\"";
  out += text.substr(0, kMaxQuoted);
  if (text.size() > kMaxQuoted) out += "...";
  out += '"';
  return out;
}

// The typed getters of from_json_line: absent is fine (the default stays), present with the
// wrong JSON type is an error.
class Reader {
 public:
  explicit Reader(const Json& j) : j_(j) {}

  // The string under `name`, or nullptr if absent; sets error() if it is not a string.
  const std::string* string(const char* name) {
    const auto it = j_.find(name);
    if (it == j_.end()) return nullptr;
    if (!it->is_string()) {
      fail(std::string("\"") + name + "\" is not a string");
      return nullptr;
    }
    return &it->get_ref<const std::string&>();
  }
  void text(const char* name, std::string& out) {
    if (const std::string* s = string(name)) out = *s;
  }
  void severity(const char* name, std::optional<Severity>& out) {
    const std::string* s = string(name);
    if (s == nullptr) return;
    out = parse_severity(*s);
    if (!out) fail(std::string("unknown ") + name + " " + in_quotes(*s) + " (expected SEV1..SEV3)");
  }
  void time(const char* name, std::optional<TimePoint>& out) {
    const std::string* s = string(name);
    if (s == nullptr) return;
    out = parse_time(*s);
    if (!out)
      fail(std::string("bad \"") + name + "\" time " + in_quotes(*s) + " (expected RFC 3339 UTC)");
  }
  void strings(const char* name, std::vector<std::string>& out) {
    const auto it = j_.find(name);
    if (it == j_.end()) return;
    if (!it->is_array()) return fail(std::string("\"") + name + "\" is not an array");
    for (const Json& v : *it) {
      if (!v.is_string()) return fail(std::string("\"") + name + "\" holds a non-string");
      out.push_back(v.get<std::string>());
    }
  }
  void string_map(const char* name, std::map<std::string, std::string>& out) {
    const auto it = j_.find(name);
    if (it == j_.end()) return;
    if (!it->is_object()) return fail(std::string("\"") + name + "\" is not an object");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string())
        return fail(std::string("\"") + name + "\": " + in_quotes(k) + " is not a string");
      out[k] = v.get<std::string>();
    }
  }

  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);  // the first error is the one to fix
  }
  const std::string& error() const { return error_; }

 private:
  const Json& j_;
  std::string error_;
};

}  // namespace

bool valid_incident_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(id.front())) return false;  // no ".", "..", ".hidden", "-flag"
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::string to_json_line(const TimelineEvent& e) {
  OrderedJson j;
  j["at"] = format_time(e.at);
  j["type"] = std::string(to_string(e.type));
  const auto text = [&j](const char* name, const std::string& value) {
    if (!value.empty()) j[name] = value;
  };
  text("check", e.check);
  text("key", e.key);
  text("text", e.text);
  if (e.severity) j["severity"] = std::string(to_string(*e.severity));
  if (e.previous) j["previous"] = std::string(to_string(*e.previous));
  if (e.state) j["state"] = std::string(to_string(*e.state));
  if (e.since) j["since"] = format_time(*e.since);
  text("finding", e.finding);
  text("failure", e.failure);
  if (!e.evidence.empty()) j["evidence"] = e.evidence;
  // Empty field values are kept: "service": "" is a fact apply() reads like any other.
  if (!e.fields.empty()) j["fields"] = e.fields;
  // replace: journal lines can hold any bytes; invalid UTF-8 becomes U+FFFD instead of throwing.
  // Non-ASCII stays UTF-8 (readable with grep); control characters, '\n' included, are escaped.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<TimelineEvent> from_json_line(std::string_view line) {
  Result<Json> parsed = parse_json(line);
  if (!parsed) return parsed.error();
  const Json& j = *parsed;
  if (!j.is_object()) return make_error("not a JSON object");
  Reader r(j);
  TimelineEvent e;

  const std::string* at = r.string("at");
  if (!r.error().empty()) return make_error(r.error());
  if (at == nullptr) return make_error("missing \"at\"");
  const std::optional<TimePoint> when = parse_time(*at);
  if (!when) return make_error("bad \"at\" time " + in_quotes(*at) + " (expected RFC 3339 UTC)");
  e.at = *when;

  const std::string* type = r.string("type");
  if (!r.error().empty()) return make_error(r.error());
  if (type == nullptr) return make_error("missing \"type\"");
  const std::optional<TimelineEvent::Type> t = parse_event_type(*type);
  if (!t) return make_error("unknown event type " + in_quotes(*type));
  e.type = *t;

  r.text("check", e.check);
  r.text("key", e.key);
  r.text("text", e.text);
  r.severity("severity", e.severity);
  r.severity("previous", e.previous);
  if (const std::string* s = r.string("state")) {
    e.state = parse_incident_state(*s);
    if (!e.state) r.fail("unknown state " + in_quotes(*s));
  }
  r.time("since", e.since);
  r.text("finding", e.finding);
  r.text("failure", e.failure);
  r.strings("evidence", e.evidence);
  r.string_map("fields", e.fields);
  if (!r.error().empty()) return make_error(r.error());
  return e;
}

IncidentStore::IncidentStore(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
}

std::string IncidentStore::path_of(const std::string& id) const {
  return dir_ + "/" + id + ".jsonl";
}

Result<bool> IncidentStore::append(const std::string& id, const TimelineEvent& e) {
  return append(id, std::vector<TimelineEvent>{e});
}

Result<bool> IncidentStore::append(const std::string& id,
                                   const std::vector<TimelineEvent>& events) {
  if (events.empty()) return true;
  const TimelineEvent& e = events.front();
  if (!valid_incident_id(id)) return make_error("invalid incident id " + in_quotes(id));
  const std::string path = path_of(id);
  std::string data;
  for (const TimelineEvent& event : events) {
    data += to_json_line(event);
    data += '\n';
  }
  // Only an "opened" event may start a timeline: anything else for an unknown id is a bug or a
  // file removed by hand, and must not create a timeline without its beginning.
  const sys::IfMissing if_missing =
      e.type == TimelineEvent::Type::opened ? sys::IfMissing::create : sys::IfMissing::fail;
  Result<sys::Appended> r = sys::append_lines(path, data, if_missing, 0640);
  if (!r) return r.error();
  if (*r == sys::Appended::missing) {
    return make_error("cannot append to " + path + ": no such timeline, and a new one must " +
                      "start with an \"opened\" event, not " + in_quotes(to_string(e.type)));
  }
  return true;
}

Result<IncidentStore::Loaded> IncidentStore::load(const std::string& id) const {
  if (!valid_incident_id(id)) return make_error("invalid incident id " + in_quotes(id));
  const std::string path = path_of(id);
  Result<std::optional<std::string>> read = sys::read_regular_file(path, sys::IfAbsent::error);
  if (!read) return read.error();
  const std::string& data = **read;

  Loaded out;
  out.incident.id = id;
  bool any = false;
  for (const LogLine& l : log_lines(data)) {
    const int line_no = l.number;
    const std::string_view line = l.text;
    const bool torn = l.torn;

    // A last line without its newline is kept if it parses: a prefix of a JSON object is never
    // a whole object, so only the newline was lost. Keeping it also matches what happens once
    // the next append() has put a newline after it.
    Result<TimelineEvent> e = from_json_line(line);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    if (!e) {
      ++out.skipped;
      out.warnings.push_back(
          where + (torn ? "torn last line (no newline), skipped: " : "unreadable line, skipped: ") +
          e.error().message);
      continue;
    }
    if (!any && e->type != TimelineEvent::Type::opened) {
      return make_error(where + "the first event is " + in_quotes(to_string(e->type)) +
                        ", not \"opened\"");
    }
    any = true;
    try {
      out.incident.apply(*e);
    } catch (const std::exception& ex) {
      // apply() parses some fields (e.g. "raised" with std::stoi); a corrupt value must not
      // stop the daemon from starting. The event is in the timeline, its effect maybe partial.
      out.warnings.push_back(where + "event not fully applied: " + ex.what());
    }
  }
  if (!any) {
    return make_error(path + ": no event" +
                      (out.skipped > 0 ? " (" + std::to_string(out.skipped) + " lines unreadable)"
                                       : std::string()));
  }
  return out;
}

bool IncidentStore::exists(const std::string& id) const {
  if (!valid_incident_id(id)) return false;
  struct stat st {};
  return ::lstat(path_of(id).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::vector<std::string> IncidentStore::list() const {
  std::vector<std::string> ids;
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) return ids;
  constexpr std::string_view kExt = ".jsonl";
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.size() <= kExt.size() || !name.ends_with(kExt)) continue;
    std::string id = name.substr(0, name.size() - kExt.size());
    if (!valid_incident_id(id) || !it->is_regular_file(ec) || it->is_symlink(ec)) continue;
    ids.push_back(std::move(id));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::optional<std::pair<std::uintmax_t, std::int64_t>> IncidentStore::stamp(
    const std::string& id) const {
  if (!valid_incident_id(id)) return std::nullopt;
  struct stat st {};
  if (::stat(path_of(id).c_str(), &st) != 0) return std::nullopt;
  return std::pair<std::uintmax_t, std::int64_t>{
      static_cast<std::uintmax_t>(st.st_size),
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

std::vector<std::string> IncidentStore::prune(TimePoint older_than, std::size_t at_most,
                                              const std::set<std::string>& keep) const {
  std::vector<std::pair<std::int64_t, std::string>> files;  // mtime (ns), id
  const std::vector<std::string> ids = list();
  for (const std::string& id : ids) {
    if (keep.count(id) > 0) continue;
    if (auto s = stamp(id)) files.emplace_back(s->second, id);
  }
  std::sort(files.begin(), files.end());
  const std::int64_t cutoff =
      std::chrono::duration_cast<std::chrono::nanoseconds>(older_than.time_since_epoch()).count();
  // Files beyond at_most count every file, open ones included: those are never deleted.
  std::size_t over = ids.size() > at_most ? ids.size() - at_most : 0;
  std::vector<std::string> deleted;
  for (const auto& [mtime, id] : files) {
    if (mtime >= cutoff && over == 0) break;
    if (::unlink(path_of(id).c_str()) != 0) continue;
    deleted.push_back(id);
    if (over > 0) --over;
  }
  if (!deleted.empty()) sys::sync_dir(dir_);
  return deleted;
}

nlohmann::json incident_summary_json(const Incident& inc) {
  nlohmann::json j = {{"id", inc.id},
                      {"title", inc.title},
                      {"severity", std::string(to_string(inc.severity))},
                      {"peak", std::string(to_string(inc.peak))},
                      {"state", std::string(to_string(inc.state))},
                      {"service", inc.service},
                      {"team", inc.team},
                      {"host", inc.host},
                      {"maintenance", inc.maintenance},
                      {"flapping", inc.flapping()},
                      {"started", format_time(inc.started)},
                      {"detected", format_time(inc.detected)},
                      {"ttd_ms", inc.time_to_detect().count()}};
  if (inc.resolved) j["resolved"] = format_time(*inc.resolved);
  return j;
}

}  // namespace vigil
