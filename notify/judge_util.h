// The HTTP answer rules every notifier kind shares (internal to notify/): 2xx, the 4xx that are
// permanent, the ones a reload fixes, retries and Retry-After. A kind calls judge_http() and adds
// what its own answers say (PagerDuty's error list, Statuspage's incident id).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "agent/core/observation.h"
#include "notify/page.h"

namespace vigil {

// Why 200 bytes: enough for any receiver's error message, short enough for one log line.
constexpr std::size_t kWhyBodyMax = 200;

// What an operator should look at for a 4xx that only a config change fixes: `auth` for 401 and
// 403, `other` for the rest.
struct ConfigHint {
  std::string_view auth = "check the credentials (headers, token in the url)";
  std::string_view other = "check the url";
};

// 400/413/422: the request itself is wrong, sending it again gets the same answer.
bool rejected(long status);

// `why`, then ": " and the first bytes of `body` as one line, when there are any.
std::string with_excerpt(std::string why, const std::string& body);

// Retry-After: delay-seconds or an HTTP-date (relative to `now`; a past date is 0). Anything
// else is ignored (nullopt), as RFC 9110 lets a recipient do.
std::optional<Duration> parse_retry_after(std::string_view text, TimePoint now);

// The rules of judge() in notify/page.h, with the kind's `hint` for a config mistake.
Verdict judge_http(const DeliveryAnswer& a, TimePoint now, const ConfigHint& hint);

}  // namespace vigil
