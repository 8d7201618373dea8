// How findings and observations read to a human: one line per state change in logs, a short
// block for `vigil test-check`.
#pragma once

#include <string>

#include "agent/config/config.h"
#include "agent/core/observation.h"

namespace vigil {

// "app: SEV1 firing: connection refused: ... [GET http://...]"
std::string format_finding(const Finding& f);
// Several lines: verdict, status, timing split, error, body head.
std::string format_observation(const Observation& obs);
// One line describing a check's configuration (for check-config).
std::string describe_check(const CheckConfig& c);
// Logs a finding once, with VIGIL_CHECK / VIGIL_SEVERITY / VIGIL_STATE / MESSAGE_ID fields.
void log_finding(const Finding& f);

}  // namespace vigil
