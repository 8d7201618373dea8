// The parsers of vigil.toml's sections, each reading its own tables through the ConfigReader,
// and the checks across sections that config.cpp's document walk runs once everything is read.
//
// Internal to vigil_config: only agent/config/*.cpp include it. The kinds' own keys are parsed
// by the plugin folders, through kinds.h.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/config/config.h"
#include "agent/config/kinds.h"
#include "agent/config/reader.h"

namespace vigil::config_internal {

// checks.cpp: [[check]] tables: the keys every check takes, then its probe kind's.
void parse_checks(ConfigReader& r, const toml::node& node, const ConfigKinds& kinds,
                  std::vector<CheckConfig>& out, CheckSources& sources);

// mitigation.cpp: [mitigation], [action.KIND.NAME] (each kind's keys, then the guards every
// action takes), and the checks' ladders against them.
void parse_mitigation(ConfigReader& r, const toml::node& node, MitigationSettings& out);
void parse_actions(ConfigReader& r, const toml::node& node, const ConfigKinds& kinds,
                   std::map<std::string, ActionConfig>& out);
void check_ladders(ConfigReader& r, const Config& cfg, const ConfigKinds& kinds,
                   const CheckSources& sources);

// notify.cpp: [paging] and the [[notify]] tables. parse_notifiers() returns the names of the
// notifiers whose kind is unknown (already reported), so that no escalation step reports them
// a second time.
void parse_paging(ConfigReader& r, const toml::node& node, PagingSettings& out);
std::set<std::string> parse_notifiers(ConfigReader& r, const toml::node& node,
                                      const ConfigKinds& kinds, std::vector<NotifyConfig>& out);

// escalation.cpp: [[escalation]] chains, after the notifiers their steps name.
void parse_escalations(ConfigReader& r, const toml::node& node, Config& cfg,
                       const std::set<std::string>& broken_notify);

// fleet.cpp: [fleet], and that every action with a fleet cap has a fleet to ask.
void parse_fleet(ConfigReader& r, const toml::node& node, FleetSettings& out);
void check_fleet_caps(ConfigReader& r, const Config& cfg, const toml::table& root);

}  // namespace vigil::config_internal
