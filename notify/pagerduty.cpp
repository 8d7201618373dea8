// PagerDuty Events API v2: trigger, acknowledge and resolve one alert per incident (dedup_key),
// change events for what vigil changed, and the 512 KB event limit kept by cutting evidence.
#include <string>
#include <utility>

#include "agent/core/time.h"
#include "notify/judge_util.h"
#include "notify/kinds.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

// PagerDuty's documented limit: 512 KB per event (the summary's is kSummaryMax).
constexpr std::size_t kEventMax = 512 * 1024;
constexpr std::string_view kDefaultPagerDuty = "https://events.pagerduty.com";

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

// Whether the free-text details are cut to 1 KiB each: the last resort before giving up.
enum class Squeeze { no, yes };

// Builds the event with the first `keep` evidence lines (and a note of the cut), squeezed or not.
Json pagerduty_trigger(const NotifyConfig& n, const Page& p, const RenderContext& ctx,
                       std::size_t keep, Squeeze squeeze) {
  const auto text = [squeeze](const std::string& s) {
    return squeeze == Squeeze::yes ? cut_utf8(s, kSummaryMax) : s;
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
    // append(), not `"(" + ...`: GCC 12 at -O3 reports a -Wrestrict false positive for it.
    std::string cut = "(";
    cut.append(std::to_string(p.evidence.size() - keep))
        .append(" more lines cut to fit PagerDuty's 512 KB limit)");
    evidence.push_back(std::move(cut));
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
  std::string body = dump(pagerduty_trigger(n, p, ctx, p.evidence.size(), Squeeze::no));
  if (body.size() > kEventMax) {
    Squeeze squeeze = Squeeze::no;
    std::string bare = dump(pagerduty_trigger(n, p, ctx, 0, squeeze));
    if (bare.size() > kEventMax) {
      squeeze = Squeeze::yes;
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

class PagerDutyNotifier final : public Notifier {
 public:
  NotifierKind kind() const override { return NotifierKind::pagerduty; }
  Result<RenderedRequest> render(const NotifyConfig& n, std::size_t /*url_index*/, const Page& p,
                                 const RenderContext& ctx) const override {
    return render_pagerduty(n, p, ctx);
  }
  Verdict judge(const Page& /*p*/, const DeliveryAnswer& a, TimePoint now) const override {
    Verdict v = judge_http(a, now, {"check the routing key", "check the url and the routing key"});
    // A 400 says which fields are wrong: that beats the first bytes of the body.
    if (a.transport_ok && rejected(a.status)) {
      const std::string errors = pagerduty_errors(a.body);
      if (!errors.empty()) v.why = "HTTP " + std::to_string(a.status) + ": " + errors;
    }
    return v;
  }
  bool has_acknowledge() const override { return true; }
  bool takes_change_events() const override { return true; }
};

}  // namespace

std::unique_ptr<Notifier> make_pagerduty_notifier() {
  return std::make_unique<PagerDutyNotifier>();
}

}  // namespace vigil
