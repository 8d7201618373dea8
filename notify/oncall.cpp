// Grafana OnCall's formatted webhook: one alert per incident (alert_uid), alerting or ok.
// Acknowledgements happen in OnCall itself, heartbeats go to its heartbeat integration.
#include <string>

#include "notify/judge_util.h"
#include "notify/kinds.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

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
  // append(), not `"\n" + ...`: GCC 12 at -O3 reports a -Wrestrict false positive for it.
  if (!p.evidence.empty()) message.append("\n").append(evidence_text(p.evidence));
  // A resolve repeats the title: OnCall shows the resolved alert under it.
  std::string title = "[";
  title.append(to_string(p.severity)).append("] ").append(shown_title(p));
  Json body = {{"alert_uid", dedup_key(p)},
               {"title", title},
               {"message", cut_utf8(message, kEvidenceTextMax + kSummaryMax)},
               {"state", p.action == PageAction::resolve ? "ok" : "alerting"}};
  const std::string link = link_of(p, ctx);
  if (!link.empty()) body["link_to_upstream_details"] = link;
  return json_request(HttpMethod::post, n.urls.front(), dump(body));
}

class OnCallNotifier final : public Notifier {
 public:
  NotifierKind kind() const override { return NotifierKind::oncall; }
  Result<RenderedRequest> render(const NotifyConfig& n, std::size_t /*url_index*/, const Page& p,
                                 const RenderContext& ctx) const override {
    return render_oncall(n, p, ctx);
  }
  Verdict judge(const Page& /*p*/, const DeliveryAnswer& a, TimePoint now) const override {
    return judge_http(a, now, ConfigHint{});
  }
};

}  // namespace

std::unique_ptr<Notifier> make_oncall_notifier() { return std::make_unique<OnCallNotifier>(); }

}  // namespace vigil
