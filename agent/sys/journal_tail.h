// The last lines a unit wrote to the journal: evidence for a page ("what did it say before it
// died?"). A short synchronous read of the newest entries, done only when a finding needs it.
#pragma once

#include <string>
#include <vector>

namespace vigil::sys {

// Up to `lines` newest MESSAGEs of `unit` (its own and systemd's about it), oldest first, each
// prefixed with its time ("12:03:04 "). Empty if the journal cannot be read.
std::vector<std::string> journal_tail(const std::string& unit, int lines);

}  // namespace vigil::sys
