#include "actions/register.h"

#include "actions/block_action.h"
#include "actions/restart_action.h"
#include "actions/rollback_action.h"

namespace vigil {

std::map<ActionKind, std::unique_ptr<Action>> make_actions(const ActionContext& ctx) {
  std::map<ActionKind, std::unique_ptr<Action>> out;
  out.emplace(ActionKind::restart, make_restart_action(ctx));
  out.emplace(ActionKind::rollback, make_rollback_action(ctx));
  out.emplace(ActionKind::block, make_block_action(ctx));
  return out;
}

}  // namespace vigil
