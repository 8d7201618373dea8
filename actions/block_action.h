// The block action (a ufw deny rule for one address, with expiry handled by the daemon).
#pragma once

#include <memory>

#include "actions/action.h"

namespace vigil {

std::unique_ptr<Action> make_block_action(const ActionContext& ctx);

}  // namespace vigil
