// The rendering helpers several notifier kinds share (notify/render_util.h).
#include "notify/render_util.h"

#include <utility>

namespace vigil {
namespace {

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, nothing
// above U+10FFFF), or 0 if it is not one.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return len;
}

}  // namespace

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t len = utf8_sequence(s, i);
    if (len == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

std::size_t utf8_prefix(std::string_view v, std::size_t max) {
  if (v.size() <= max) return v.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  return n;
}

std::string cut_utf8(std::string_view s, std::size_t max) {
  std::string v = valid_utf8(s);
  if (v.size() <= max) return v;
  if (max < kEllipsis.size()) return {};
  v.resize(utf8_prefix(v, max - kEllipsis.size()));
  v += kEllipsis;
  return v;
}

std::string one_line(std::string_view s, std::size_t max) {
  std::string v = cut_utf8(s, max);
  for (char& c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return v;
}

std::string without_trailing_slash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

std::string shown_title(const Page& p) {
  return p.dry_run && !p.title.empty() ? std::string(kDryRunPrefix) + p.title : p.title;
}
std::string shown_summary(const Page& p) {
  return p.dry_run && !p.summary.empty() ? std::string(kDryRunPrefix) + p.summary : p.summary;
}
std::string link_of(const Page& p, const RenderContext& ctx) {
  return ctx.link_base.empty() ? std::string() : ctx.link_base + p.incident;
}

std::string evidence_text(const std::vector<std::string>& lines) {
  std::string joined;
  for (const std::string& line : lines) {
    if (!joined.empty()) joined += '\n';
    joined += line;
    if (joined.size() > 4 * kEvidenceTextMax) break;  // cut below anyway; bound the work
  }
  return cut_utf8(joined, kEvidenceTextMax);
}

RenderedRequest skipped(std::string why) {
  RenderedRequest r;
  r.skip = true;
  r.skip_why = std::move(why);
  return r;
}

RenderedRequest json_request(HttpMethod method, std::string url, std::string body) {
  RenderedRequest r;
  r.method = method;
  r.url = std::move(url);
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

}  // namespace vigil
