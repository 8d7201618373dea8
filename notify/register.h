// Every notifier kind. Explicit registration, no static tricks, like probes/ and actions/.
#pragma once

#include <map>
#include <memory>

#include "notify/notifier.h"

namespace vigil {

// One Notifier per NotifierKind.
std::map<NotifierKind, std::unique_ptr<Notifier>> make_notifiers();

// The notifier of kind `k`, from one make_notifiers() made on first use (notifiers hold no
// state, so every caller shares them); nullptr for a kind that has none.
const Notifier* notifier_for(NotifierKind k);

}  // namespace vigil
