// JSON text from vigil's own files (timelines, state files), parsed with a clear error instead of
// an exception: "bad JSON: parse error at line 1, column 3: ...".
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "agent/core/result.h"

namespace vigil {

// Any JSON value. Error: "bad JSON: <where and why>".
Result<nlohmann::json> parse_json(std::string_view text);
// A JSON object {"version": N, ...} with N == `version`. Errors: parse_json()'s, "not a JSON
// object", "no \"version\"", "unknown version N".
Result<nlohmann::json> parse_versioned_json(std::string_view text, int version);

}  // namespace vigil
