// What is the same for every notifier kind: the page actions' names, render() and judge() as
// dispatchers to the kind's Notifier (notify/notifier.h, one file per kind), the backoff and the
// dedup key. Pure: no I/O, no clock.
#include "notify/page.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "agent/sys/crypto.h"
#include "notify/judge_util.h"
#include "notify/register.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

// PagerDuty's documented limit for dedup_key: 255 characters (bytes are never more).
constexpr std::size_t kDedupKeyMax = 255;
// Backoff: 1s doubling to 5 min (a central system down for long is retried every few minutes,
// not hammered); a Retry-After is honoured up to 1 h (a longer one is likely a bug, and a page
// delayed more than an hour has lost its point).
constexpr Duration kBackoffFirst = seconds(1);
constexpr Duration kBackoffCap = seconds(300);
constexpr Duration kRetryAfterCap = hours(1);

}  // namespace

std::string_view to_string(PageAction a) {
  switch (a) {
    case PageAction::trigger:
      return "trigger";
    case PageAction::update:
      return "update";
    case PageAction::acknowledge:
      return "acknowledge";
    case PageAction::resolve:
      return "resolve";
    case PageAction::change:
      return "change";
    case PageAction::heartbeat:
      return "heartbeat";
  }
  return "trigger";
}

std::optional<PageAction> parse_page_action(std::string_view text) {
  for (const PageAction a : {PageAction::trigger, PageAction::update, PageAction::acknowledge,
                             PageAction::resolve, PageAction::change, PageAction::heartbeat}) {
    if (to_string(a) == text) return a;
  }
  return std::nullopt;
}

Result<RenderedRequest> render(const NotifyConfig& n, std::size_t url_index, const Page& p,
                               const RenderContext& ctx) {
  const Notifier* kind = notifier_for(n.kind);
  if (kind == nullptr) return make_error("notifier " + n.name + ": unknown kind");
  return kind->render(n, url_index, p, ctx);
}

Verdict judge(const NotifyConfig& n, const Page& p, const DeliveryAnswer& a, TimePoint now) {
  const Notifier* kind = notifier_for(n.kind);
  return kind == nullptr ? judge_http(a, now, ConfigHint{}) : kind->judge(p, a, now);
}

Duration backoff(int attempts, double jitter01, std::optional<Duration> retry_after) {
  // 2^9 s = 512 s is past the cap already: stop doubling there (no overflow for any attempts).
  const int doublings = std::clamp(attempts, 1, 10) - 1;
  const Duration step = std::min(kBackoffFirst * (std::int64_t{1} << doublings), kBackoffCap);
  if (!(jitter01 >= 0.0)) jitter01 = 0.0;  // NaN too
  jitter01 = std::min(jitter01, 1.0);
  const Duration wait(static_cast<Duration::rep>(
      std::llround(static_cast<double>(step.count()) * (0.5 + 0.5 * jitter01))));
  if (retry_after && *retry_after > wait) return std::min(*retry_after, kRetryAfterCap);
  return wait;
}

std::string dedup_key(const Page& p) {
  std::string key = "vigil/" + p.host + "/" + p.incident;
  if (key.size() <= kDedupKeyMax) return key;
  // Too long (a very long host name): a cut prefix plus a hash of the whole key, so two
  // incidents never share a key (a plain cut could drop the incident id, folding a new failure
  // into an old alert) and the key stays the same across restarts.
  const std::string hash = sys::sha256_hex(key).substr(0, 16);
  std::string prefix = valid_utf8(key);
  prefix.resize(utf8_prefix(prefix, kDedupKeyMax - hash.size() - 1));
  return prefix + "~" + hash;
}

}  // namespace vigil
