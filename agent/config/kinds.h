// The kinds of probes, actions and notifiers as the config reader meets them: each kind tells
// which keys its tables take and parses its own keys through the ConfigReader. The config layer
// reads the tables every kind shares ([[check]]'s timing and routing, an action's guards, a
// notifier's routing) and names no kind itself; the plugin folders register theirs
// (probes/config.cpp, actions/config.cpp, notify/config.cpp) and the top layer hands them all
// to parse_config() (agent/load_config.h).
//
// Order matters for messages: "known: ..." lists and "did you mean" follow registration order.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/config/reader.h"

namespace vigil {

// What the [[check]] tables leave for the checks across sections, which need the whole file.
struct CheckSources {
  std::vector<std::pair<std::string, toml::source_region>> ladders;  // check, its `mitigate`
  // Journal checks: their table and their `identifier` key, if any (for the provenance rule).
  std::map<std::string, std::pair<toml::source_region, std::optional<toml::source_region>>>
      journals;
};

// Whether a probe takes the keys of one request with a deadline: timeout, confirm re-probes and
// latency thresholds. A unit state or a journal line has no request to time.
enum class ProbeTiming { none, request };

struct ProbeKind {
  std::string_view name;  // probe = "http"
  ProbeTiming timing = ProbeTiming::none;
  // The probe's own keys, in the order "did you mean" prefers them. checks.cpp adds those every
  // check takes (and, with timing = request, timeout, confirm and the latency thresholds).
  std::vector<std::string_view> keys = {};
  // The probe's own keys into c.settings, after the keys every check takes were read.
  void (*parse)(config_internal::ConfigReader& r, const toml::table& t, CheckConfig& c,
                const std::string& where, CheckSources& sources) = nullptr;
  // A rule over the whole config for this probe's checks, run once everything is read.
  void (*check_across)(config_internal::ConfigReader& r, const Config& cfg,
                       const CheckSources& sources) = nullptr;
};

// What an action aims at: a service (a unit, a deploy directory) or the address a per-address
// journal check captured. A ladder step must fit its check.
enum class ActionTarget { service, address };

struct ActionKindInfo {
  std::string_view name;  // [action.NAME.x], "NAME:x" in ladders
  ActionKind kind = ActionKind::restart;
  ActionTarget target = ActionTarget::service;
  // Whether the health check's re-run verifies it (verify_within, a cooldown before the next
  // step). False for an action that verifies itself: a block is done when its rule is in place.
  bool verified_by_health = true;
  // The kind's own keys; mitigation.cpp adds the guards every action takes.
  std::vector<std::string_view> keys = {};
  // The kind's own keys, read before the guards.
  void (*parse)(config_internal::ConfigReader& r, const toml::table& t, ActionConfig& a,
                const std::string& where) = nullptr;
};

struct NotifierKindInfo {
  std::string_view name;  // kind = "pagerduty"
  NotifierKind kind = NotifierKind::webhook;
  // The keys this kind takes besides those every notifier takes, in "did you mean" order.
  std::vector<std::string_view> keys = {};
  // Said after "'KEY' is only for kind NAME" when a key only this kind takes is given to another
  // one, e.g. alertmanager's 'urls': " (the peers of a cluster): kind {kind} takes one 'url'";
  // "{kind}" stands for the kind it was given to.
  std::map<std::string_view, std::string_view> misplaced_hint = {};
  // A key of other kinds that this one refuses with a message of its own (all after WHERE).
  std::map<std::string_view, std::string_view> refused = {};
  // "" or what this kind is the one to use for when none fits ("a chat tool or a custom
  // receiver"), said when the kind given is unknown.
  std::string_view fallback_for = {};
  // Defaults that differ by kind, set before the table is read.
  Severity severity = Severity::sev3;
  int max_per_minute = 60;
  // The kind's own keys (its URL or URLs, its secret, ...).
  void (*parse)(config_internal::ConfigReader& r, const toml::table& t, NotifyConfig& n,
                const std::string& where) = nullptr;
};

struct ConfigKinds {
  std::vector<ProbeKind> probes;
  std::vector<ActionKindInfo> actions;
  std::vector<NotifierKindInfo> notifiers;

  const ProbeKind* probe(std::string_view name) const;
  const ActionKindInfo* action(std::string_view name) const;
  const ActionKindInfo* action(ActionKind kind) const;
  const NotifierKindInfo* notifier(std::string_view name) const;
  const NotifierKindInfo* notifier(NotifierKind kind) const;
  // The names in registration order, for "known: ..." messages.
  std::vector<std::string_view> probe_names() const;
  std::vector<std::string_view> action_names() const;
  std::vector<std::string_view> notifier_names() const;
};

// "a, b or c" (sep ", ", last " or "), each name between `quote`s.
std::string join_names(const std::vector<std::string_view>& names, std::string_view sep,
                       std::string_view last, std::string_view quote = "");

// Parses and validates TOML text with these kinds; `path` is used in error messages only.
LoadResult parse_config(std::string_view text, const std::string& path, const ConfigKinds& kinds);
// Reads and validates a file. An unreadable file is one error at line 0.
LoadResult load_config_file(const std::string& path, const ConfigKinds& kinds);

}  // namespace vigil
