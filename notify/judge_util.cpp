// The HTTP answer rules every notifier kind shares (notify/judge_util.h).
#include "notify/judge_util.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>

#include "notify/render_util.h"

namespace vigil {
namespace {

using std::chrono::seconds;

// The first bytes of an answer's body as one line, without the trailing newline most have.
std::string body_excerpt(const std::string& body) {
  std::string v = one_line(body, kWhyBodyMax);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

std::optional<int> two_digits(std::string_view s, std::size_t at) {
  if (at + 2 > s.size()) return std::nullopt;
  const char a = s[at], b = s[at + 1];
  if (a < '0' || a > '9' || b < '0' || b > '9') return std::nullopt;
  return (a - '0') * 10 + (b - '0');
}

// IMF-fixdate (RFC 9110 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT".
std::optional<TimePoint> parse_http_date(std::string_view s) {
  using namespace std::chrono;
  if (s.size() != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s[25] != ' ' || s.substr(26) != "GMT") {
    return std::nullopt;
  }
  static constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                                            "Fri", "Sat", "Sun"};
  if (std::find(kDays.begin(), kDays.end(), s.substr(0, 3)) == kDays.end()) return std::nullopt;
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto mon = std::find(kMonths.begin(), kMonths.end(), s.substr(8, 3));
  if (mon == kMonths.end()) return std::nullopt;
  const auto dd = two_digits(s, 5), y1 = two_digits(s, 12), y2 = two_digits(s, 14);
  const auto hh = two_digits(s, 17), mm = two_digits(s, 20), ss = two_digits(s, 23);
  if (!dd || !y1 || !y2 || !hh || !mm || !ss) return std::nullopt;
  if (*hh > 23 || *mm > 59 || *ss > 60) return std::nullopt;  // 60: a leap second
  const year_month_day ymd{year(*y1 * 100 + *y2),
                           month(static_cast<unsigned>(mon - kMonths.begin() + 1)),
                           day(static_cast<unsigned>(*dd))};
  if (!ymd.ok()) return std::nullopt;
  return sys_days(ymd) + hours(*hh) + minutes(*mm) + seconds(*ss);
}

}  // namespace

bool rejected(long status) { return status == 400 || status == 413 || status == 422; }

std::string with_excerpt(std::string why, const std::string& body) {
  const std::string excerpt = body_excerpt(body);
  return excerpt.empty() ? why : why + ": " + excerpt;
}

std::optional<Duration> parse_retry_after(std::string_view text, TimePoint now) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Saturate: anything beyond ~31 years is "very long", and backoff() caps it at 1 h anyway.
    std::int64_t secs = 0;
    for (const char c : text) {
      secs = std::min<std::int64_t>(secs * 10 + (c - '0'), 1'000'000'000);
    }
    return Duration(seconds(secs));
  }
  const auto date = parse_http_date(text);
  if (!date) return std::nullopt;
  if (*date <= now) return Duration(0);
  return std::chrono::duration_cast<Duration>(*date - now);
}

Verdict judge_http(const DeliveryAnswer& a, TimePoint now, const ConfigHint& hint) {
  Verdict v;
  if (!a.transport_ok) {
    v.kind = Verdict::Kind::retry;
    v.why = a.error.empty() ? "no answer" : one_line(a.error, kWhyBodyMax);
    return v;
  }
  const std::string http = "HTTP " + std::to_string(a.status);
  if (a.status >= 200 && a.status <= 299) {
    v.kind = Verdict::Kind::delivered;
    v.why = "delivered (" + http + ")";
    return v;
  }
  if (rejected(a.status)) {
    v.kind = Verdict::Kind::permanent;
    v.why = with_excerpt(http, a.body);
    return v;
  }
  v.kind = Verdict::Kind::retry;
  if (a.status == 408 || a.status == 429 || (a.status >= 500 && a.status <= 599)) {
    v.why = with_excerpt(http, a.body);
  } else if (a.status >= 400 && a.status <= 499) {
    // 401/403/404...: a config mistake an operator fixes by a reload; never dropped meanwhile.
    const std::string_view look = a.status == 401 || a.status == 403 ? hint.auth : hint.other;
    v.why = with_excerpt(http + ": probably a config mistake, " + std::string(look), a.body);
  } else {
    v.why = with_excerpt(http + ": unexpected answer", a.body);
  }
  v.retry_after = parse_retry_after(a.retry_after, now);
  return v;
}

}  // namespace vigil
