// Every action kind, constructed over the daemon's context.
#pragma once

#include <map>
#include <memory>

#include "actions/action.h"

namespace vigil {

// One Action per ActionKind. The context's references must outlive the actions.
std::map<ActionKind, std::unique_ptr<Action>> make_actions(const ActionContext& ctx);

}  // namespace vigil
