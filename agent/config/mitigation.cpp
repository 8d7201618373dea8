// [mitigation] (the guards of every action), the [action.KIND.NAME] tables with each kind's
// keys, and the check across sections that every ladder step names an action that fits its
// check.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/core/ip.h"

namespace vigil::config_internal {

namespace {

// The keys of one [action.KIND.NAME] table, as its kind takes them.
void action(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  switch (a.kind) {
    case ActionKind::restart:
      r.check_keys(t,
                   {"unit", "reset_failed", "job_timeout", "max_runs", "per", "cooldown",
                    "verify_within", "dry_run"},
                   where);
      break;
    case ActionKind::rollback:
      r.check_keys(t,
                   {"dir", "unit", "job_timeout", "max_runs", "per", "cooldown", "verify_within",
                    "dry_run", "deployed_within"},
                   where);
      break;
    case ActionKind::block:
      r.check_keys(t,
                   {"block_for", "max_block_for", "kill_connections", "max_runs", "per", "cooldown",
                    "dry_run"},
                   where);
      // A block is verified by its rule being in place, not by waiting for health.
      a.cooldown = Duration::zero();
      break;
  }
  if (a.kind != ActionKind::block) {
    if (auto u = r.get_string(t, "unit", where)) {
      r.unit_names(t, {*u}, where, UnitNamePatterns::no);
      a.unit = *u;
    } else if (a.kind == ActionKind::restart && t.get("unit") == nullptr) {
      // [action.restart.nginx] with no unit restarts nginx.service.
      a.unit = a.name.find('.') == std::string::npos ? a.name + ".service" : a.name;
    }
  }
  if (a.kind == ActionKind::rollback) {
    const toml::node* d = t.get("dir");
    if (d == nullptr) {
      r.error(t.source(), where +
                              "missing required key 'dir' (the directory holding releases/ "
                              "and the current symlink, e.g. \"/srv/app\")");
    } else if (auto v = r.get_string(t, "dir", where)) {
      if (v->empty() || v->front() != '/' || v->find("/../") != std::string::npos ||
          (v->size() >= 3 && v->compare(v->size() - 3, 3, "/..") == 0)) {
        r.error(d->source(),
                where + "'dir' must be an absolute path without '..', not \"" + *v + "\"");
      } else {
        a.dir = *v;
      }
    }
  }
  if (auto b = r.get_bool(t, "reset_failed", where)) a.reset_failed = *b;
  if (auto d = r.get_duration(t, "deployed_within", Duration(1'000), where)) {
    a.deployed_within = *d;
  }
  if (auto d = r.get_duration(t, "job_timeout", Duration(1'000), where)) a.job_timeout = *d;
  if (auto d = r.get_duration(t, "block_for", Duration(1'000), where)) a.block_for = *d;
  if (auto d = r.get_duration(t, "max_block_for", Duration(1'000), where)) a.max_block_for = *d;
  if (a.max_block_for < a.block_for) {
    const toml::node* n = t.get("max_block_for") ? t.get("max_block_for") : t.get("block_for");
    r.error(n->source(), where + "'max_block_for' (" + format_duration(a.max_block_for) +
                             ") must not be shorter than 'block_for' (" +
                             format_duration(a.block_for) + ")");
  }
  if (auto b = r.get_bool(t, "kill_connections", where)) a.kill_connections = *b;
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
  if (auto d = r.get_duration(t, "verify_within", Duration(1'000), where)) a.verify_within = *d;
  if (auto b = r.get_bool(t, "dry_run", where)) a.dry_run = *b ? DryRun::yes : DryRun::no;
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
void parse_actions(ConfigReader& r, const toml::node& node,
                   std::map<std::string, ActionConfig>& out) {
  const auto* t = node.as_table();
  if (t == nullptr) {
    r.error(node.source(), "'action' must be tables like [action.restart.app]");
    return;
  }
  r.check_keys(*t, {"restart", "rollback", "block"}, "[action]: ");
  for (auto&& [kind_key, kind_node] : *t) {
    const std::string kind_name(kind_key.str());
    ActionKind kind = ActionKind::restart;
    if (kind_name == "rollback")
      kind = ActionKind::rollback;
    else if (kind_name == "block")
      kind = ActionKind::block;
    else if (kind_name != "restart")
      continue;  // reported by check_keys
    const auto* kinds = kind_node.as_table();
    if (kinds == nullptr) {
      r.error(kind_node.source(),
              "'action." + kind_name + "' must hold tables like [action." + kind_name + ".NAME]");
      continue;
    }
    for (auto&& [name_key, n] : *kinds) {
      ActionConfig a;
      a.kind = kind;
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
      action(r, *at, a, where);
      out[a.ref()] = std::move(a);
    }
  }
}

// Every ladder step names a defined action that fits the check.
void check_ladders(ConfigReader& r, const Config& cfg, const CheckSources& sources) {
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
      if (colon == std::string::npos ||
          (kind != "restart" && kind != "rollback" && kind != "block")) {
        r.error(where_src, where + "'mitigate': \"" + ref +
                               "\" must be \"KIND:NAME\" with KIND restart, rollback or block "
                               "(e.g. \"restart:app\")");
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
      if (a->second.kind == ActionKind::block) {
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
                               c->journal()->key + "': only block fits a per-address rule");
      }
    }
  }
}

}  // namespace vigil::config_internal
