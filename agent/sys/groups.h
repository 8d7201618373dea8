// Group names to ids and user ids to names, through NSS (getgrnam_r, getpwuid_r).
#pragma once

#include <optional>
#include <string>

namespace vigil::sys {

// The id of group `name`, or nullopt when there is no such group (or NSS cannot say).
std::optional<unsigned> group_id(const std::string& name);

// The name of user `uid`, or nullopt when there is none (or NSS cannot say).
std::optional<std::string> user_name(unsigned uid);

}  // namespace vigil::sys
