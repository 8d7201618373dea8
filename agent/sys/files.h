// Small whole-file reads for vigil's own state files (JSON), bounded so a corrupt or hostile file
// cannot make the agent allocate without limit.
#pragma once

#include <cstddef>
#include <string>

#include "agent/result.h"

namespace vigil::sys {

// The whole of `path`. Errors: it cannot be opened or read (with errno text), or it is larger
// than `max_bytes`.
Result<std::string> read_small_file(const std::string& path, std::size_t max_bytes);

}  // namespace vigil::sys
