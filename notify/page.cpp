// Pages rendered in each central system's wire format, and the answers judged
// (../shared/PAGING-FORMATS.md). Pure: no I/O, no clock.
#include "notify/page.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "agent/incidents/timeline.h"
#include "agent/sys/crypto.h"

namespace vigil {
namespace {

using Json = nlohmann::json;
using std::chrono::hours;
using std::chrono::seconds;

// PagerDuty's documented limits: dedup_key 255 characters, payload.summary 1024, 512 KB per
// event. We count bytes, which is never more than characters, so we stay within them.
constexpr std::size_t kDedupKeyMax = 255;
constexpr std::size_t kSummaryMax = 1024;
constexpr std::size_t kEventMax = 512 * 1024;
// Why 8 KiB: an annotation or a chat message is read by a human in seconds; the whole timeline
// is one link away. Alertmanager keeps annotations in memory for every alert, too.
constexpr std::size_t kEvidenceTextMax = 8 * 1024;
// Why 200 bytes: enough for any receiver's error message, short enough for one log line.
constexpr std::size_t kWhyBodyMax = 200;
// Backoff: 1s doubling to 5 min (a central system down for long is retried every few minutes,
// not hammered); a Retry-After is honoured up to 1 h (a longer one is likely a bug, and a page
// delayed more than an hour has lost its point).
constexpr Duration kBackoffFirst = seconds(1);
constexpr Duration kBackoffCap = seconds(300);
constexpr Duration kRetryAfterCap = hours(1);

constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kDryRunPrefix = "[DRY-RUN] ";
constexpr std::string_view kDefaultPagerDuty = "https://events.pagerduty.com";
constexpr std::string_view kDefaultStatuspage = "https://api.statuspage.io";

// Journal lines are hostile input: replace=invalid UTF-8 becomes U+FFFD instead of throwing.
std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

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

// `s` as valid UTF-8: every byte that does not start a valid sequence becomes U+FFFD.
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

// The length of the longest prefix of valid UTF-8 `v` that has at most `max` bytes and ends at a
// character boundary.
std::size_t utf8_prefix(std::string_view v, std::size_t max) {
  if (v.size() <= max) return v.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
  return n;
}

// `s` as valid UTF-8 of at most `max` bytes: cut at a character boundary, ending with "…" when
// cut.
std::string cut_utf8(std::string_view s, std::size_t max) {
  std::string v = valid_utf8(s);
  if (v.size() <= max) return v;
  if (max < kEllipsis.size()) return {};
  v.resize(utf8_prefix(v, max - kEllipsis.size()));
  v += kEllipsis;
  return v;
}

// Text for a log line: valid UTF-8, no control characters, at most `max` bytes.
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

// One URL path segment: unreserved characters kept, everything else percent-encoded.
std::string path_segment(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    }
  }
  return out;
}

std::string shown_title(const Page& p) {
  return p.dry_run && !p.title.empty() ? std::string(kDryRunPrefix) + p.title : p.title;
}
std::string shown_summary(const Page& p) {
  return p.dry_run && !p.summary.empty() ? std::string(kDryRunPrefix) + p.summary : p.summary;
}
// Where a human reads the incident ("" when [paging] link_base is unset).
std::string link_of(const Page& p, const RenderContext& ctx) {
  return ctx.link_base.empty() ? std::string() : ctx.link_base + p.incident;
}

// Evidence lines joined by '\n', valid UTF-8, at most kEvidenceTextMax bytes.
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

// ---------------------------------------------------------------------------------------------
// Alertmanager API v2

// startsAt must not be after endsAt: Alertmanager answers 400 ("start time must be before end
// time") and a 400 is never retried, so a clock step must not cost us the resolve.
Json am_alert(Json labels, Json annotations, TimePoint starts, TimePoint ends,
              const std::string& link) {
  Json a = Json::object();
  a["labels"] = std::move(labels);
  a["annotations"] = std::move(annotations);
  a["startsAt"] = format_time(std::min(starts, ends));
  a["endsAt"] = format_time(ends);
  if (!link.empty()) a["generatorURL"] = link;
  return a;
}

