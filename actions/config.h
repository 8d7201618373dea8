// How each action kind reads its keys of an [action.KIND.NAME] table. The top layer registers
// them (agent/load_config.h) and hands them to the config reader, which names no kind itself.
#pragma once

#include "agent/config/kinds.h"

namespace vigil {

// Adds restart, rollback and block, in the order messages list them.
void register_action_config(ConfigKinds& kinds);

}  // namespace vigil
