// Group names to ids, through NSS (getgrnam_r).
#pragma once

#include <optional>
#include <string>

namespace vigil::sys {

// The id of group `name`, or nullopt when there is no such group (or NSS cannot say).
std::optional<unsigned> group_id(const std::string& name);

}  // namespace vigil::sys
