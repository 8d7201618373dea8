// vigil.toml with the kinds vigil is built with: the probes, actions and notifiers of the plugin
// folders, registered here (the top layer, the one that sees them all) and handed to the config
// reader of agent/config/, which names no kind itself.
#pragma once

#include <string>
#include <string_view>

#include "agent/config/kinds.h"

namespace vigil {

// probes/, then actions/, then notify/: each folder's kinds in its own order.
const ConfigKinds& builtin_kinds();

// Parses and validates TOML text; `path` is used in error messages only.
LoadResult parse_config(std::string_view text, const std::string& path);
// Reads and validates a file. An unreadable file is one error at line 0.
LoadResult load_config_file(const std::string& path);

}  // namespace vigil
