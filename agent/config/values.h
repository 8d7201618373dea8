// Checks of values that several sections and kinds share: the URLs, names and HTTP headers of
// notifiers and [paging], and secrets (inline, or read from a file only its owner can read).
// Each reports through the ConfigReader, with the node's file:line:col.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/config/reader.h"

namespace vigil::config_internal {

// A [[notify]] name, a status page id: 1-64 letters, digits, '-' or '_' (they go into outbox
// targets, timeline fields and API URLs).
bool notify_name_ok(std::string_view v);
// An HTTP header name: an RFC 9110 token.
bool header_name_ok(std::string_view v);
bool iequals(std::string_view a, std::string_view b);

// An http(s) URL of a notifier. `endpoint`: the path vigil appends to this base URL, which the
// URL must not already end with ("" when the URL is used as is). False when reported.
bool notify_url(ConfigReader& r, const toml::node& n, const std::string& url, std::string_view key,
                std::string_view endpoint, const std::string& where);

// A secret inline (`key`) or read from a file (`key`_file).
struct Secret {
  std::string value;
  std::string file;        // "" when inline
  const toml::node* node;  // for the position of an error about the value
  std::string label;       // "'routing_key'" or "'routing_key_file' \"/etc/vigil/pd.key\""
};
// At most one of `key` and `key`_file. nullopt when neither is given or it is unusable
// (reported). No message ever contains the secret.
std::optional<Secret> read_secret(ConfigReader& r, const toml::table& t, const std::string& key,
                                  const std::string& where);
// As read_secret(), for a secret the kind cannot work without: a table with neither key is
// reported as "missing required key 'KEY_file' (or 'KEY'): WHAT".
std::optional<Secret> read_required_secret(ConfigReader& r, const toml::table& t,
                                           const std::string& key, std::string_view what,
                                           const std::string& where);
// A secret that goes into an HTTP header: no control characters.
bool header_safe(ConfigReader& r, const Secret& s, const std::string& where);

}  // namespace vigil::config_internal
