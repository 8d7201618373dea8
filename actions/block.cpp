// The block action's building blocks: ufw argv, `ufw status` parsing, the block list with its
// history and persistence, and the reconcile plan.
#include "actions/block.h"
#include "agent/core/text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "agent/core/json.h"
#include "agent/core/time.h"
#include "agent/sys/errors.h"
#include "agent/sys/files.h"
#include "agent/sys/journal.h"

namespace vigil {
namespace {

using Json = nlohmann::json;

constexpr int kBlockListVersion = 1;
// The longest incident id a comment takes. The book's slugs are at most 40 bytes plus a "-N"
// suffix; 96 leaves room and keeps the iptables comment (256 bytes at most) far from its limit.
constexpr std::size_t kMaxIncidentLength = 96;
// Why 32 MiB: the file is written compact (one line), a block is ~150 bytes and a history time
// ~27, and kMaxHistoryTimes bounds the history: the largest list vigil can write is ~12 MiB (a
// week at max_blocks_per_minute = 10 is ~6 MiB). A larger file is not one vigil wrote.
constexpr std::size_t kMaxBlockFileBytes = 32 << 20;
// Block times kept over all addresses. Why 200,000: two weeks at the default rate limit; beyond
// it the addresses whose last block is oldest are forgotten first (they would have counted as
// first offenders again soon anyway), so weeks of sustained blocking never outgrow the file.
constexpr std::size_t kMaxHistoryTimes = 200'000;
// Block times kept per address. Why 64: the length caps after a handful of offences, and a week
// of back-to-back one-hour blocks is 168; 64 keeps the offence count honest for any real case.
constexpr std::size_t kMaxHistoryPerAddress = 64;
// A configured block can never push `until` past this: TimePoint counts nanoseconds in 64 bits
// (about 292 years), and a block that long is a block forever anyway.
constexpr Duration kLongestBlock = std::chrono::hours(24 * 365 * 100);

using sys::errno_text;

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z'); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The rule part of a `ufw status` line, if it is exactly what `ufw prepend deny from IP`
// produces: "Anywhere DENY IP" or "Anywhere (v6) DENY IP" ("DENY IN" in verbose and numbered
// listings). Anything more (a port, an interface, "(log)", OUT or FWD, a network) is not ours.
std::optional<UfwRule> parse_deny_from(std::string_view rule_part) {
  std::vector<std::string_view> w = split_words(rule_part);
  if (w.empty() || w[0] != "Anywhere") return std::nullopt;
  std::size_t i = 1;
  bool v6 = false;
  if (i < w.size() && w[i] == "(v6)") {
    v6 = true;
    ++i;
  }
  if (i >= w.size() || w[i] != "DENY") return std::nullopt;
  ++i;
  if (i < w.size() && w[i] == "IN") ++i;
  if (i + 1 != w.size()) return std::nullopt;
  Result<IpAddress> ip = parse_ip(w[i]);
  if (!ip) return std::nullopt;
  if ((ip->family == IpAddress::Family::v6) != v6) return std::nullopt;
  UfwRule rule;
  rule.ip = *ip;
  rule.v6 = v6;
  return rule;
}

std::string key_of(const IpAddress& ip) { return ip.to_string(); }

// `since` + `d`, saturating instead of overflowing.
TimePoint add_saturating(TimePoint since, Duration d) {
  d = std::clamp(d, Duration{0}, kLongestBlock);
  const auto room = TimePoint::max() - since;
  if (std::chrono::duration_cast<Duration>(room) < d) return TimePoint::max();
  return since + d;
}

}  // namespace

bool valid_block_incident(std::string_view id) {
  constexpr std::size_t kStampLength = 16;  // "YYYYMMDD-HHMMSS-"
  if (id.size() <= kStampLength || id.size() > kMaxIncidentLength) return false;
  for (std::size_t i = 0; i < kStampLength; ++i) {
    const bool dash = i == 8 || i == 15;
    if (dash ? id[i] != '-' : !is_digit(id[i])) return false;
  }
  const std::string_view slug = id.substr(kStampLength);
  if (!is_lower_alnum(slug.front()) || !is_lower_alnum(slug.back())) return false;
  for (std::size_t i = 0; i < slug.size(); ++i) {
    if (slug[i] == '-') {
      if (slug[i - 1] == '-') return false;  // the book's slugs never hold "--"
    } else if (!is_lower_alnum(slug[i])) {
      return false;
    }
  }
  return true;
}

Result<std::string> block_comment(std::string_view incident) {
  if (!valid_block_incident(incident)) {
    return make_error("not an incident id fit for a firewall comment: \"" +
                      std::string(incident.substr(0, 64)) + "\"");
  }
  return std::string(kBlockCommentPrefix) + std::string(incident);
}

std::optional<std::string> incident_of_comment(std::string_view comment) {
  if (!starts_with(comment, kBlockCommentPrefix)) return std::nullopt;
  const std::string_view id = comment.substr(kBlockCommentPrefix.size());
  if (!valid_block_incident(id)) return std::nullopt;
  return std::string(id);
}

Result<std::vector<std::string>> ufw_block_argv(const IpAddress& ip, const std::string& comment) {
  if (!incident_of_comment(comment)) return make_error("refusing ufw comment: not vigil's form");
  return std::vector<std::string>{kUfwPath,       "prepend", "deny", "from",
                                  ip.to_string(), "comment", comment};
}

Result<std::vector<std::string>> ufw_unblock_argv(const IpAddress& ip, const std::string& comment) {
  if (!incident_of_comment(comment)) return make_error("refusing ufw comment: not vigil's form");
  return std::vector<std::string>{kUfwPath,       "delete",  "deny", "from",
                                  ip.to_string(), "comment", comment};
}

std::vector<std::string> ss_kill_argv(const IpAddress& ip) {
  std::string dst = ip.to_string();
  if (ip.family == IpAddress::Family::v6) dst = "[" + dst + "]";
  return {kSsPath, "-K", "dst", dst};
}

std::vector<std::string> ufw_status_argv() { return {kUfwPath, "status"}; }

UfwChange ufw_change(std::string_view out) {
  for (std::string_view line : split_lines(out)) {
    line = trim(line);
    for (std::string_view done :
         {"Rule inserted", "Rule added", "Rules updated", "Rule updated", "Rule deleted"}) {
      if (starts_with(line, done)) return UfwChange::changed;
    }
    if (starts_with(line, "Skipping inserting existing rule") ||
        starts_with(line, "Skipping adding existing rule")) {
      return UfwChange::already_present;
    }
    if (starts_with(line, "Could not delete non-existent rule")) return UfwChange::not_present;
  }
  return UfwChange::unknown;
}

Result<UfwStatus> parse_ufw_status(std::string_view text) {
  const std::vector<std::string_view> lines = split_lines(text);
  std::size_t i = 0;
  while (i < lines.size() && trim(lines[i]).empty()) ++i;
  if (i == lines.size()) return make_error("empty ufw status output");
  const std::string_view first = trim(lines[i]);
  UfwStatus status;
  if (first == "Status: active") {
    status.active = true;
  } else if (first != "Status: inactive") {
    std::string shown(first.substr(0, 80));
    for (char& c : shown) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return make_error("not ufw status output: first line is \"" + shown + "\"");
  }

  for (++i; i < lines.size(); ++i) {
    std::string_view line = trim(lines[i]);
    // `status numbered` prefixes "[ 1] ".
    if (!line.empty() && line.front() == '[') {
      const std::size_t close = line.find(']');
      if (close == std::string_view::npos) continue;
      line = trim(line.substr(close + 1));
    }
    // ufw writes "<to> <action> <from> # <comment>"; neither column can hold a '#'.
    const std::size_t hash = line.find(" # ");
    if (hash == std::string_view::npos) continue;
    const std::string_view comment = trim(line.substr(hash + 3));
    if (!starts_with(comment, "vigil:")) continue;  // an admin's rule: none of our business
    const std::optional<std::string> incident = incident_of_comment(comment);
    std::optional<UfwRule> rule =
        incident ? parse_deny_from(line.substr(0, hash)) : std::optional<UfwRule>{};
    if (!rule) {
      status.unrecognized.emplace_back(line);
      continue;
    }
    rule->comment = std::string(comment);
    rule->incident = *incident;
    status.rules.push_back(std::move(*rule));
  }
  return status;
}

Duration block_duration(int offence, Duration block_for, Duration max_block_for) {
  if (block_for <= Duration{0} || max_block_for <= Duration{0}) return Duration{0};
  Duration d = std::min(block_for, max_block_for);
  for (int i = 1; i < offence; ++i) {
    if (d >= max_block_for - d) return max_block_for;  // d * 2 >= max, without computing d * 2
    d *= 2;
  }
  return d;
}

BlockList::BlockList(Duration remember_for) : remember_for_(std::max(remember_for, Duration{0})) {}

BlockEntry BlockList::plan(const IpAddress& ip, std::string incident, TimePoint now,
                           const BlockSettings& settings) const {
  BlockEntry e;
  e.ip = ip;
  e.incident = std::move(incident);
  e.since = now;
  e.offence = offences(ip, now) + 1;
  e.until =
      add_saturating(now, block_duration(e.offence, settings.block_for, settings.max_block_for));
  return e;
}

bool BlockList::add(BlockEntry entry) {
  if (!valid_block_incident(entry.incident) || entry.since > entry.until || entry.offence < 1) {
    return false;
  }
  const std::string key = key_of(entry.ip);
  std::vector<TimePoint>& times = history_[key];
  const TimePoint horizon = entry.since - remember_for_;
  const std::size_t before = times.size();
  times.erase(std::remove_if(times.begin(), times.end(), [&](TimePoint t) { return t <= horizon; }),
              times.end());
  // Sorted, even when the clock stepped back (found by fuzz_blocks): trimming keeps the newest,
  // and compact() takes back() as the last block.
  times.insert(std::upper_bound(times.begin(), times.end(), entry.since), entry.since);
  if (times.size() > kMaxHistoryPerAddress) {
    times.erase(times.begin(), times.end() - static_cast<std::ptrdiff_t>(kMaxHistoryPerAddress));
  }
  history_times_ = history_times_ - before + times.size();
  entries_.insert_or_assign(key, std::move(entry));
  compact();
  return true;
}

void BlockList::compact() {
  if (history_times_ <= kMaxHistoryTimes) return;
  std::size_t total = 0;
  for (const auto& [key, times] : history_) total += times.size();
  // Oldest last block first; addresses blocked now are kept.
  std::vector<std::pair<TimePoint, std::string>> by_age;
  for (const auto& [key, times] : history_) {
    if (entries_.count(key) == 0) by_age.emplace_back(times.back(), key);
  }
  std::sort(by_age.begin(), by_age.end());
  // Down to 90 %, so the sort runs once per 20,000 blocks, not on every one.
  const std::size_t target = kMaxHistoryTimes / 10 * 9;
  for (const auto& [last, key] : by_age) {
    if (total <= target) break;
    const auto it = history_.find(key);
    total -= it->second.size();
    history_.erase(it);
  }
  history_times_ = total;
}

bool BlockList::remove(const IpAddress& ip) { return entries_.erase(key_of(ip)) > 0; }

const BlockEntry* BlockList::find(const IpAddress& ip) const {
  const auto it = entries_.find(key_of(ip));
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<BlockEntry> BlockList::expired(TimePoint now) const {
  std::vector<BlockEntry> out;
  for (const auto& [key, e] : entries_) {
    if (e.until <= now) out.push_back(e);
  }
  return out;
}

int BlockList::offences(const IpAddress& ip, TimePoint now) const {
  const auto it = history_.find(key_of(ip));
  if (it == history_.end()) return 0;
  const TimePoint horizon = now - remember_for_;
  return static_cast<int>(std::count_if(it->second.begin(), it->second.end(),
                                        [&](TimePoint t) { return t > horizon; }));
}

void BlockList::prune(TimePoint now) {
  const TimePoint horizon = now - remember_for_;
  for (auto it = history_.begin(); it != history_.end();) {
    std::vector<TimePoint>& times = it->second;
    times.erase(
        std::remove_if(times.begin(), times.end(), [&](TimePoint t) { return t <= horizon; }),
        times.end());
    it = times.empty() ? history_.erase(it) : std::next(it);
  }
  history_times_ = 0;
  for (const auto& [key, times] : history_) history_times_ += times.size();
}

std::vector<BlockEntry> BlockList::entries() const {
  std::vector<BlockEntry> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) out.push_back(e);
  return out;
}

std::string BlockList::to_json() const {
  Json blocks = Json::array();
  for (const auto& [key, e] : entries_) {
    blocks.push_back({{"ip", key},
                      {"incident", e.incident},
                      {"since", format_time(e.since)},
                      {"until", format_time(e.until)},
                      {"offence", e.offence}});
  }
  Json history = Json::array();
  for (const auto& [key, times] : history_) {
    Json list = Json::array();
    for (const TimePoint t : times) list.push_back(format_time(t));
    history.push_back({{"ip", key}, {"blocks", std::move(list)}});
  }
  const Json j = {{"version", kBlockListVersion},
                  {"blocks", std::move(blocks)},
                  {"history", std::move(history)}};
  // Compact: indentation would double the size of the history, which is most of the file.
  return j.dump() + "\n";
}

Result<BlockList> BlockList::from_json(std::string_view text, Duration remember_for) {
  Result<Json> doc = parse_versioned_json(text, kBlockListVersion);
  if (!doc) return doc.error();
  const Json& j = *doc;
  const auto blocks = j.find("blocks");
  if (blocks == j.end() || !blocks->is_array()) return make_error("no \"blocks\" array");
  const auto history = j.find("history");
  if (history == j.end() || !history->is_array()) return make_error("no \"history\" array");

  const auto string_of = [](const Json& o, const char* key) -> const std::string* {
    const auto f = o.find(key);
    return f != o.end() && f->is_string() ? f->get_ptr<const std::string*>() : nullptr;
  };
  const auto ip_of = [&](const Json& o, const std::string& where) -> Result<IpAddress> {
    const std::string* ip_text = string_of(o, "ip");
    if (ip_text == nullptr) return make_error(where + ": no \"ip\" string");
    Result<IpAddress> ip = parse_ip(*ip_text);
    if (!ip) return make_error(where + ": " + ip.error().message);
    return ip;
  };
  const auto time_of = [](const std::string* t) {
    return t != nullptr ? parse_time(*t) : std::nullopt;
  };

  BlockList list(remember_for);
  for (std::size_t i = 0; i < blocks->size(); ++i) {
    const Json& e = (*blocks)[i];
    const std::string where = "blocks[" + std::to_string(i) + "]";
    if (!e.is_object()) return make_error(where + " is not an object");
    Result<IpAddress> ip = ip_of(e, where);
    if (!ip) return ip.error();
    const std::string key = key_of(*ip);
    if (list.entries_.count(key) > 0) return make_error(where + ": address " + key + " twice");
    const std::string* incident = string_of(e, "incident");
    if (incident == nullptr || !valid_block_incident(*incident)) {
      return make_error(where + ": no valid \"incident\" id");
    }
    BlockEntry entry{*ip, *incident, {}, {}, 1};
    for (const auto& [name, field] :
         {std::pair{"since", &entry.since}, std::pair{"until", &entry.until}}) {
      const auto at = time_of(string_of(e, name));
      if (!at) return make_error(where + ": no valid \"" + name + "\" time");
      *field = *at;
    }
    if (entry.since > entry.until) return make_error(where + ": since is after until");
    const auto offence = e.find("offence");
    if (offence == e.end() || !offence->is_number_integer() || offence->get<std::int64_t>() < 1 ||
        offence->get<std::int64_t>() > std::numeric_limits<int>::max()) {
      return make_error(where + ": no valid \"offence\" (an integer from 1)");
    }
    entry.offence = static_cast<int>(offence->get<std::int64_t>());
    list.entries_.emplace(key, std::move(entry));
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < history->size(); ++i) {
    const Json& h = (*history)[i];
    const std::string where = "history[" + std::to_string(i) + "]";
    if (!h.is_object()) return make_error(where + " is not an object");
    Result<IpAddress> ip = ip_of(h, where);
    if (!ip) return ip.error();
    const std::string key = key_of(*ip);
    if (!seen.insert(key).second) return make_error(where + ": address " + key + " twice");
    const auto times = h.find("blocks");
    if (times == h.end() || !times->is_array()) return make_error(where + ": no \"blocks\" array");
    std::vector<TimePoint> parsed;
    for (std::size_t k = 0; k < times->size(); ++k) {
      const Json& t = (*times)[k];
      const auto at = t.is_string() ? parse_time(t.get<std::string>()) : std::nullopt;
      if (!at) return make_error(where + ".blocks[" + std::to_string(k) + "]: not a valid time");
      parsed.push_back(*at);
    }
    std::sort(parsed.begin(), parsed.end());
    if (parsed.size() > kMaxHistoryPerAddress) {
      parsed.erase(parsed.begin(),
                   parsed.end() - static_cast<std::ptrdiff_t>(kMaxHistoryPerAddress));
    }
    list.history_times_ += parsed.size();
    if (!parsed.empty()) list.history_.emplace(key, std::move(parsed));
  }
  list.compact();
  return list;
}

BlockList::Loaded BlockList::load(const std::string& path, Duration remember_for) {
  const auto empty = [&](const std::string& why) {
    return Loaded{BlockList(remember_for),
                  path + ": " + why +
                      "; treated as empty (vigil's rules in ufw are now unknown and will be "
                      "deleted by the next reconcile)"};
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return Loaded{BlockList(remember_for), ""};
  Result<std::string> text = sys::read_small_file(path, kMaxBlockFileBytes);
  if (!text) return empty("cannot read: " + text.error().message);
  Result<BlockList> list = from_json(*text, remember_for);
  if (!list) return empty("corrupt: " + list.error().message);
  return Loaded{std::move(*list), ""};
}

Result<bool> BlockList::save(const std::string& path) const {
  return sys::write_file_atomic(path, to_json());
}

ReconcilePlan reconcile(const BlockList& list, const UfwStatus& status, TimePoint now,
                        Duration adopt_for) {
  ReconcilePlan plan;
  if (!status.active) {
    // The rules cannot be seen: trust the list.
    plan.ufw_inactive = true;
    for (BlockEntry& e : list.entries()) {
      if (e.until > now) {
        plan.keep.push_back(std::move(e));
        continue;
      }
      UfwRule rule;
      rule.ip = e.ip;
      rule.v6 = e.ip.family == IpAddress::Family::v6;
      rule.incident = e.incident;
      Result<std::string> comment = block_comment(e.incident);
      if (!comment) continue;  // from_json and the book only make valid ids
      rule.comment = std::move(*comment);
      plan.to_delete.push_back({std::move(rule), ReconcilePlan::Delete::Why::expired});
    }
    return plan;
  }

  for (const UfwRule& rule : status.rules) {
    const BlockEntry* e = list.find(rule.ip);
    if (e == nullptr) {
      const bool seen = std::any_of(plan.adopt.begin(), plan.adopt.end(),
                                    [&](const BlockEntry& a) { return a.ip == rule.ip; });
      if (!seen) plan.adopt.push_back(BlockEntry{rule.ip, rule.incident, now, now + adopt_for, 1});
    } else if (e->until <= now) {
      plan.to_delete.push_back({rule, ReconcilePlan::Delete::Why::expired});
    }
  }
  for (BlockEntry& e : list.entries()) {
    const bool in_ufw = std::any_of(status.rules.begin(), status.rules.end(),
                                    [&](const UfwRule& r) { return r.ip == e.ip; });
    if (!in_ufw) {
      plan.forget.push_back(std::move(e));
    } else if (e.until > now) {
      plan.keep.push_back(std::move(e));
    }
  }
  return plan;
}

}  // namespace vigil
