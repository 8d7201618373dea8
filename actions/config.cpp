// The config of the action kinds: each one's own keys of an [action.KIND.NAME] table (the guards
// every action takes are read by agent/config/mitigation.cpp), and their registration.
#include "actions/config.h"

#include "agent/config/reader.h"

namespace vigil {

namespace {

using config_internal::ConfigReader;
using config_internal::UnitNamePatterns;

// The unit a restart or a rollback acts on, as systemd names it.
void unit_key(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  if (auto u = r.get_string(t, "unit", where)) {
    r.unit_names(t, {*u}, where, UnitNamePatterns::no);
    a.unit = *u;
  }
}

void job_timeout(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  if (auto d = r.get_duration(t, "job_timeout", Duration(1'000), where)) a.job_timeout = *d;
}

// [action.restart.NAME]: a unit restarted through systemd (the unit defaults to NAME.service).
void restart(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  unit_key(r, t, a, where);
  if (t.get("unit") == nullptr) {
    a.unit = a.name.find('.') == std::string::npos ? a.name + ".service" : a.name;
  }
  if (auto b = r.get_bool(t, "reset_failed", where)) a.reset_failed = *b;
  job_timeout(r, t, a, where);
}

// [action.rollback.NAME]: the release symlink of `dir` pointed back, then `unit` restarted.
void rollback(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  unit_key(r, t, a, where);
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
  if (auto within = r.get_duration(t, "deployed_within", Duration(1'000), where)) {
    a.deployed_within = *within;
  }
  job_timeout(r, t, a, where);
}

// [action.block.NAME]: the address a journal check captured, blocked with ufw for a while that
// grows for an address blocked again.
void block(ConfigReader& r, const toml::table& t, ActionConfig& a, const std::string& where) {
  if (auto d = r.get_duration(t, "block_for", Duration(1'000), where)) a.block_for = *d;
  if (auto d = r.get_duration(t, "max_block_for", Duration(1'000), where)) a.max_block_for = *d;
  if (a.max_block_for < a.block_for) {
    const toml::node* n = t.get("max_block_for") ? t.get("max_block_for") : t.get("block_for");
    r.error(n->source(), where + "'max_block_for' (" + format_duration(a.max_block_for) +
                             ") must not be shorter than 'block_for' (" +
                             format_duration(a.block_for) + ")");
  }
  if (auto b = r.get_bool(t, "kill_connections", where)) a.kill_connections = *b;
}

}  // namespace

void register_action_config(ConfigKinds& kinds) {
  kinds.actions.push_back(ActionKindInfo{
      .name = "restart",
      .kind = ActionKind::restart,
      .keys = {"unit", "reset_failed", "job_timeout"},
      .parse = restart,
  });
  kinds.actions.push_back(ActionKindInfo{
      .name = "rollback",
      .kind = ActionKind::rollback,
      .keys = {"dir", "unit", "job_timeout", "deployed_within"},
      .parse = rollback,
  });
  kinds.actions.push_back(ActionKindInfo{
      .name = "block",
      .kind = ActionKind::block,
      .target = ActionTarget::address,
      .verified_by_health = false,
      .keys = {"block_for", "max_block_for", "kill_connections"},
      .parse = block,
  });
}

}  // namespace vigil
