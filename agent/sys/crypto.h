// The digests vigil needs from libcrypto: a content hash (dedup keys of pages) and the
// HMAC-SHA256 signature of webhook pages.
#pragma once

#include <string>
#include <string_view>

namespace vigil::sys {

// Lowercase hex SHA-256 of `data`; "" only if libcrypto fails.
std::string sha256_hex(std::string_view data);

// Lowercase hex HMAC-SHA256 (RFC 2104), as GitHub-style webhook signatures use it; "" only if
// libcrypto fails.
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

}  // namespace vigil::sys
