// Base64 (RFC 4648, standard alphabet, padded), for the byte fields of etcd's JSON gateway.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace vigil {

std::string base64_encode(std::string_view bytes);
// nullopt for anything but canonical padded base64 (a hostile or broken server's answer).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace vigil
