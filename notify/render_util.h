// What several notifier kinds render with (internal to notify/): UTF-8 that is valid and cut at a
// character boundary, the [DRY-RUN] tag, the incident link, the evidence text, and the request
// shapes. Pure: no I/O, no clock.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "notify/page.h"

namespace vigil {

using Json = nlohmann::json;

// PagerDuty's documented payload.summary limit (1024 characters), also the cut for other titles.
// We count bytes, which is never more than characters, so we stay within it.
constexpr std::size_t kSummaryMax = 1024;
// Why 8 KiB: an annotation or a chat message is read by a human in seconds; the whole timeline
// is one link away. Alertmanager keeps annotations in memory for every alert, too.
constexpr std::size_t kEvidenceTextMax = 8 * 1024;
constexpr std::string_view kDryRunPrefix = "[DRY-RUN] ";

// Journal lines are hostile input: replace=invalid UTF-8 becomes U+FFFD instead of throwing.
std::string dump(const Json& j);

// `s` as valid UTF-8: every byte that does not start a valid sequence becomes U+FFFD.
std::string valid_utf8(std::string_view s);
// The length of the longest prefix of valid UTF-8 `v` that has at most `max` bytes and ends at a
// character boundary.
std::size_t utf8_prefix(std::string_view v, std::size_t max);
// `s` as valid UTF-8 of at most `max` bytes: cut at a character boundary, ending with "…" when
// cut.
std::string cut_utf8(std::string_view s, std::size_t max);
// Text for a log line: valid UTF-8, no control characters, at most `max` bytes.
std::string one_line(std::string_view s, std::size_t max);

std::string without_trailing_slash(std::string url);

// The title and summary as shown: tagged [DRY-RUN] for pages about dry-run decisions.
std::string shown_title(const Page& p);
std::string shown_summary(const Page& p);
// Where a human reads the incident ("" when [paging] link_base is unset).
std::string link_of(const Page& p, const RenderContext& ctx);
// Evidence lines joined by '\n', valid UTF-8, at most kEvidenceTextMax bytes.
std::string evidence_text(const std::vector<std::string>& lines);

// Nothing to send for this page on this target, with why.
RenderedRequest skipped(std::string why);
// A request with a JSON body (Content-Type: application/json).
RenderedRequest json_request(HttpMethod method, std::string url, std::string body);

}  // namespace vigil
