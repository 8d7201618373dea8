// How each notifier kind reads its keys of a [[notify]] table. The top layer registers them
// (agent/load_config.h) and hands them to the config reader, which names no kind itself.
#pragma once

#include "agent/config/kinds.h"

namespace vigil {

// Adds alertmanager, pagerduty, oncall, statuspage and webhook, in the order messages list them.
void register_notifier_config(ConfigKinds& kinds);

}  // namespace vigil