Result<RenderedRequest> render_alertmanager(const NotifyConfig& n, std::size_t url_index,
                                            const Page& p, const RenderContext& ctx) {
  if (url_index >= n.urls.size()) {
    return make_error("alertmanager " + n.name + ": no peer #" + std::to_string(url_index));
  }
  const std::string url = without_trailing_slash(n.urls[url_index]) + "/api/v2/alerts";
  Json alerts = Json::array();
  switch (p.action) {
    case PageAction::acknowledge:
      return skipped("alertmanager: acknowledged by a silence, not by an alert");
    case PageAction::change:
      return skipped("alertmanager: change events are for PagerDuty");
    case PageAction::heartbeat: {
      Json labels = {{"alertname", "VigilHeartbeat"}, {"severity", "none"}};
      if (!p.host.empty()) labels["host"] = p.host;
      const Json annotations = {{"summary", "vigil on " + p.host + " is alive"}};
      // 3 periods: one lost heartbeat (or two) is not a dead agent.
      alerts.push_back(am_alert(std::move(labels), annotations, p.started,
                                ctx.now + 3 * ctx.heartbeat_every, ""));
      return json_request(HttpMethod::post, url, dump(alerts));
    }
    case PageAction::trigger:
    case PageAction::update:
    case PageAction::resolve:
      break;
  }

  Json labels = {{"alertname", "VigilIncident"},
                 {"severity", std::string(to_string(p.severity))},
                 {"incident", p.incident}};
  // Alertmanager treats an empty label as absent; leaving them out keeps the identity stable.
  const auto label = [&labels](const char* name, const std::string& value) {
    if (!value.empty()) labels[name] = value;
  };
  label("host", p.host);
  label("check", p.check);
  label("service", p.service);
  label("team", p.team);

  const std::string link = link_of(p, ctx);
  Json annotations = Json::object();
  const auto annotate = [&annotations](const char* name, const std::string& value) {
    if (!value.empty()) annotations[name] = value;
  };
  annotate("summary", shown_title(p));
  annotate("description", shown_summary(p));
  annotate("evidence", evidence_text(p.evidence));
  annotate("state", p.state);
  annotate("timeline",
           link.empty() ? "vigil incident show " + p.incident + " (on " + p.host + ")" : link);
  if (p.acknowledged) annotations["acknowledged"] = "yes";

  // The old severity is another alert (labels are the identity): resolve it in the same request,
  // first, so the receiver never sees both firing.
  if (p.previous && *p.previous != p.severity) {
    Json old_labels = labels;
    old_labels["severity"] = std::string(to_string(*p.previous));
    alerts.push_back(am_alert(std::move(old_labels), annotations, p.started, ctx.now, link));
  }
  TimePoint ends;
  if (p.action == PageAction::resolve) {
    // endsAt <= now is what resolves an alert; a resolve time in the future would keep it firing.
    ends = std::min(p.resolved.value_or(ctx.now), ctx.now);
  } else {
    // 4 re-send periods: the alert survives three lost re-sends, and still ends by itself if
    // vigil dies (the heartbeat tells that story).
    ends = ctx.now + 4 * n.resend_every;
  }
  alerts.push_back(am_alert(std::move(labels), std::move(annotations), p.started, ends, link));
  return json_request(HttpMethod::post, url, dump(alerts));
}

// ---------------------------------------------------------------------------------------------
// PagerDuty Events API v2

std::string_view pagerduty_severity(Severity s) {
  switch (s) {
    case Severity::sev1:
      return "critical";
    case Severity::sev2:
      return "error";
    case Severity::sev3:
      return "warning";
  }
  return "warning";
}

