// The secrets of notifiers (routing keys, API keys, HMAC keys): inline, or read from a file
// that grants nothing to group or others. No message ever contains a secret.
#include <algorithm>

#include "agent/config/reader.h"
#include "agent/config/sections.h"
#include "agent/core/result.h"
#include "agent/sys/files.h"

namespace vigil::config_internal {

std::optional<Secret> read_secret(ConfigReader& r, const toml::table& t, const std::string& key,
                                  const std::string& where) {
  const std::string file_key = key + "_file";
  const toml::node* inline_node = t.get(key);
  const toml::node* file_node = t.get(file_key);
  if (inline_node != nullptr && file_node != nullptr) {
    r.error(file_node->source(),
            where + "give either '" + key + "' or '" + file_key + "', not both");
    return std::nullopt;
  }
  if (inline_node != nullptr) {
    auto v = r.get_string(t, key, where);
    if (!v) return std::nullopt;
    if (v->empty()) {
      r.error(inline_node->source(), where + "'" + key + "' is empty");
      return std::nullopt;
    }
    return Secret{std::move(*v), "", inline_node, "'" + key + "'"};
  }
  if (file_node == nullptr) return std::nullopt;
  auto path = r.get_string(t, file_key, where);
  if (!path) return std::nullopt;
  if (path->empty() || path->front() != '/') {
    r.error(file_node->source(),
            where + "'" + file_key + "' must be an absolute path, not \"" + *path + "\"");
    return std::nullopt;
  }
  const std::string label = "'" + file_key + "' \"" + *path + "\"";
  Result<std::string> content = sys::read_secret_file(*path);
  if (!content) {
    r.error(file_node->source(), where + label + content.error().message);
    return std::nullopt;
  }
  return Secret{std::move(*content), *path, file_node, label};
}

bool header_safe(ConfigReader& r, const Secret& s, const std::string& where) {
  const bool ok = std::none_of(s.value.begin(), s.value.end(),
                               [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; });
  if (!ok) {
    r.error(s.node->source(), where + s.label +
                                  " contains a line break or another control character: it "
                                  "goes into an HTTP header");
  }
  return ok;
}

}  // namespace vigil::config_internal
