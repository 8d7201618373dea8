#include "agent/load_config.h"

#include "actions/config.h"
#include "notify/config.h"
#include "probes/config.h"

namespace vigil {

const ConfigKinds& builtin_kinds() {
  static const ConfigKinds kinds = [] {
    ConfigKinds k;
    register_probe_config(k);
    register_action_config(k);
    register_notifier_config(k);
    return k;
  }();
  return kinds;
}

LoadResult parse_config(std::string_view text, const std::string& path) {
  return parse_config(text, path, builtin_kinds());
}

LoadResult load_config_file(const std::string& path) {
  return load_config_file(path, builtin_kinds());
}

}  // namespace vigil