// Builds the event with the first `keep` evidence lines (and a note of the cut); `squeeze` also
// cuts every free-text detail to 1 KiB, the last resort before giving up.
Json pagerduty_trigger(const NotifyConfig& n, const Page& p, const RenderContext& ctx,
                       std::size_t keep, bool squeeze) {
  const auto text = [squeeze](const std::string& s) {
    return squeeze ? cut_utf8(s, kSummaryMax) : s;
  };
  std::string summary = shown_title(p);
  if (summary.empty()) summary = shown_summary(p);
  if (summary.empty()) summary = "vigil incident " + p.incident + " on " + p.host;

  Json details = Json::object();
  for (const auto& [key, value] : p.details) details[key] = text(value);
  // vigil's own facts win over a detail of the same name.
  details["incident"] = p.incident;
  details["state"] = p.state;
  details["started"] = format_time(p.started);
  details["summary"] = text(shown_summary(p));
  Json evidence = Json::array();
  for (std::size_t i = 0; i < keep && i < p.evidence.size(); ++i) evidence.push_back(p.evidence[i]);
  if (keep < p.evidence.size()) {
    evidence.push_back("(" + std::to_string(p.evidence.size() - keep) +
                       " more lines cut to fit PagerDuty's 512 KB limit)");
  }
  details["evidence"] = std::move(evidence);
  details["acknowledged"] = p.acknowledged;
  if (!p.text.empty()) details["text"] = text(p.text);

  Json payload = {{"summary", cut_utf8(summary, kSummaryMax)},
                  {"source", p.host.empty() ? std::string("vigil") : p.host},
                  {"severity", std::string(pagerduty_severity(p.severity))},
                  {"timestamp", format_time(p.at)}};
  const std::string& component = p.service.empty() ? p.check : p.service;
  if (!component.empty()) payload["component"] = component;
  if (!p.team.empty()) payload["group"] = p.team;
  const auto failure = p.details.find("failure");
  const std::string& klass = failure != p.details.end() ? failure->second : p.check;
  if (!klass.empty()) payload["class"] = klass;
  payload["custom_details"] = std::move(details);

  Json event = {{"routing_key", n.secret},
                {"event_action", "trigger"},
                {"dedup_key", dedup_key(p)},
                {"payload", std::move(payload)},
                {"client", "vigil"}};
  const std::string link = link_of(p, ctx);
  if (!link.empty()) event["client_url"] = link;
  return event;
}

Result<RenderedRequest> render_pagerduty(const NotifyConfig& n, const Page& p,
                                         const RenderContext& ctx) {
  const std::string base =
      without_trailing_slash(n.urls.empty() ? std::string(kDefaultPagerDuty) : n.urls.front());
  switch (p.action) {
    case PageAction::heartbeat:
      return skipped("pagerduty: no heartbeat in the Events API");
    case PageAction::acknowledge:
    case PageAction::resolve: {
      const Json event = {{"routing_key", n.secret},
                          {"dedup_key", dedup_key(p)},
                          {"event_action", std::string(to_string(p.action))}};
      return json_request(HttpMethod::post, base + "/v2/enqueue", dump(event));
    }
    case PageAction::change: {
      std::string summary = p.text.empty() ? p.title : p.text;
      if (p.dry_run && !summary.empty()) summary = std::string(kDryRunPrefix) + summary;
      if (summary.empty()) summary = "vigil changed " + p.host;
      Json details = Json::object();
      for (const auto& [key, value] : p.details) details[key] = value;
      details["incident"] = p.incident;
      details["service"] = p.service;
      details["text"] = p.text;
      Json event = {{"routing_key", n.secret},
                    {"payload",
                     {{"summary", cut_utf8(summary, kSummaryMax)},
                      {"source", p.host.empty() ? std::string("vigil") : p.host},
                      {"timestamp", format_time(p.at)},
                      {"custom_details", std::move(details)}}}};
      const std::string link = link_of(p, ctx);
      if (!link.empty()) {
        event["links"] = Json::array({{{"href", link}, {"text", "vigil incident " + p.incident}}});
      }
      std::string body = dump(event);
      if (body.size() > kEventMax) {
        event["payload"]["custom_details"] = {
            {"incident", p.incident}, {"service", p.service}, {"text", cut_utf8(p.text, 1024)}};
        body = dump(event);
      }
      return json_request(HttpMethod::post, base + "/v2/change/enqueue", std::move(body));
    }
    case PageAction::trigger:
    case PageAction::update:
      break;
  }
  // 512 KB per event: keep the first evidence lines that fit, and say how many were cut.
  std::string body = dump(pagerduty_trigger(n, p, ctx, p.evidence.size(), false));
  if (body.size() > kEventMax) {
    bool squeeze = false;
    std::string bare = dump(pagerduty_trigger(n, p, ctx, 0, squeeze));
    if (bare.size() > kEventMax) {
      squeeze = true;
      bare = dump(pagerduty_trigger(n, p, ctx, 0, squeeze));
      if (bare.size() > kEventMax) {
        return make_error("pagerduty " + n.name + ": the event for " + p.incident +
                          " is larger than 512 KB even without evidence");
      }
    }
    // Each kept line costs its JSON string and a comma (the cut note only gets shorter).
    std::size_t budget = kEventMax - bare.size(), keep = 0;
    for (const std::string& line : p.evidence) {
      const std::size_t cost = dump(Json(line)).size() + 1;
      if (cost > budget) break;
      budget -= cost;
      ++keep;
    }
    body = dump(pagerduty_trigger(n, p, ctx, keep, squeeze));
    while (body.size() > kEventMax && keep > 0) {
      body = dump(pagerduty_trigger(n, p, ctx, --keep, squeeze));
    }
    if (body.size() > kEventMax) body = std::move(bare);
  }
  return json_request(HttpMethod::post, base + "/v2/enqueue", std::move(body));
}

