// Maps a check's `probe = "..."` kind to its factory. Explicit registration, no static tricks.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "probes/probe.h"

namespace vigil {

// Builds the probe for a validated check; nullptr if its kind is unknown.
std::shared_ptr<Probe> make_probe(ProbeContext ctx, const CheckConfig& check);

}  // namespace vigil
