// The generic webhook: every page, acknowledgements included, as one documented JSON object,
// signed with HMAC-SHA256 over the exact bytes sent when the notifier has a secret.
#include <string>

#include "agent/core/time.h"
#include "agent/sys/crypto.h"
#include "notify/judge_util.h"
#include "notify/kinds.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

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

class WebhookNotifier final : public Notifier {
 public:
  NotifierKind kind() const override { return NotifierKind::webhook; }
  Result<RenderedRequest> render(const NotifyConfig& n, std::size_t /*url_index*/, const Page& p,
                                 const RenderContext& ctx) const override {
    return render_webhook(n, p, ctx);
  }
  Verdict judge(const Page& /*p*/, const DeliveryAnswer& a, TimePoint now) const override {
    return judge_http(a, now, ConfigHint{});
  }
  bool has_acknowledge() const override { return true; }
};

}  // namespace

std::unique_ptr<Notifier> make_webhook_notifier() { return std::make_unique<WebhookNotifier>(); }

}  // namespace vigil