// ---------------------------------------------------------------------------------------------
// Grafana OnCall formatted webhook

Result<RenderedRequest> render_oncall(const NotifyConfig& n, const Page& p,
                                      const RenderContext& ctx) {
  switch (p.action) {
    case PageAction::acknowledge:
      return skipped("oncall: acknowledged in OnCall itself");
    case PageAction::change:
      return skipped("oncall: change events are for PagerDuty");
    case PageAction::heartbeat:
      return skipped("oncall: heartbeats go to OnCall's heartbeat integration");
    case PageAction::trigger:
    case PageAction::update:
    case PageAction::resolve:
      break;
  }
  if (n.urls.empty()) return make_error("oncall " + n.name + ": no url");
  std::string message = shown_summary(p) + "\nstate: " + p.state;
  if (p.acknowledged) message += " (acknowledged)";
  if (!p.evidence.empty()) message += "\n" + evidence_text(p.evidence);
  // A resolve repeats the title: OnCall shows the resolved alert under it.
  Json body = {{"alert_uid", dedup_key(p)},
               {"title", "[" + std::string(to_string(p.severity)) + "] " + shown_title(p)},
               {"message", cut_utf8(message, kEvidenceTextMax + kSummaryMax)},
               {"state", p.action == PageAction::resolve ? "ok" : "alerting"}};
  const std::string link = link_of(p, ctx);
  if (!link.empty()) body["link_to_upstream_details"] = link;
  return json_request(HttpMethod::post, n.urls.front(), dump(body));
}

// ---------------------------------------------------------------------------------------------
// Status page (public: no evidence, no host names, no internals)

std::string_view public_status(const Page& p) {
  if (p.action == PageAction::resolve || p.state == "resolved") return "resolved";
  if (p.state == "mitigating") return "identified";
  if (p.state == "verifying") return "monitoring";
  return "investigating";  // detected, triaged, escalated
}

std::string public_body(const Page& p, std::string_view status) {
  std::string body;
  if (status == "investigating") {
    body = p.service.empty() ? "We are investigating a problem."
                             : "We are investigating problems with " + p.service + ".";
  } else if (status == "identified") {
    body = "The cause is identified and a fix is being applied.";
  } else if (status == "monitoring") {
    body = "A fix has been applied and we are monitoring the results.";
  } else {
    body = "This incident has been resolved.";
  }
  // vigil's own words (p.text: "rolled back app: B -> A", "still triaged") stay internal.
  return body;
}

std::string_view statuspage_impact(Severity s) {
  switch (s) {
    case Severity::sev1:
      return "critical";
    case Severity::sev2:
      return "major";
    case Severity::sev3:
      return "minor";
  }
  return "minor";
}

