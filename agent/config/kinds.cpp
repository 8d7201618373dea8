// The registry of kinds (kinds.h): lookups by name and by enum, and the "a, b or c" lists of
// their names that messages quote.
#include "agent/config/kinds.h"

#include <algorithm>

namespace vigil {

namespace {

template <typename T, typename Key, typename Field>
const T* find_kind(const std::vector<T>& kinds, const Key& key, Field field) {
  const auto it =
      std::find_if(kinds.begin(), kinds.end(), [&](const T& k) { return k.*field == key; });
  return it == kinds.end() ? nullptr : &*it;
}

template <typename T>
std::vector<std::string_view> names_of(const std::vector<T>& kinds) {
  std::vector<std::string_view> out;
  out.reserve(kinds.size());
  for (const T& k : kinds) out.push_back(k.name);
  return out;
}

}  // namespace

const ProbeKind* ConfigKinds::probe(std::string_view name) const {
  return find_kind(probes, name, &ProbeKind::name);
}

const ActionKindInfo* ConfigKinds::action(std::string_view name) const {
  return find_kind(actions, name, &ActionKindInfo::name);
}

const ActionKindInfo* ConfigKinds::action(ActionKind kind) const {
  return find_kind(actions, kind, &ActionKindInfo::kind);
}

const NotifierKindInfo* ConfigKinds::notifier(std::string_view name) const {
  return find_kind(notifiers, name, &NotifierKindInfo::name);
}

const NotifierKindInfo* ConfigKinds::notifier(NotifierKind kind) const {
  return find_kind(notifiers, kind, &NotifierKindInfo::kind);
}

std::vector<std::string_view> ConfigKinds::probe_names() const { return names_of(probes); }
std::vector<std::string_view> ConfigKinds::action_names() const { return names_of(actions); }
std::vector<std::string_view> ConfigKinds::notifier_names() const { return names_of(notifiers); }

std::string join_names(const std::vector<std::string_view>& names, std::string_view sep,
                       std::string_view last, std::string_view quote) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? last : sep;
    out += quote;
    out += names[i];
    out += quote;
  }
  return out;
}

}  // namespace vigil
