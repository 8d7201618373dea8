// The rollback action (switch a release symlink back, then restart).
#pragma once

#include <memory>

#include "actions/action.h"

namespace vigil {

std::unique_ptr<Action> make_rollback_action(const ActionContext& ctx);

}  // namespace vigil
