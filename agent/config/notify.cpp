// [paging] and the [[notify]] tables: the keys every notifier takes (name, kind, routing,
// delivery limits); each kind (kinds.h, registered by notify/config.cpp) names and parses its
// own, and a key of another kind says which kind it is for. [[escalation]] chains over these in
// escalation.cpp.
#include <algorithm>
#include <array>
#include <map>
#include <set>

#include "agent/config/kinds.h"
#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/config/values.h"

namespace vigil::config_internal {

namespace {

// Why at least 100: fewer pages than one bad hour of a few incidents would drop pages on a
// normal outage. Why at most 1M: at ~2 KiB a page that is 2 GiB of state dir, far beyond any
// outage a human could read the pages of.
constexpr int kMinOutbox = 100;
constexpr int kMaxOutbox = 1'000'000;
// Why at least 10s: a heartbeat only has to beat the central side's "is it dead?" timeout
// (minutes); more often is load on the receivers, not safety.
constexpr Duration kMinHeartbeat{10'000};
// Why 1s to 60s: a central system slower than a minute to accept a page is down; the outbox
// retries it. Under a second, a busy but healthy receiver would be counted as down.
constexpr Duration kMinNotifyTimeout{1'000};
constexpr Duration kMaxNotifyTimeout{60'000};

// The keys every [[notify]] table takes, before its kind's.
constexpr std::array<std::string_view, 7> kCommonKeys{
    "name", "kind", "severity", "teams", "timeout", "max_per_minute", "verify_tls"};

// Reports every key of a [[notify]] table that its kind does not take: a key of another kind
// says which kind it is for; an unknown one gets a suggestion among this kind's keys.
void notify_keys(ConfigReader& r, const toml::table& t, const ConfigKinds& kinds,
                 const NotifierKindInfo& kind, const std::string& where) {
  const auto takes = [](const NotifierKindInfo& k, std::string_view key) {
    return std::find(k.keys.begin(), k.keys.end(), key) != k.keys.end();
  };
  for (auto&& [key, value] : t) {
    const std::string k(key.str());
    if (std::find(kCommonKeys.begin(), kCommonKeys.end(), k) != kCommonKeys.end() ||
        takes(kind, k)) {
      continue;
    }
    std::vector<const NotifierKindInfo*> takers;
    for (const NotifierKindInfo& other : kinds.notifiers) {
      if (takes(other, k)) takers.push_back(&other);
    }
    if (takers.empty()) {
      std::vector<std::string_view> allowed(kCommonKeys.begin(), kCommonKeys.end());
      allowed.insert(allowed.end(), kind.keys.begin(), kind.keys.end());
      r.unknown_key(key, allowed, where);
      continue;
    }
    if (const auto refused = kind.refused.find(k); refused != kind.refused.end()) {
      r.error(key.source(), where + std::string(refused->second));
      continue;
    }
    std::vector<std::string_view> names;
    for (const NotifierKindInfo* other : takers) names.push_back(other->name);
    std::string message = where + "'" + k + "' is only for " +
                          (names.size() == 1 ? "kind " : "kinds ") +
                          join_names(names, ", ", " and ");
    if (takers.size() == 1) {
      if (const auto hint = takers.front()->misplaced_hint.find(k);
          hint != takers.front()->misplaced_hint.end()) {
        std::string text(hint->second);
        if (const auto at = text.find("{kind}"); at != std::string::npos) {
          text.replace(at, 6, kind.name);
        }
        message += text;
      }
    }
    r.error(key.source(), message);
  }
}

// One [[notify]] table. False when its kind is unknown (nothing else can be checked).
bool notifier(ConfigReader& r, const toml::table& t, const ConfigKinds& kinds, NotifyConfig& n,
              std::map<std::string, SourcePos>& names, std::set<std::string>& broken) {
  n.where = r.pos(t.source());
  std::string where = "notify: ";
  const toml::node* name_node = t.get("name");
  std::optional<std::string> name;
  if (name_node != nullptr) {
    name = r.get_string(t, "name", where);
    if (name && !notify_name_ok(*name)) {
      r.error(name_node->source(),
              "notify: name \"" + *name + "\" must be 1-64 letters, digits, '-' or '_'");
    }
    if (name) where = "notify '" + *name + "': ";
  }

  const toml::node* kind_node = t.get("kind");
  const NotifierKindInfo* kind = nullptr;
  const std::vector<std::string_view> kind_names = kinds.notifier_names();
  if (kind_node == nullptr) {
    r.error(t.source(),
            where + "missing required key 'kind' (" + join_names(kind_names, ", ", " or ") + ")");
  } else if (auto k = r.get_string(t, "kind", where)) {
    kind = kinds.notifier(*k);
    if (kind == nullptr) {
      const std::string_view best = closest(*k, kind_names);
      std::string known = "known: " + join_names(kind_names, ", ", ", ");
      for (const NotifierKindInfo& other : kinds.notifiers) {
        if (!other.fallback_for.empty()) {
          known += "; for " + std::string(other.fallback_for) + ": " + std::string(other.name);
        }
      }
      r.error(kind_node->source(),
              where + "unknown kind \"" + *k + "\"" +
                  (best.empty() ? " (" + known + ")"
                                : " (did you mean \"" + std::string(best) + "\"?)"));
    }
  }
  if (kind == nullptr) {
    if (name) broken.insert(*name);
    return false;
  }
  n.kind = kind->kind;
  const std::string kind_name(kind->name);
  n.name = name.value_or(kind_name);
  where = "notify '" + n.name + "': ";

  // The second of two with one name is the error; its position is where the name comes from.
  const toml::node* named_at = name ? name_node : kind_node;
  auto [first, inserted] = names.emplace(n.name, r.pos(named_at->source()));
  if (!inserted) {
    r.error(named_at->source(),
            "duplicate notify name '" + n.name + "' (first defined at " +
                position_text(first->second) + ")" +
                (name ? std::string()
                      : ": the name defaults to the kind; give each one its own 'name'"));
  }

  notify_keys(r, t, kinds, *kind, where);
  n.severity = kind->severity;
  n.max_per_minute = kind->max_per_minute;
  if (const toml::node* s = t.get("severity")) {
    if (auto sev = r.get_severity(*s, where + "'severity'")) n.severity = *sev;
  }
  if (const toml::node* tn = t.get("teams")) {
    const auto* arr = tn->as_array();
    if (arr != nullptr && arr->empty()) {
      r.error(tn->source(), where + "'teams' must not be empty (leave it out to page every team)");
    }
    for (auto& [team, item] : r.string_items(t, "teams", where)) {
      if (!team_name_ok(team)) {
        r.error(item->source(), where + "'teams': \"" + team +
                                    "\" must be 1-64 letters, digits, '-', '_' or '.', as a "
                                    "check's 'team'");
      } else {
        n.teams.push_back(team);
      }
    }
  }

  if (kind->parse != nullptr) kind->parse(r, t, n, where);
  if (auto d = r.get_duration_max(t, "timeout", kMinNotifyTimeout, kMaxNotifyTimeout, where)) {
    n.timeout = *d;
  }
  if (auto v = r.get_int(t, "max_per_minute", 1, 10'000, where)) n.max_per_minute = *v;
  if (auto b = r.get_bool(t, "verify_tls", where)) n.verify_tls = *b;
  return true;
}

}  // namespace

std::set<std::string> parse_notifiers(ConfigReader& r, const toml::node& node,
                                      const ConfigKinds& kinds, std::vector<NotifyConfig>& out) {
  std::set<std::string> broken;
  const auto* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.error(node.source(), "'notify' must be an array of tables: write [[notify]]");
    return broken;
  }
  std::map<std::string, SourcePos> names;
  for (const toml::node& item : *arr) {
    NotifyConfig n;
    if (notifier(r, *item.as_table(), kinds, n, names, broken)) out.push_back(std::move(n));
  }
  return broken;
}

// [paging]: the outbox, the dead-man heartbeat and incident links.
void parse_paging(ConfigReader& r, const toml::node& node, PagingSettings& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'paging' must be a table: write [paging]");
    return;
  }
  const std::string where = "[paging]: ";
  r.check_keys(*t, {"outbox_max", "heartbeat_every", "heartbeat_url", "link_base"}, where);
  if (auto v = r.get_int(*t, "outbox_max", kMinOutbox, kMaxOutbox, where)) {
    out.outbox_max = static_cast<std::size_t>(*v);
  }
  if (auto d = r.get_duration(*t, "heartbeat_every", kMinHeartbeat, where)) {
    out.heartbeat_every = *d;
  }
  for (const char* key : {"heartbeat_url", "link_base"}) {
    if (auto u = r.get_string(*t, key, where)) {
      if (notify_url(r, *t->get(key), *u, key, "", where)) {
        (std::string_view(key) == "heartbeat_url" ? out.heartbeat_url : out.link_base) = *u;
      }
    }
  }
}

}  // namespace vigil::config_internal
