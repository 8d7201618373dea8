// The restart action (a D-Bus RestartUnit job), also the second half of a rollback.
#pragma once

#include <memory>
#include <string>

#include "actions/action.h"

namespace vigil {

// Restarts `unit` for action `a` (its reset_failed and job_timeout), unless decide_restart()
// refuses (ActionResult::refused, nothing touched).
void restart_unit(const ActionContext& ctx, const ActionConfig& a, const std::string& unit,
                  Action::Done done);

std::unique_ptr<Action> make_restart_action(const ActionContext& ctx);

}  // namespace vigil
