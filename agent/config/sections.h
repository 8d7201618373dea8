// The parsers of vigil.toml's sections, each reading its own tables through the ConfigReader,
// and the checks across sections that config.cpp's document walk runs once everything is read.
//
// Internal to vigil_config, like reader.h (toml++ is a PRIVATE dependency): only
// agent/config/*.cpp include it.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/config/reader.h"

namespace vigil::config_internal {

// What the [[check]] tables leave for the checks across sections, which need the whole file.
struct CheckSources {
  std::vector<std::pair<std::string, toml::source_region>> ladders;  // check, its `mitigate`
  // Journal checks: their table and their `identifier` key, if any (for check_provenance()).
  std::map<std::string, std::pair<toml::source_region, std::optional<toml::source_region>>>
      journals;
};

// checks.cpp: [[check]] tables, each with its probe's keys.
void parse_checks(ConfigReader& r, const toml::node& node, std::vector<CheckConfig>& out,
                  CheckSources& sources);

// journal.cpp: a journal check's keys (probe = "journal"), and issue 13's rule over the whole
// config: a journal check that can act is aimed by what journald records itself.
void parse_journal(ConfigReader& r, const toml::table& t, CheckConfig& c, const std::string& where,
                   CheckSources& sources);
void check_provenance(ConfigReader& r, const Config& cfg, const CheckSources& sources);

// mitigation.cpp: [mitigation], [action.KIND.NAME], and the checks' ladders against them.
void parse_mitigation(ConfigReader& r, const toml::node& node, MitigationSettings& out);
void parse_actions(ConfigReader& r, const toml::node& node,
                   std::map<std::string, ActionConfig>& out);
void check_ladders(ConfigReader& r, const Config& cfg, const CheckSources& sources);

// notify.cpp: [paging] and the [[notify]] tables. parse_notifiers() returns the names of the
// notifiers whose kind is unknown (already reported), so that no escalation step reports them
// a second time.
void parse_paging(ConfigReader& r, const toml::node& node, PagingSettings& out);
std::set<std::string> parse_notifiers(ConfigReader& r, const toml::node& node,
                                      std::vector<NotifyConfig>& out);

// secret.cpp: a notifier's key, inline or read from a file only its owner can read.
struct Secret {
  std::string value;
  std::string file;        // "" when inline
  const toml::node* node;  // for the position of an error about the value
  std::string label;       // "'routing_key'" or "'routing_key_file' \"/etc/vigil/pd.key\""
};
// A secret inline (`key`) or read from a file (`key`_file): at most one of them. nullopt when
// neither is given or it is unusable (reported). No message ever contains the secret.
std::optional<Secret> read_secret(ConfigReader& r, const toml::table& t, const std::string& key,
                                  const std::string& where);
// A secret that goes into an HTTP header: no control characters.
bool header_safe(ConfigReader& r, const Secret& s, const std::string& where);

// escalation.cpp: [[escalation]] chains, after the notifiers their steps name.
void parse_escalations(ConfigReader& r, const toml::node& node, Config& cfg,
                       const std::set<std::string>& broken_notify);

}  // namespace vigil::config_internal
