// How each probe kind reads its keys of a [[check]] table. The top layer registers them
// (agent/load_config.h) and hands them to the config reader, which names no probe itself.
#pragma once

#include "agent/config/kinds.h"

namespace vigil {

// Adds http, unit and journal, in the order "known: ..." lists them.
void register_probe_config(ConfigKinds& kinds);

// journal_config.cpp: probe = "journal", with its rule over the whole config (issue 13).
ProbeKind journal_probe_config();

}  // namespace vigil
