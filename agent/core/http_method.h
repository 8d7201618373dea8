// The HTTP methods vigil speaks: checks use get and head; pages also post and patch.
#pragma once

namespace vigil {

enum class HttpMethod { get, head, post, patch };

}  // namespace vigil
