// errno as text, for error messages on runtime paths. One definition for every file that turns
// a failed system call (errno) or a libsystemd return value (-errno) into words.
#pragma once

#include <cstring>
#include <string>

namespace vigil::sys {

// strerror() of `e`; a negative value (libsystemd's -errno convention) is read as its opposite.
inline std::string errno_text(int e) { return std::strerror(e < 0 ? -e : e); }

}  // namespace vigil::sys
