// The rollback action: known-good release history, reading and atomically switching the
// `current` symlink of a releases/ deployment.
#include "actions/rollback.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

#include "agent/core/json.h"
#include "agent/core/time.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"

namespace vigil {
namespace {

using Json = nlohmann::json;

// Why 1 MiB: twenty records are a few kB; anything far larger is not a file vigil wrote, and
// reading it whole would only cost memory.
constexpr std::size_t kMaxHistoryBytes = 1 << 20;
// A history of one release can never name a rollback target.
constexpr std::size_t kMinLimit = 2;
constexpr int kHistoryVersion = 1;

using sys::errno_text;

// "DIR" + "/" + name, without doubling a trailing slash of DIR.
std::string join(const std::string& dir, std::string_view name) {
  std::string p = dir;
  if (p.empty() || p.back() != '/') p += '/';
  p += name;
  return p;
}

std::optional<std::string> real_path(const std::string& p) {
  std::unique_ptr<char, decltype(&std::free)> r(::realpath(p.c_str(), nullptr), &std::free);
  if (!r) return std::nullopt;
  return std::string(r.get());
}

// DIR/releases/NAME is a directory (following symlinks).
bool release_dir_exists(const std::string& dir, std::string_view name) {
  struct stat st {};
  return ::stat(join(join(dir, "releases"), name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

struct Link {
  std::string name;         // the release
  std::string text;         // the link as written, trailing slashes removed
  std::size_t name_at = 0;  // where `name` starts in `text`
};

Result<Link> read_current(const std::string& dir) {
  const std::string current = join(dir, "current");
  struct stat st {};
  if (::lstat(current.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_error(current + " is missing");
    return make_error("cannot read " + current + ": " + errno_text(errno));
  }
  if (!S_ISLNK(st.st_mode)) {
    return make_error(current + " is not a symlink (" +
                      (S_ISDIR(st.st_mode) ? "a directory" : "not a link") +
                      "); refusing to touch it");
  }
  std::string text(PATH_MAX, '\0');
  const ssize_t n = ::readlink(current.c_str(), text.data(), text.size());
  if (n < 0) return make_error("cannot read " + current + ": " + errno_text(errno));
  if (static_cast<std::size_t>(n) >= text.size()) return make_error(current + ": link too long");
  text.resize(static_cast<std::size_t>(n));
  const std::string shown = current + " -> " + text;

  Link link;
  link.text = text;
  while (link.text.size() > 1 && link.text.back() == '/') link.text.pop_back();
  const std::size_t slash = link.text.rfind('/');
  link.name_at = slash == std::string::npos ? 0 : slash + 1;
  link.name = link.text.substr(link.name_at);
  const std::string outside = shown + " points outside " + join(dir, "releases/");
  if (slash == std::string::npos || !valid_release_name(link.name)) return make_error(outside);

  // Compare the link's parent with DIR/releases after resolving both, so equivalent spellings
  // ("./releases/A", an absolute path through a symlinked DIR) are accepted and nothing else.
  const std::string parent_text = link.text.substr(0, slash == 0 ? 1 : slash);
  const std::string parent = parent_text.front() == '/' ? parent_text : join(dir, parent_text);
  const auto releases = real_path(join(dir, "releases"));
  if (!releases) {
    return make_error("cannot resolve " + join(dir, "releases") + ": " + errno_text(errno));
  }
  const auto resolved = real_path(parent);
  if (!resolved || *resolved != *releases) return make_error(outside);

  if (!release_dir_exists(dir, link.name)) {
    return make_error(shown + " is dangling: release " + link.name + " is gone");
  }
  return link;
}

}  // namespace

bool valid_release_name(std::string_view name) {
  // NAME_MAX: the longest file name Linux file systems take.
  if (name.empty() || name.size() > NAME_MAX || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

ReleaseHistory::ReleaseHistory(std::size_t limit) : limit_(std::max(limit, kMinLimit)) {}

Result<ReleaseHistory::Change> ReleaseHistory::mark_good(std::string_view release, TimePoint at) {
  if (!valid_release_name(release)) {
    return make_error("invalid release name \"" + std::string(release) + "\"");
  }
  const auto it = std::find_if(releases_.begin(), releases_.end(),
                               [&](const KnownGoodRelease& r) { return r.release == release; });
  if (it == releases_.begin() && it != releases_.end()) {
    it->last_healthy = std::max(it->last_healthy, at);
    return Change::refreshed;
  }
  if (it != releases_.end()) {
    KnownGoodRelease r = std::move(*it);
    r.last_healthy = std::max(r.last_healthy, at);
    releases_.erase(it);
    releases_.insert(releases_.begin(), std::move(r));
    return Change::promoted;
  }
  releases_.insert(releases_.begin(), KnownGoodRelease{std::string(release), at, at});
  if (releases_.size() > limit_) releases_.resize(limit_);
  return Change::added;
}

bool ReleaseHistory::forget(std::string_view release) {
  const auto it = std::find_if(releases_.begin(), releases_.end(),
                               [&](const KnownGoodRelease& r) { return r.release == release; });
  if (it == releases_.end()) return false;
  releases_.erase(it);
  return true;
}

const KnownGoodRelease* ReleaseHistory::find(std::string_view release) const {
  for (const KnownGoodRelease& r : releases_) {
    if (r.release == release) return &r;
  }
  return nullptr;
}

std::string ReleaseHistory::to_json() const {
  Json list = Json::array();
  for (const KnownGoodRelease& r : releases_) {
    list.push_back({{"release", r.release},
                    {"first_healthy", format_time(r.first_healthy)},
                    {"last_healthy", format_time(r.last_healthy)}});
  }
  const Json j = {{"version", kHistoryVersion}, {"releases", std::move(list)}};
  // Release names are file names (bytes); invalid UTF-8 is replaced rather than thrown on. Such
  // a name no longer matches its directory, so it is skipped as gone, never switched to.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<ReleaseHistory> ReleaseHistory::from_json(std::string_view text, std::size_t limit) {
  Result<Json> parsed = parse_versioned_json(text, kHistoryVersion);
  if (!parsed) return parsed.error();
  const Json& j = *parsed;
  const auto list = j.find("releases");
  if (list == j.end() || !list->is_array()) return make_error("no \"releases\" array");

  ReleaseHistory h(limit);
  for (std::size_t i = 0; i < list->size(); ++i) {
    const Json& e = (*list)[i];
    const std::string where = "releases[" + std::to_string(i) + "]";
    if (!e.is_object()) return make_error(where + " is not an object");
    const auto text_of = [&](const char* key) -> const std::string* {
      const auto f = e.find(key);
      return f != e.end() && f->is_string() ? f->get_ptr<const std::string*>() : nullptr;
    };
    const std::string* name = text_of("release");
    if (name == nullptr) return make_error(where + ": no \"release\" string");
    if (!valid_release_name(*name)) {
      return make_error(where + ": invalid release name \"" + *name + "\"");
    }
    if (h.find(*name) != nullptr) return make_error(where + ": release " + *name + " twice");
    KnownGoodRelease r{*name, {}, {}};
    for (const auto& [key, field] : {std::pair{"first_healthy", &r.first_healthy},
                                     std::pair{"last_healthy", &r.last_healthy}}) {
      const std::string* t = text_of(key);
      const auto at = t != nullptr ? parse_time(*t) : std::nullopt;
      if (!at) return make_error(where + ": no valid \"" + key + "\" time");
      *field = *at;
    }
    if (r.first_healthy > r.last_healthy) {
      return make_error(where + ": first_healthy is after last_healthy");
    }
    h.releases_.push_back(std::move(r));
  }
  if (h.releases_.size() > h.limit_) h.releases_.resize(h.limit_);
  return h;
}

ReleaseHistory::Loaded ReleaseHistory::load(const std::string& path, std::size_t limit) {
  const auto empty = [&](const std::string& why) {
    return Loaded{
        ReleaseHistory(limit),
        path + ": " + why + "; treated as empty (no rollback until a release passes health again)"};
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return Loaded{ReleaseHistory(limit), ""};
  Result<std::string> text = sys::read_small_file(path, kMaxHistoryBytes);
  if (!text) return empty("cannot read: " + text.error().message);
  Result<ReleaseHistory> h = from_json(*text, limit);
  if (!h) return empty("corrupt: " + h.error().message);
  return Loaded{std::move(*h), ""};
}

Result<bool> ReleaseHistory::save(const std::string& path) const {
  return sys::write_file_atomic(path, to_json());
}

Result<std::string> release_history_path(const std::string& state_dir, std::string_view app) {
  if (!valid_release_name(app)) return make_error("invalid app name \"" + std::string(app) + "\"");
  return join(join(state_dir, "releases"), std::string(app) + ".json");
}

std::optional<TimePoint> release_switched(const std::string& dir) {
  struct stat st {};
  if (::lstat(join(dir, "current").c_str(), &st) != 0) return std::nullopt;
  return Clock::from_time_t(st.st_mtim.tv_sec);
}

Result<std::string> current_release(const std::string& dir) {
  Result<Link> link = read_current(dir);
  if (!link) return link.error();
  return std::move(link->name);
}

Result<RollbackPlan> plan_rollback(const std::string& dir, const ReleaseHistory& history) {
  Result<std::string> current = current_release(dir);
  if (!current) return current.error();
  RollbackPlan plan;
  plan.from = *current;
  for (const KnownGoodRelease& r : history.releases()) {
    if (r.release == plan.from) continue;
    if (release_dir_exists(dir, r.release)) {
      plan.to = r.release;
      return plan;
    }
    plan.skipped.push_back(r.release);
  }
  if (plan.skipped.empty()) {
    return make_error("no known-good release other than the current one (" + plan.from + ")");
  }
  std::string why = "no known-good release to roll back to from " + plan.from + ":";
  for (std::size_t i = 0; i < plan.skipped.size(); ++i) {
    why += (i == 0 ? " release " : ", release ") + plan.skipped[i] + " is gone";
  }
  return make_error(why + " (" + join(dir, "releases/") + ")");
}

Result<ReleaseSwitch> switch_release(const std::string& dir, std::string_view to) {
  if (!valid_release_name(to)) {
    return make_error("invalid release name \"" + std::string(to) + "\" (a plain directory name " +
                      "in " + join(dir, "releases/") + " is expected)");
  }
  if (!release_dir_exists(dir, to)) {
    return make_error("release " + std::string(to) + " is gone (" +
                      join(join(dir, "releases"), to) + " is not a directory)");
  }
  Result<Link> link = read_current(dir);
  if (!link) return link.error();

  // Same style as before: only the last component changes ("releases/A" -> "releases/B",
  // "/srv/app/releases/A" -> "/srv/app/releases/B").
  const std::string target = link->text.substr(0, link->name_at) + std::string(to);
  Result<std::string> swapped = sys::replace_symlink(target, join(dir, "current"));
  if (!swapped) return swapped.error();
  ReleaseSwitch s{std::move(link->name), std::string(to), ""};
  if (!swapped->empty())
    s.warning = "switched, but " + *swapped + ": a crash now could bring back " + s.from;
  return s;
}

PlannedRollback begin_rollback(const RollbackRequest& request, const ReleaseHistory& history) {
  PlannedRollback p;
  RollbackOutcome& out = p.outcome;
  out.target = request.app;
  out.dry_run = request.dry_run;
  const std::string prefix = "rollback " + request.app + ": ";
  Result<RollbackPlan> plan = plan_rollback(request.dir, history);
  if (!plan) {
    if (Result<std::string> current = current_release(request.dir)) out.from = *current;
    out.message = prefix + plan.error().message;
    return p;
  }
  out.from = plan->from;
  out.to = plan->to;
  if (!plan->skipped.empty()) {
    p.skipped = " (skipped, directory gone:";
    for (const std::string& s : plan->skipped) p.skipped += " " + s;
    p.skipped += ")";
  }
  if (request.dry_run == DryRun::yes) {
    out.ok = true;
    out.message = prefix + "would switch " + plan->from + " -> " + plan->to + p.skipped;
    return p;
  }
  p.switch_pending = true;
  return p;
}

RollbackOutcome end_rollback(const RollbackRequest& request, const PlannedRollback& planned,
                             const Result<ReleaseSwitch>& switched, std::string_view as_whom) {
  RollbackOutcome out = planned.outcome;
  const std::string prefix = "rollback " + request.app + ": ";
  if (!switched) {
    out.ok = false;
    out.message = prefix + switched.error().message;
    return out;
  }
  out.ok = true;
  out.from = switched->from;
  out.to = switched->to;
  out.message = prefix + "switched " + switched->from + " -> " + switched->to +
                (as_whom.empty() ? "" : " " + std::string(as_whom)) + planned.skipped +
                "; to roll forward, point " + join(request.dir, "current") + " back to releases/" +
                switched->from;
  if (!switched->warning.empty()) out.message += "; " + switched->warning;
  return out;
}

RollbackOutcome rollback(const RollbackRequest& request, const ReleaseHistory& history) {
  const PlannedRollback planned = begin_rollback(request, history);
  if (!planned.switch_pending) return planned.outcome;
  return end_rollback(request, planned, switch_release(request.dir, planned.outcome.to), "");
}

Result<DeployOwner> deploy_owner(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return make_error("cannot stat " + dir + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode)) return make_error(dir + " is not a directory");
  return DeployOwner{static_cast<unsigned>(st.st_uid), static_cast<unsigned>(st.st_gid)};
}

}  // namespace vigil
