// [mitigation] (the guards of every action), the [action.KIND.NAME] tables (each kind's keys are
// its plugin's, actions/config.cpp; the guards every action takes are read here), and the check
// across sections that every ladder step names an action that fits its
// check.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "agent/config/kinds.h"
#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/core/ip.h"

namespace vigil::config_internal {

namespace {

// The kinds that act on the address a journal check captured.
std::vector<std::string_view> address_kinds(const ConfigKinds& kinds) {
  std::vector<std::string_view> out;
  for (const ActionKindInfo& k : kinds.actions) {
    if (k.target == ActionTarget::address) out.push_back(k.name);
  }
  return out;
}

// One [action.KIND.NAME] table: its kind's keys, then the guards every action takes.
void action(ConfigReader& r, const toml::table& t, const ActionKindInfo& kind, ActionConfig& a,
            const std::string& where) {
  std::vector<std::string_view> keys(kind.keys.begin(), kind.keys.end());
  keys.insert(keys.end(), {"max_runs", "per", "cooldown"});
  if (kind.verified_by_health) keys.push_back("verify_within");
  keys.insert(keys.end(), {"dry_run", "fleet_max", "fleet_max_percent"});
  r.check_keys(t, keys, where);
  // An action that verifies itself has nothing to wait for before the next step.
  if (!kind.verified_by_health) a.cooldown = Duration::zero();
  if (kind.parse != nullptr) kind.parse(r, t, a, where);
  if (auto v = r.get_int(t, "max_runs", 1, 1000, where)) a.max_runs = *v;
  if (auto d = r.get_duration(t, "per", Duration(1'000), where)) a.per = *d;
  if (const toml::node* n = t.get("cooldown")) {
    const auto* z = n->as_string();
    if (z != nullptr && (z->get() == "0" || z->get() == "0s")) {
      a.cooldown = Duration::zero();
    } else if (auto d = r.get_duration(t, "cooldown", Duration(1), where)) {
      a.cooldown = *d;
    }
  }
  if (kind.verified_by_health) {
    if (auto d = r.get_duration(t, "verify_within", Duration(1'000), where)) a.verify_within = *d;
  }
  if (auto b = r.get_bool(t, "dry_run", where)) a.dry_run = *b ? DryRun::yes : DryRun::no;
  if (auto v = r.get_int(t, "fleet_max", 1, 100'000, where)) a.fleet_max = *v;
  if (auto v = r.get_int(t, "fleet_max_percent", 1, 100, where)) a.fleet_max_percent = *v;
  if (a.fleet_max > 0 && a.fleet_max_percent > 0) {
    r.error(t.get("fleet_max_percent")->source(),
            where +
                "give 'fleet_max' (hosts) or 'fleet_max_percent' (of the fleet's live "
                "hosts), not both");
  }
}

}  // namespace

// [mitigation]: guards for every action.
void parse_mitigation(ConfigReader& r, const toml::node& node, MitigationSettings& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'mitigation' must be a table: write [mitigation]");
    return;
  }
  const std::string where = "[mitigation]: ";
  r.check_keys(*t,
               {"allow", "protect_ssh_sessions", "respect_ufw_allow", "max_blocks_per_minute",
                "circuit_reset"},
               where);
  if (const toml::node* n = t->get("allow")) {
    const auto* arr = n->as_array();
    if (arr == nullptr) {
      r.error(n->source(), where +
                               "'allow' must be an array of addresses or CIDR blocks, e.g. "
                               "allow = [\"10.0.0.0/8\", \"2001:db8::1\"]");
    } else {
      for (const toml::node& item : *arr) {
        const auto* str = item.as_string();
        if (str == nullptr) {
          r.error(item.source(),
                  where + "'allow' items must be strings, not " + std::string(type_name(item)));
          continue;
        }
        auto cidr = parse_cidr(str->get());
        if (!cidr) {
          r.error(item.source(), where + "'allow': " + cidr.error().message);
        } else {
          out.allow.push_back(*cidr);
        }
      }
    }
  }
  if (auto b = r.get_bool(*t, "protect_ssh_sessions", where)) out.protect_ssh_sessions = *b;
  if (auto b = r.get_bool(*t, "respect_ufw_allow", where)) out.respect_ufw_allow = *b;
  if (auto v = r.get_int(*t, "max_blocks_per_minute", 1, 10'000, where)) {
    out.max_blocks_per_minute = *v;
  }
  if (auto d = r.get_duration(*t, "circuit_reset", Duration(1'000), where)) out.circuit_reset = *d;
}

// [action.KIND.NAME] tables.
void parse_actions(ConfigReader& r, const toml::node& node, const ConfigKinds& kinds,
                   std::map<std::string, ActionConfig>& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'action' must be tables like [action.restart.app]");
    return;
  }
  r.check_keys(*t, kinds.action_names(), "[action]: ");
  for (auto&& [kind_key, kind_node] : *t) {
    const std::string kind_name(kind_key.str());
    const ActionKindInfo* kind = kinds.action(kind_name);
    if (kind == nullptr) continue;  // reported by check_keys
    const auto* tables = kind_node.as_table();
    if (tables == nullptr) {
      r.error(kind_node.source(),
              "'action." + kind_name + "' must hold tables like [action." + kind_name + ".NAME]");
      continue;
    }
    for (auto&& [name_key, n] : *tables) {
      ActionConfig a;
      a.kind = kind->kind;
      a.name = std::string(name_key.str());
      a.where = r.pos(n.source());
      const std::string where = "[action." + kind_name + "." + a.name + "]: ";
      const bool name_ok =
          !a.name.empty() && a.name.size() <= 64 &&
          std::all_of(a.name.begin(), a.name.end(), [](unsigned char ch) {
            return std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '@';
          });
      if (!name_ok) {
        r.error(name_key.source(), where +
                                       "the name must be 1-64 letters, digits, '-', '_', "
                                       "'.' or '@'");
      }
      const auto* at = n.as_table();
      if (at == nullptr) {
        r.error(n.source(), where + "must be a table");
        continue;
      }
      action(r, *at, *kind, a, where);
      out[a.ref()] = std::move(a);
    }
  }
}

// Every ladder step names a defined action that fits the check.
void check_ladders(ConfigReader& r, const Config& cfg, const ConfigKinds& kinds,
                   const CheckSources& sources) {
  const std::string kind_list = join_names(kinds.action_names(), ", ", " or ");
  for (const auto& [check_name, where_src] : sources.ladders) {
    const CheckConfig* c = nullptr;
    for (const CheckConfig& x : cfg.checks) {
      if (x.name == check_name) c = &x;
    }
    if (c == nullptr) continue;
    const std::string where = "check '" + check_name + "': ";
    std::set<std::string> seen;
    for (const std::string& ref : c->mitigate) {
      const auto colon = ref.find(':');
      const std::string kind = ref.substr(0, colon);
      if (colon == std::string::npos || kinds.action(kind) == nullptr) {
        r.error(where_src, where + "'mitigate': \"" + ref + "\" must be \"KIND:NAME\" with KIND " +
                               kind_list + " (e.g. \"restart:app\")");
        continue;
      }
      if (!seen.insert(ref).second) {
        r.error(where_src, where + "'mitigate' names \"" + ref + "\" twice");
        continue;
      }
      const auto a = cfg.actions.find(ref);
      if (a == cfg.actions.end()) {
        r.error(where_src, where + "'mitigate': no action \"" + ref + "\" (define it as [action." +
                               kind + "." + ref.substr(colon + 1) + "])");
        continue;
      }
      const ActionKindInfo* info = kinds.action(a->second.kind);
      if (info != nullptr && info->target == ActionTarget::address) {
        const JournalSettings* j = c->journal();
        if (j == nullptr || j->key.empty()) {
          r.error(where_src, where + "'mitigate': \"" + ref +
                                 "\" blocks the address a journal check captures: it needs "
                                 "probe = \"journal\" and key = \"NAME\" (a named capture of "
                                 "the IP)");
        }
      } else if (c->journal() != nullptr && !c->journal()->key.empty()) {
        r.error(where_src, where + "'mitigate': \"" + ref +
                               "\" acts on a service, but this check counts per '" +
                               c->journal()->key + "': only " +
                               join_names(address_kinds(kinds), ", ", " or ") +
                               " fits a per-address rule");
      }
    }
  }
}

}  // namespace vigil::config_internal
