// Text from the journal or the network, made safe for a terminal (issue 13).
#pragma once

#include <string>
#include <string_view>

namespace vigil {

// `text` with every byte a terminal could act on shown instead of sent: \n, \t, \r, C0 controls
// and DEL as \xNN (ESC is \x1b, so no ANSI sequence can clear a screen or retitle a window),
// C1 controls (U+0080-U+009F, e.g. the 8-bit CSI) and bytes that are not UTF-8 as \xNN each,
// and the bidirectional overrides that reorder what a reader sees ("Trojan Source": U+202A-202E,
// U+2066-2069) as \u{NNNN}. Valid UTF-8 otherwise passes unchanged.
std::string visible(std::string_view text);

}  // namespace vigil
