#include "agent/incidents/incident_index.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "agent/core/json.h"
#include "agent/incidents/timeline.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"
#include "agent/sys/journal.h"

namespace vigil {

namespace {
constexpr int kVersion = 1;
}  // namespace

IncidentIndex::IncidentIndex(std::string path) : path_(std::move(path)) {}

std::string IncidentIndex::line(const std::string& id, const Entry& e) {
  nlohmann::json j = {{"v", kVersion},           {"id", id},       {"size", e.stamp.first},
                      {"mtime", e.stamp.second}, {"owed", e.owed}, {"summary", e.summary}};
  return j.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<IncidentIndex::LoadReport> IncidentIndex::load() {
  entries_.clear();
  LoadReport report;
  if (::access(path_.c_str(), F_OK) != 0 && errno == ENOENT) return report;
  Result<std::string> text = sys::read_small_file(path_, kMaxBytes);
  if (!text) return text.error();
  std::size_t at = 0;
  while (at < text->size()) {
    std::size_t end = text->find('\n', at);
    const bool whole = end != std::string::npos;
    if (!whole) end = text->size();
    const std::string_view raw(text->data() + at, end - at);
    at = end + 1;
    if (raw.empty()) continue;
    Result<nlohmann::json> j = whole ? parse_json(raw) : Result<nlohmann::json>(make_error("torn"));
    const auto ok = [&](const nlohmann::json& v) {
      return v.is_object() && v.value("v", 0) == kVersion && v.contains("id") &&
             v["id"].is_string() && valid_incident_id(v["id"].get<std::string>()) &&
             v.contains("size") && v["size"].is_number_unsigned() && v.contains("mtime") &&
             v["mtime"].is_number_integer() && v.contains("owed") && v["owed"].is_boolean() &&
             v.contains("summary") && v["summary"].is_object();
    };
    if (!j || !ok(*j)) {
      ++report.skipped;
      continue;
    }
    Entry e;
    e.stamp = {(*j)["size"].get<std::uintmax_t>(), (*j)["mtime"].get<std::int64_t>()};
    e.owed = (*j)["owed"].get<bool>();
    e.summary = std::move((*j)["summary"]);
    entries_.insert_or_assign((*j)["id"].get<std::string>(), std::move(e));
  }
  report.entries = entries_.size();
  return report;
}

const IncidentIndex::Entry* IncidentIndex::find(const std::string& id, const Stamp& stamp) const {
  const auto it = entries_.find(id);
  if (it == entries_.end() || it->second.stamp != stamp) return nullptr;
  return &it->second;
}

Result<bool> IncidentIndex::put(const std::string& id, Entry entry) {
  const std::string data = line(id, entry);
  entries_.insert_or_assign(id, std::move(entry));
  const sys::Fd fd(
      ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return make_error("cannot open " + path_ + ": " + sys::errno_text(errno));
  if (!sys::write_all(fd.get(), data)) {
    return make_error("cannot write " + path_ + ": " + sys::errno_text(errno));
  }
  return true;
}

Result<bool> IncidentIndex::compact(const std::set<std::string>& keep) {
  std::string data;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (keep.count(it->first) == 0) {
      it = entries_.erase(it);
      continue;
    }
    data += line(it->first, it->second);
    ++it;
  }
  return sys::write_file_atomic(path_, data);
}

}  // namespace vigil