Result<RenderedRequest> render_statuspage(const NotifyConfig& n, const Page& p,
                                          const RenderContext& ctx) {
  switch (p.action) {
    case PageAction::acknowledge:
      return skipped("statuspage: an acknowledgement is not public news");
    case PageAction::change:
      return skipped("statuspage: change events are for PagerDuty");
    case PageAction::heartbeat:
      return skipped("statuspage: no heartbeat on a public page");
    case PageAction::trigger:
    case PageAction::update:
    case PageAction::resolve:
      break;
  }
  if (n.page_id.empty()) return make_error("statuspage " + n.name + ": no page_id");
  const std::string base =
      without_trailing_slash(n.urls.empty() ? std::string(kDefaultStatuspage) : n.urls.front()) +
      "/v1/pages/" + path_segment(n.page_id) + "/incidents";
  const std::string_view status = public_status(p);
  Json incident = {{"status", std::string(status)}, {"body", public_body(p, status)}};
  RenderedRequest r;
  if (p.action == PageAction::trigger) {
    // Never the incident title: it carries URLs, addresses and journal lines.
    const std::string& what = p.service.empty() ? p.check : p.service;
    incident["name"] =
        cut_utf8(what.empty() ? "Service disruption" : what + ": service disruption", kSummaryMax);
    incident["impact_override"] = std::string(statuspage_impact(p.severity));
    if (!n.component_ids.empty()) incident["component_ids"] = n.component_ids;
    r = json_request(HttpMethod::post, base, dump(Json{{"incident", std::move(incident)}}));
  } else {
    if (ctx.remote_id.empty()) {
      return make_error("statuspage: no incident id yet for " + p.incident);
    }
    r = json_request(HttpMethod::patch, base + "/" + path_segment(ctx.remote_id),
                     dump(Json{{"incident", std::move(incident)}}));
  }
  r.headers.emplace_back("Authorization", "OAuth " + n.secret);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Generic webhook

Result<RenderedRequest> render_webhook(const NotifyConfig& n, const Page& p,
                                       const RenderContext& ctx) {
  if (p.action == PageAction::heartbeat) {
    return skipped("webhook: heartbeats go to [paging] heartbeat_url");
  }
  if (n.urls.empty()) return make_error("webhook " + n.name + ": no url");
  Json body = {{"version", 1},
               {"event", std::string(to_string(p.action))},
               {"dedup_key", dedup_key(p)},
               {"incident", p.incident},
               {"host", p.host},
               {"title", shown_title(p)},
               {"summary", shown_summary(p)},
               {"severity", std::string(to_string(p.severity))},
               {"state", p.state},
               {"service", p.service},
               {"team", p.team},
               {"check", p.check},
               {"acknowledged", p.acknowledged},
               {"dry_run", p.dry_run},
               {"text", p.text},
               {"evidence", p.evidence},
               {"started", format_time(p.started)},
               {"at", format_time(p.at)}};
  if (p.resolved) body["resolved"] = format_time(*p.resolved);
  const std::string link = link_of(p, ctx);
  if (!link.empty()) body["link"] = link;
  Json details = Json::object();
  for (const auto& [key, value] : p.details) details[key] = value;
  body["details"] = std::move(details);

  RenderedRequest r = json_request(HttpMethod::post, n.urls.front(), dump(body));
  for (const auto& header : n.headers) r.headers.push_back(header);
  // Signed over the exact bytes sent, so a receiver verifies before it parses.
  if (!n.secret.empty()) {
    r.headers.emplace_back(n.signature_header, "sha256=" + sys::hmac_sha256_hex(n.secret, r.body));
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Answers

// The top-level "id" of a JSON object, read as a stream so an answer cut after the first bytes
// (the HTTP client keeps only those) still gives it: Statuspage puts "id" first.
class TopLevelId : public nlohmann::json_sax<Json> {
 public:
  std::string id;

  bool null() override { return scalar(); }
  bool boolean(bool /*unused*/) override { return scalar(); }
  bool number_integer(number_integer_t v) override { return found(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return found(std::to_string(v)); }
  bool number_float(number_float_t /*unused*/, const string_t& /*unused*/) override {
    return scalar();
  }
  bool string(string_t& v) override { return found(v); }
  bool binary(binary_t& /*unused*/) override { return scalar(); }
  bool start_object(std::size_t /*unused*/) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t /*unused*/) override { return open(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    want_ = depth_ == 1 && k == "id";
    return true;
  }
  bool parse_error(std::size_t /*unused*/, const std::string& /*unused*/,
                   const nlohmann::detail::exception& /*unused*/) override {
    return false;
  }

 private:
  bool scalar() {
    want_ = false;
    return true;
  }
  bool found(std::string v) {
    if (!want_) return true;
    want_ = false;
    if (v.empty()) return true;
    id = std::move(v);
    return false;  // done: stop reading
  }
  bool open() {
    want_ = false;
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool want_ = false;
};

std::string top_level_id(const std::string& body) {
  TopLevelId reader;
  Json::sax_parse(body, &reader);
  return reader.id;
}

// The first bytes of an answer's body as one line, without the trailing newline most have.
std::string body_excerpt(const std::string& body) {
  std::string v = one_line(body, kWhyBodyMax);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

// PagerDuty's 400: {"status":"invalid event","message":"...","errors":["..."]} ->
// "invalid event: error; error". Empty when the body is not that shape.
std::string pagerduty_errors(const std::string& body) {
  const Json j = Json::parse(body, nullptr, false);
  if (!j.is_object()) return {};
  const auto errors = j.find("errors");
  if (errors == j.end() || !errors->is_array() || errors->empty()) return {};
  std::string joined;
  for (const Json& e : *errors) {
    if (!joined.empty()) joined += "; ";
    joined += e.is_string() ? e.get<std::string>() : dump(e);
  }
  const auto status = j.find("status");
  if (status != j.end() && status->is_string()) joined = status->get<std::string>() + ": " + joined;
  return one_line(joined, 2 * kWhyBodyMax);
}

// What an operator should look at for a 4xx that only a config change fixes.
std::string config_hint(const NotifyConfig& n, long status) {
  const bool auth = status == 401 || status == 403;
  switch (n.kind) {
    case NotifierKind::pagerduty:
      return auth ? "check the routing key" : "check the url and the routing key";
    case NotifierKind::statuspage:
      return auth ? "check the API key" : "check the url, page_id and component_ids";
    case NotifierKind::alertmanager:
    case NotifierKind::oncall:
    case NotifierKind::webhook:
      break;
  }
  return auth ? "check the credentials (headers, token in the url)" : "check the url";
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

// Retry-After: delay-seconds or an HTTP-date (relative to `now`; a past date is 0). Anything
// else is ignored (nullopt), as RFC 9110 lets a recipient do.
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
  switch (n.kind) {
    case NotifierKind::alertmanager:
      return render_alertmanager(n, url_index, p, ctx);
    case NotifierKind::pagerduty:
      return render_pagerduty(n, p, ctx);
    case NotifierKind::oncall:
      return render_oncall(n, p, ctx);
    case NotifierKind::statuspage:
      return render_statuspage(n, p, ctx);
    case NotifierKind::webhook:
      return render_webhook(n, p, ctx);
  }
  return make_error("notifier " + n.name + ": unknown kind");
}

Verdict judge(const NotifyConfig& n, const Page& p, const DeliveryAnswer& a, TimePoint now) {
  Verdict v;
  if (!a.transport_ok) {
    v.kind = Verdict::Kind::retry;
    v.why = a.error.empty() ? "no answer" : one_line(a.error, kWhyBodyMax);
    return v;
  }
  const std::string http = "HTTP " + std::to_string(a.status);
  const std::string excerpt = body_excerpt(a.body);
  const auto with_excerpt = [&excerpt](std::string why) {
    return excerpt.empty() ? why : why + ": " + excerpt;
  };
  if (a.status >= 200 && a.status <= 299) {
    v.kind = Verdict::Kind::delivered;
    v.why = "delivered (" + http + ")";
    if (n.kind == NotifierKind::statuspage && p.action == PageAction::trigger) {
      v.remote_id = top_level_id(a.body);
      if (v.remote_id.empty()) {
        // The incident exists, so retrying would post it again publicly; without its id no
        // update or resolve can follow: say so loudly, for a human to close it by hand.
        v.kind = Verdict::Kind::permanent;
        v.why = with_excerpt(http + ": statuspage created the incident but its answer has no id");
      }
    }
    if (v.kind == Verdict::Kind::delivered) return v;
  } else if (a.status == 400 || a.status == 413 || a.status == 422) {
    // The request itself is wrong: sending it again gets the same answer.
    v.kind = Verdict::Kind::permanent;
    std::string errors;
    if (n.kind == NotifierKind::pagerduty) errors = pagerduty_errors(a.body);
    v.why = errors.empty() ? with_excerpt(http) : http + ": " + errors;
    return v;
  } else if (a.status == 408 || a.status == 429 || (a.status >= 500 && a.status <= 599)) {
    v.kind = Verdict::Kind::retry;
    v.why = with_excerpt(http);
  } else if (a.status >= 400 && a.status <= 499) {
    // 401/403/404...: a config mistake an operator fixes by a reload; never dropped meanwhile.
    v.kind = Verdict::Kind::retry;
    v.why = with_excerpt(http + ": probably a config mistake, " + config_hint(n, a.status));
  } else {
    v.kind = Verdict::Kind::retry;
    v.why = with_excerpt(http + ": unexpected answer");
  }
  v.retry_after = parse_retry_after(a.retry_after, now);
  return v;
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
