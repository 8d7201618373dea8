#include "agent/core/json.h"

#include <cstdint>
#include <string>

namespace vigil {

Result<nlohmann::json> parse_json(std::string_view text) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& err) {
    // what() is "[json.exception.parse_error.101] parse error at line 1, column 3: ..."; keep
    // the part a person reads.
    std::string why = err.what();
    if (const auto p = why.find("] "); p != std::string::npos) why.erase(0, p + 2);
    return make_error("bad JSON: " + why);
  } catch (const nlohmann::json::exception& err) {
    // Valid syntax nlohmann cannot hold, e.g. a number beyond a double (1e400): out_of_range.
    // Found by fuzz_blocks; before, it escaped every loader and stopped the daemon.
    std::string why = err.what();
    if (const auto p = why.find("] "); p != std::string::npos) why.erase(0, p + 2);
    return make_error("bad JSON: " + why);
  }
}

Result<nlohmann::json> parse_versioned_json(std::string_view text, int version) {
  Result<nlohmann::json> j = parse_json(text);
  if (!j) return j;
  if (!j->is_object()) return make_error("not a JSON object");
  const auto v = j->find("version");
  if (v == j->end() || !v->is_number_integer()) return make_error("no \"version\"");
  if (v->get<std::int64_t>() != version) return make_error("unknown version " + v->dump());
  return j;
}

}  // namespace vigil
