// Alertmanager API v2: a page is an alert (labels are its identity) posted to each peer; an alert
// resolves by its endsAt, and the heartbeat is an always-firing alert that ends by itself.
#include <algorithm>
#include <string>

#include "agent/core/time.h"
#include "notify/judge_util.h"
#include "notify/kinds.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

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
      if (!ctx.fleet.empty()) labels["fleet"] = ctx.fleet;
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
  label("fleet", ctx.fleet);
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

class AlertmanagerNotifier final : public Notifier {
 public:
  NotifierKind kind() const override { return NotifierKind::alertmanager; }
  Result<RenderedRequest> render(const NotifyConfig& n, std::size_t url_index, const Page& p,
                                 const RenderContext& ctx) const override {
    return render_alertmanager(n, url_index, p, ctx);
  }
  Verdict judge(const Page& /*p*/, const DeliveryAnswer& a, TimePoint now) const override {
    return judge_http(a, now, ConfigHint{});
  }
};

}  // namespace

std::unique_ptr<Notifier> make_alertmanager_notifier() {
  return std::make_unique<AlertmanagerNotifier>();
}

}  // namespace vigil
