// render / judge / backoff / dedup_key: every wire format checked field by field against
// ../shared/PAGING-FORMATS.md, by parsing the rendered body back.
#include "notify/page.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <array>
#include <chrono>
#include <climits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/incidents/timeline.h"

namespace vigil {
namespace {

using Json = nlohmann::json;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TimePoint T(std::string_view rfc3339) {
  const auto t = parse_time(rfc3339);
  if (!t) ADD_FAILURE() << "bad time " << rfc3339;
  return t.value_or(TimePoint{});
}

const TimePoint kNow = T("2026-11-27T01:42:07.123Z");

Page MakePage(PageAction action = PageAction::trigger) {
  Page p;
  p.action = action;
  p.incident = "20261127-014200-checkout";
  p.host = "web1";
  p.title = "checkout: HTTP 503 (https://shop/health)";
  p.summary = "HTTP 503 in 12ms";
  p.service = "checkout";
  p.team = "payments";
  p.check = "checkout-http";
  p.severity = Severity::sev1;
  p.state = "triaged";
  p.evidence = {"nginx.service: active (running)", "upstream timed out"};
  p.started = T("2026-11-27T01:41:00.000Z");
  p.at = T("2026-11-27T01:42:00.000Z");
  return p;
}

NotifyConfig Notifier(NotifierKind kind, std::vector<std::string> urls = {}) {
  NotifyConfig n;
  n.kind = kind;
  n.urls = std::move(urls);
  switch (kind) {
    case NotifierKind::alertmanager:
      n.name = "am";
      break;
    case NotifierKind::pagerduty:
      n.name = "pd";
      n.secret = "0123456789abcdef0123456789abcdef";
      break;
    case NotifierKind::oncall:
      n.name = "oncall";
      break;
    case NotifierKind::statuspage:
      n.name = "status";
      n.secret = "sp-api-key";
      n.page_id = "pg1";
      break;
    case NotifierKind::webhook:
      n.name = "hook";
      break;
  }
  return n;
}

RenderContext Ctx(std::string link_base = "https://vigil.example/incidents/") {
  RenderContext c;
  c.now = kNow;
  c.link_base = std::move(link_base);
  return c;
}

RenderedRequest Render(const NotifyConfig& n, const Page& p, const RenderContext& ctx = Ctx(),
                       std::size_t url_index = 0) {
  const Result<RenderedRequest> r = render(n, url_index, p, ctx);
  if (!r) {
    ADD_FAILURE() << "render failed: " << r.error().message;
    return RenderedRequest{};
  }
  return r.value();
}

// The body parsed back; nlohmann throws on invalid UTF-8, which fails the test.
Json Body(const RenderedRequest& r) {
  try {
    return Json::parse(r.body);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "body is not valid JSON: " << e.what() << "\n" << r.body;
    return Json();
  }
}

std::string Header(const RenderedRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

// An HMAC-SHA256 independent of page.cpp's (EVP_MAC, not HMAC()), itself checked against
// RFC 4231 below.
std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  char digest[] = "SHA256";
  const std::array<OSSL_PARAM, 2> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  std::array<unsigned char, 64> out{};
  std::size_t len = 0;
  const bool ok =
      EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key.data()), key.size(),
                   params.data()) == 1 &&
      EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1 &&
      EVP_MAC_final(ctx, out.data(), &len, out.size()) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  if (!ok) return "<hmac failed>";
  std::string hex;
  for (std::size_t i = 0; i < len; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex += kDigits[out[i] >> 4];
    hex += kDigits[out[i] & 0x0F];
  }
  return hex;
}

bool ValidUtf8(const std::string& s) {
  try {
    (void)Json(s).dump();  // strict: throws on invalid UTF-8
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Actions and dedup keys

TEST(PageAction, NamesRoundTrip) {
  const std::vector<std::pair<PageAction, std::string>> cases = {
      {PageAction::trigger, "trigger"},         {PageAction::update, "update"},
      {PageAction::acknowledge, "acknowledge"}, {PageAction::resolve, "resolve"},
      {PageAction::change, "change"},           {PageAction::heartbeat, "heartbeat"}};
  for (const auto& [a, name] : cases) {
    EXPECT_EQ(to_string(a), name);
    EXPECT_EQ(parse_page_action(name), a) << name;
  }
  EXPECT_EQ(parse_page_action(""), std::nullopt);
  EXPECT_EQ(parse_page_action("ack"), std::nullopt);
  EXPECT_EQ(parse_page_action("Trigger"), std::nullopt);
}

TEST(PageDedupKey, IsVigilHostIncident) {
  EXPECT_EQ(dedup_key(MakePage()), "vigil/web1/20261127-014200-checkout");
}

TEST(PageDedupKey, TooLongIsCutWithAHashSoItStaysUniqueAndStable) {
  Page a = MakePage();
  a.host = std::string(300, 'h');
  Page b = a;
  b.incident = "20261127-014200-other";
  const std::string ka = dedup_key(a), kb = dedup_key(b);
  EXPECT_LE(ka.size(), 255u);
  EXPECT_EQ(ka.size(), 255u);
  EXPECT_EQ(ka.rfind("vigil/hhhh", 0), 0u) << ka;
  EXPECT_EQ(ka[255 - 17], '~') << ka;
  EXPECT_NE(ka, kb);
  EXPECT_EQ(ka, dedup_key(a));
  // A multi-byte host is never cut inside a character.
  Page c = MakePage();
  c.host = "";
  for (int i = 0; i < 120; ++i) c.host += "\xC3\xA9";  // é
  const std::string kc = dedup_key(c);
  EXPECT_LE(kc.size(), 255u);
  EXPECT_TRUE(ValidUtf8(kc)) << kc;
}

// ---------------------------------------------------------------------------------------------
// Alertmanager

TEST(PageAlertmanager, FiringAlertFieldByField) {
  NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093/", "http://am2:9093"});
  n.resend_every = seconds(60);
  const RenderedRequest r = Render(n, MakePage(), Ctx());
  EXPECT_FALSE(r.skip);
  EXPECT_EQ(r.method, HttpMethod::post);
  EXPECT_EQ(r.url, "http://am1:9093/api/v2/alerts");
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  const Json body = Body(r);
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.size(), 1u);
  const Json& a = body[0];
  EXPECT_EQ(a["labels"], Json({{"alertname", "VigilIncident"},
                               {"severity", "SEV1"},
                               {"host", "web1"},
                               {"check", "checkout-http"},
                               {"service", "checkout"},
                               {"team", "payments"},
                               {"incident", "20261127-014200-checkout"}}));
  EXPECT_EQ(a["annotations"],
            Json({{"summary", "checkout: HTTP 503 (https://shop/health)"},
                  {"description", "HTTP 503 in 12ms"},
                  {"evidence", "nginx.service: active (running)\nupstream timed out"},
                  {"state", "triaged"},
                  {"timeline", "https://vigil.example/incidents/20261127-014200-checkout"}}));
  EXPECT_EQ(a["startsAt"], "2026-11-27T01:41:00.000Z");
  // now + 4 x resend_every
  EXPECT_EQ(a["endsAt"], "2026-11-27T01:46:07.123Z");
  EXPECT_EQ(a["generatorURL"], "https://vigil.example/incidents/20261127-014200-checkout");
  EXPECT_EQ(a.size(), 5u);

  // url_index picks the peer.
  EXPECT_EQ(Render(n, MakePage(), Ctx(), 1).url, "http://am2:9093/api/v2/alerts");
  const Result<RenderedRequest> none = render(n, 2, MakePage(), Ctx());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "alertmanager am: no peer #2");
}

TEST(PageAlertmanager, WithoutLinkBaseNamesTheCommandAndOmitsGeneratorUrl) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  Page p = MakePage(PageAction::update);
  p.check.clear();
  p.service.clear();
  p.team.clear();
  p.acknowledged = true;
  const Json a = Body(Render(n, p, Ctx("")))[0];
  EXPECT_EQ(a["labels"], Json({{"alertname", "VigilIncident"},
                               {"severity", "SEV1"},
                               {"host", "web1"},
                               {"incident", "20261127-014200-checkout"}}));
  EXPECT_EQ(a["annotations"]["timeline"], "vigil incident show 20261127-014200-checkout (on web1)");
  EXPECT_EQ(a["annotations"]["acknowledged"], "yes");
  EXPECT_FALSE(a.contains("generatorURL"));
}

TEST(PageAlertmanager, SeverityChangeResolvesTheOldIdentityFirstInTheSameRequest) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  Page p = MakePage(PageAction::update);
  p.severity = Severity::sev1;
  p.previous = Severity::sev2;
  const Json body = Body(Render(n, p));
  ASSERT_EQ(body.size(), 2u);
  EXPECT_EQ(body[0]["labels"]["severity"], "SEV2");
  EXPECT_EQ(body[0]["endsAt"], "2026-11-27T01:42:07.123Z");
  EXPECT_EQ(body[1]["labels"]["severity"], "SEV1");
  EXPECT_EQ(body[1]["endsAt"], "2026-11-27T01:46:07.123Z");
  // The same alert otherwise.
  Json old_labels = body[0]["labels"];
  old_labels["severity"] = "SEV1";
  EXPECT_EQ(old_labels, body[1]["labels"]);
  EXPECT_EQ(body[0]["annotations"], body[1]["annotations"]);

  p.previous = Severity::sev1;  // the same severity: one alert
  EXPECT_EQ(Body(Render(n, p)).size(), 1u);
}

TEST(PageAlertmanager, ResolveEndsAtIsNeverAfterNow) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  Page p = MakePage(PageAction::resolve);
  p.resolved = T("2026-11-27T01:42:05.000Z");
  Json a = Body(Render(n, p)).back();
  EXPECT_EQ(a["endsAt"], "2026-11-27T01:42:05.000Z");
  EXPECT_EQ(a["labels"]["severity"], "SEV1");

  p.resolved = kNow + minutes(5);  // a clock step: clamped to now
  EXPECT_EQ(Body(Render(n, p)).back()["endsAt"], "2026-11-27T01:42:07.123Z");
  p.resolved.reset();
  EXPECT_EQ(Body(Render(n, p)).back()["endsAt"], "2026-11-27T01:42:07.123Z");

  // startsAt after endsAt is a 400 from Alertmanager (never retried): startsAt is clamped.
  p.started = kNow + minutes(1);
  a = Body(Render(n, p)).back();
  EXPECT_EQ(a["startsAt"], "2026-11-27T01:42:07.123Z");
  EXPECT_EQ(a["endsAt"], "2026-11-27T01:42:07.123Z");
}

TEST(PageAlertmanager, HeartbeatIsAnAlwaysFiringAlertThreePeriodsAhead) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  Page p;
  p.action = PageAction::heartbeat;
  p.host = "web1";
  p.started = T("2026-11-27T00:00:00.000Z");
  RenderContext ctx = Ctx();
  ctx.heartbeat_every = seconds(30);
  const RenderedRequest r = Render(n, p, ctx);
  EXPECT_EQ(r.url, "http://am1:9093/api/v2/alerts");
  const Json body = Body(r);
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(
      body[0],
      Json({{"labels", {{"alertname", "VigilHeartbeat"}, {"host", "web1"}, {"severity", "none"}}},
            {"annotations", {{"summary", "vigil on web1 is alive"}}},
            {"startsAt", "2026-11-27T00:00:00.000Z"},
            {"endsAt", "2026-11-27T01:43:37.123Z"}}));
}

// [fleet] name: a `fleet` label on incidents and heartbeats, so Alertmanager can group one
// outage seen by many hosts (docs/FLEET.md); none without a fleet (the test above).
TEST(PageAlertmanager, TheFleetIsALabelOfEveryAlert) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  RenderContext ctx = Ctx();
  ctx.fleet = "web-eu";
  EXPECT_EQ(Body(Render(n, MakePage(), ctx))[0]["labels"]["fleet"], "web-eu");
  Page hb;
  hb.action = PageAction::heartbeat;
  hb.host = "web1";
  EXPECT_EQ(Body(Render(n, hb, ctx))[0]["labels"]["fleet"], "web-eu");
  EXPECT_FALSE(Body(Render(n, MakePage(), Ctx()))[0]["labels"].contains("fleet"));
}

TEST(PageAlertmanager, AcknowledgeAndChangeAreSkipped) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  for (const PageAction a : {PageAction::acknowledge, PageAction::change}) {
    const RenderedRequest r = Render(n, MakePage(a));
    EXPECT_TRUE(r.skip) << to_string(a);
    EXPECT_FALSE(r.skip_why.empty());
    EXPECT_TRUE(r.body.empty());
  }
}

TEST(PageAlertmanager, EvidenceAnnotationIsCappedAt8KiB) {
  const NotifyConfig n = Notifier(NotifierKind::alertmanager, {"http://am1:9093"});
  Page p = MakePage();
  p.evidence.assign(100, std::string(500, 'x'));
  const std::string evidence = Body(Render(n, p))[0]["annotations"]["evidence"];
  EXPECT_EQ(evidence.size(), 8192u);
  EXPECT_EQ(evidence.substr(evidence.size() - 3), "\xE2\x80\xA6");
}

// ---------------------------------------------------------------------------------------------
// PagerDuty

TEST(PagePagerDuty, TriggerFieldByField) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty, {"https://events.pagerduty.com/"});
  Page p = MakePage();
  p.text = "restarted nginx.service";
  p.details = {{"failure", "http_5xx"}, {"unit", "nginx.service"}, {"state", "spoofed"}};
  const RenderedRequest r = Render(n, p);
  EXPECT_EQ(r.method, HttpMethod::post);
  EXPECT_EQ(r.url, "https://events.pagerduty.com/v2/enqueue");
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  const Json body = Body(r);
  EXPECT_EQ(body["routing_key"], "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(body["event_action"], "trigger");
  EXPECT_EQ(body["dedup_key"], "vigil/web1/20261127-014200-checkout");
  EXPECT_EQ(body["client"], "vigil");
  EXPECT_EQ(body["client_url"], "https://vigil.example/incidents/20261127-014200-checkout");
  const Json& pl = body["payload"];
  EXPECT_EQ(pl["summary"], "checkout: HTTP 503 (https://shop/health)");
  EXPECT_EQ(pl["source"], "web1");
  EXPECT_EQ(pl["severity"], "critical");
  EXPECT_EQ(pl["timestamp"], "2026-11-27T01:42:00.000Z");
  EXPECT_EQ(pl["component"], "checkout");
  EXPECT_EQ(pl["group"], "payments");
  EXPECT_EQ(pl["class"], "http_5xx");
  EXPECT_EQ(pl["custom_details"],
            Json({{"incident", "20261127-014200-checkout"},
                  {"state", "triaged"},  // vigil's own fact wins over a detail of that name
                  {"started", "2026-11-27T01:41:00.000Z"},
                  {"summary", "HTTP 503 in 12ms"},
                  {"evidence", {"nginx.service: active (running)", "upstream timed out"}},
                  {"acknowledged", false},
                  {"text", "restarted nginx.service"},
                  {"failure", "http_5xx"},
                  {"unit", "nginx.service"}}));
  EXPECT_EQ(body.size(), 6u);
}

TEST(PagePagerDuty, OptionalFieldsFallBackOrAreLeftOut) {
  NotifyConfig n = Notifier(NotifierKind::pagerduty);  // no url: the public endpoint
  Page p = MakePage(PageAction::update);
  p.service.clear();
  p.team.clear();
  const RenderedRequest r = Render(n, p, Ctx(""));
  EXPECT_EQ(r.url, "https://events.pagerduty.com/v2/enqueue");
  const Json body = Body(r);
  EXPECT_EQ(body["event_action"], "trigger");
  EXPECT_EQ(body["payload"]["component"], "checkout-http");  // the check, without a service
  EXPECT_EQ(body["payload"]["class"], "checkout-http");      // the check, without a failure
  EXPECT_FALSE(body["payload"].contains("group"));
  EXPECT_FALSE(body.contains("client_url"));
  EXPECT_FALSE(body["payload"]["custom_details"].contains("text"));
}

TEST(PagePagerDuty, SeverityMapping) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty);
  const std::vector<std::pair<Severity, std::string>> cases = {
      {Severity::sev1, "critical"}, {Severity::sev2, "error"}, {Severity::sev3, "warning"}};
  for (const auto& [s, want] : cases) {
    Page p = MakePage();
    p.severity = s;
    EXPECT_EQ(Body(Render(n, p))["payload"]["severity"], want);
  }
}

TEST(PagePagerDuty, SummaryIsCutTo1024BytesAtACharacterBoundary) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty);
  Page p = MakePage();
  p.title.clear();
  for (int i = 0; i < 500; ++i) p.title += "\xE2\x82\xAC";  // €, 3 bytes: 1500 bytes
  const std::string summary = Body(Render(n, p))["payload"]["summary"];
  // 1021 bytes leave room for 340 whole euro signs; then the ellipsis.
  std::string want;
  for (int i = 0; i < 340; ++i) want += "\xE2\x82\xAC";
  want += "\xE2\x80\xA6";
  EXPECT_EQ(summary, want);
  EXPECT_EQ(summary.size(), 1023u);

  p.title = std::string(1024, 'a');  // exactly the limit: untouched
  EXPECT_EQ(Body(Render(n, p))["payload"]["summary"], std::string(1024, 'a'));
}

TEST(PagePagerDuty, AcknowledgeAndResolveAreMinimal) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty, {"https://pd.example"});
  for (const PageAction a : {PageAction::acknowledge, PageAction::resolve}) {
    const RenderedRequest r = Render(n, MakePage(a));
    EXPECT_EQ(r.url, "https://pd.example/v2/enqueue");
    EXPECT_EQ(Body(r), Json({{"routing_key", "0123456789abcdef0123456789abcdef"},
                             {"dedup_key", "vigil/web1/20261127-014200-checkout"},
                             {"event_action", std::string(to_string(a))}}));
  }
}

TEST(PagePagerDuty, ChangeEventGoesToTheChangeEndpoint) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty, {"https://events.pagerduty.com"});
  Page p = MakePage(PageAction::change);
  p.text = "rolled back checkout: B -> A";
  p.details = {{"release", "A"}};
  const RenderedRequest r = Render(n, p);
  EXPECT_EQ(r.url, "https://events.pagerduty.com/v2/change/enqueue");
  EXPECT_EQ(Body(r), Json({{"routing_key", "0123456789abcdef0123456789abcdef"},
                           {"payload",
                            {{"summary", "rolled back checkout: B -> A"},
                             {"source", "web1"},
                             {"timestamp", "2026-11-27T01:42:00.000Z"},
                             {"custom_details",
                              {{"incident", "20261127-014200-checkout"},
                               {"service", "checkout"},
                               {"text", "rolled back checkout: B -> A"},
                               {"release", "A"}}}}},
                           {"links",
                            {{{"href", "https://vigil.example/incidents/20261127-014200-checkout"},
                              {"text", "vigil incident 20261127-014200-checkout"}}}}}));
  EXPECT_FALSE(Body(Render(n, p, Ctx(""))).contains("links"));
}

TEST(PagePagerDuty, HeartbeatIsSkipped) {
  Page p;
  p.action = PageAction::heartbeat;
  EXPECT_TRUE(Render(Notifier(NotifierKind::pagerduty), p).skip);
}

TEST(PagePagerDuty, EventStaysWithin512KBByCuttingEvidence) {
  const NotifyConfig n = Notifier(NotifierKind::pagerduty);
  Page p = MakePage();
  p.evidence.assign(100, std::string(10'000, 'e'));  // ~1 MB of evidence
  const RenderedRequest r = Render(n, p);
  EXPECT_LE(r.body.size(), 512u * 1024u);
  EXPECT_GT(r.body.size(), 500u * 1024u);  // cut to fit, not thrown away
  const Json evidence = Body(r)["payload"]["custom_details"]["evidence"];
  ASSERT_GE(evidence.size(), 2u);
  const std::size_t kept = evidence.size() - 1;
  EXPECT_EQ(evidence.back(),
            "(" + std::to_string(100 - kept) + " more lines cut to fit PagerDuty's 512 KB limit)");
  EXPECT_EQ(evidence[0], std::string(10'000, 'e'));
}

// ---------------------------------------------------------------------------------------------
// Grafana OnCall

TEST(PageOnCall, AlertingThenOkWithTheSameTitle) {
  const NotifyConfig n = Notifier(
      NotifierKind::oncall, {"https://oncall.example/integrations/v1/formatted_webhook/abc/"});
  const RenderedRequest fire = Render(n, MakePage());
  EXPECT_EQ(fire.method, HttpMethod::post);
  EXPECT_EQ(fire.url, "https://oncall.example/integrations/v1/formatted_webhook/abc/");
  EXPECT_EQ(Header(fire, "Content-Type"), "application/json");
  EXPECT_EQ(Body(fire), Json({{"alert_uid", "vigil/web1/20261127-014200-checkout"},
                              {"title", "[SEV1] checkout: HTTP 503 (https://shop/health)"},
                              {"message",
                               "HTTP 503 in 12ms\nstate: triaged\nnginx.service: active (running)\n"
                               "upstream timed out"},
                              {"state", "alerting"},
                              {"link_to_upstream_details",
                               "https://vigil.example/incidents/20261127-014200-checkout"}}));

  Page resolve = MakePage(PageAction::resolve);
  resolve.state = "resolved";
  const Json ok = Body(Render(n, resolve, Ctx("")));
  EXPECT_EQ(ok["state"], "ok");
  EXPECT_EQ(ok["title"], Body(fire)["title"]);
  EXPECT_EQ(ok["alert_uid"], Body(fire)["alert_uid"]);
  EXPECT_FALSE(ok.contains("link_to_upstream_details"));

  EXPECT_EQ(Body(Render(n, MakePage(PageAction::update)))["state"], "alerting");
  for (const PageAction a : {PageAction::acknowledge, PageAction::change, PageAction::heartbeat}) {
    EXPECT_TRUE(Render(n, MakePage(a)).skip) << to_string(a);
  }
}

// ---------------------------------------------------------------------------------------------
// Status page

TEST(PageStatuspage, CreateFieldByFieldWithNothingInternal) {
  NotifyConfig n = Notifier(NotifierKind::statuspage, {"https://api.statuspage.io/"});
  n.component_ids = {"c1", "c2"};
  Page p = MakePage();
  p.state = "detected";
  const RenderedRequest r = Render(n, p);
  EXPECT_EQ(r.method, HttpMethod::post);
  EXPECT_EQ(r.url, "https://api.statuspage.io/v1/pages/pg1/incidents");
  EXPECT_EQ(Header(r, "Authorization"), "OAuth sp-api-key");
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  EXPECT_EQ(Body(r), Json({{"incident",
                            {{"name", "checkout: service disruption"},
                             {"status", "investigating"},
                             {"body", "We are investigating problems with checkout."},
                             {"impact_override", "critical"},
                             {"component_ids", {"c1", "c2"}}}}}));
  // Public: no evidence, no host, no URL, no secret in the body.
  EXPECT_EQ(r.body.find("https://shop"), std::string::npos);
  EXPECT_EQ(r.body.find("upstream timed out"), std::string::npos);
  EXPECT_EQ(r.body.find("nginx"), std::string::npos);
  EXPECT_EQ(r.body.find("web1"), std::string::npos);
  EXPECT_EQ(r.body.find("sp-api-key"), std::string::npos);

  n.component_ids.clear();
  n.urls.clear();  // the default API base
  p.severity = Severity::sev2;
  const RenderedRequest r2 = Render(n, p);
  EXPECT_EQ(r2.url, "https://api.statuspage.io/v1/pages/pg1/incidents");
  EXPECT_EQ(Body(r2)["incident"]["impact_override"], "major");
  EXPECT_FALSE(Body(r2)["incident"].contains("component_ids"));
  p.severity = Severity::sev3;
  EXPECT_EQ(Body(Render(n, p))["incident"]["impact_override"], "minor");
}

TEST(PageStatuspage, StatusFollowsTheIncidentState) {
  const NotifyConfig n = Notifier(NotifierKind::statuspage);
  RenderContext ctx = Ctx();
  ctx.remote_id = "inc42";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"detected", "investigating", "We are investigating problems with checkout."},
      {"triaged", "investigating", "We are investigating problems with checkout."},
      {"escalated", "investigating", "We are investigating problems with checkout."},
      {"mitigating", "identified", "The cause is identified and a fix is being applied."},
      {"verifying", "monitoring", "A fix has been applied and we are monitoring the results."},
      {"resolved", "resolved", "This incident has been resolved."}};
  for (const auto& [state, status, text] : cases) {
    Page p = MakePage(PageAction::update);
    p.state = state;
    EXPECT_EQ(Body(Render(n, p, ctx)), Json({{"incident", {{"status", status}, {"body", text}}}}))
        << state;
  }
  Page resolve = MakePage(PageAction::resolve);  // the action decides, whatever the state says
  EXPECT_EQ(Body(Render(n, resolve, ctx))["incident"]["status"], "resolved");
}

TEST(PageStatuspage, UpdatesPatchTheRemoteIncident) {
  const NotifyConfig n = Notifier(NotifierKind::statuspage, {"https://sp.example"});
  RenderContext ctx = Ctx();
  ctx.remote_id = "p31zjtct2jer";
  Page p = MakePage(PageAction::update);
  p.state = "mitigating";
  p.text = "A restart is under way.";
  const RenderedRequest r = Render(n, p, ctx);
  EXPECT_EQ(r.method, HttpMethod::patch);
  EXPECT_EQ(r.url, "https://sp.example/v1/pages/pg1/incidents/p31zjtct2jer");
  EXPECT_EQ(Header(r, "Authorization"), "OAuth sp-api-key");
  EXPECT_EQ(Body(r), Json({{"incident",
                            {{"status", "identified"},
                             {"body", "The cause is identified and a fix is being applied."}}}}));
  EXPECT_EQ(r.body.find("restart"), std::string::npos);  // vigil's own words stay internal
  EXPECT_EQ(r.body.find("nginx"), std::string::npos);

  const RenderedRequest res = Render(n, MakePage(PageAction::resolve), ctx);
  EXPECT_EQ(res.method, HttpMethod::patch);
  EXPECT_EQ(res.url, "https://sp.example/v1/pages/pg1/incidents/p31zjtct2jer");

  const Result<RenderedRequest> early = render(n, 0, p, Ctx());
  ASSERT_FALSE(early);
  EXPECT_EQ(early.error().message, "statuspage: no incident id yet for 20261127-014200-checkout");

  for (const PageAction a : {PageAction::acknowledge, PageAction::change, PageAction::heartbeat}) {
    EXPECT_TRUE(Render(n, MakePage(a), ctx).skip) << to_string(a);
  }
}

// ---------------------------------------------------------------------------------------------
// Webhook

TEST(PageWebhook, BodyFieldByField) {
  NotifyConfig n = Notifier(NotifierKind::webhook, {"https://chat.example/hook"});
  n.headers = {{"X-Team", "payments"}};
  Page p = MakePage(PageAction::resolve);
  p.state = "resolved";
  p.resolved = T("2026-11-27T01:50:00.000Z");
  p.text = "recovered";
  p.details = {{"unit", "nginx.service"}};
  const RenderedRequest r = Render(n, p);
  EXPECT_EQ(r.method, HttpMethod::post);
  EXPECT_EQ(r.url, "https://chat.example/hook");
  EXPECT_EQ(Header(r, "Content-Type"), "application/json");
  EXPECT_EQ(Header(r, "X-Team"), "payments");
  EXPECT_EQ(Header(r, "X-Vigil-Signature"), "<absent>");  // no secret, no signature
  EXPECT_EQ(Body(r), Json({{"version", 1},
                           {"event", "resolve"},
                           {"dedup_key", "vigil/web1/20261127-014200-checkout"},
                           {"incident", "20261127-014200-checkout"},
                           {"host", "web1"},
                           {"title", "checkout: HTTP 503 (https://shop/health)"},
                           {"summary", "HTTP 503 in 12ms"},
                           {"severity", "SEV1"},
                           {"state", "resolved"},
                           {"service", "checkout"},
                           {"team", "payments"},
                           {"check", "checkout-http"},
                           {"acknowledged", false},
                           {"dry_run", false},
                           {"text", "recovered"},
                           {"evidence", {"nginx.service: active (running)", "upstream timed out"}},
                           {"started", "2026-11-27T01:41:00.000Z"},
                           {"at", "2026-11-27T01:42:00.000Z"},
                           {"resolved", "2026-11-27T01:50:00.000Z"},
                           {"link", "https://vigil.example/incidents/20261127-014200-checkout"},
                           {"details", {{"unit", "nginx.service"}}}}));

  const Json plain = Body(Render(n, MakePage(PageAction::acknowledge), Ctx("")));
  EXPECT_EQ(plain["event"], "acknowledge");
  EXPECT_FALSE(plain.contains("link"));
  EXPECT_FALSE(plain.contains("resolved"));
  EXPECT_EQ(plain["details"], Json::object());

  Page hb;
  hb.action = PageAction::heartbeat;
  EXPECT_TRUE(Render(n, hb).skip);
}

TEST(PageWebhook, TestHmacMatchesRfc4231) {
  // RFC 4231, test case 2: checks the helper the next test relies on.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(PageWebhook, SignatureIsTheHmacOfTheExactBody) {
  NotifyConfig n = Notifier(NotifierKind::webhook, {"https://chat.example/hook"});
  n.secret = "Jefe";
  n.signature_header = "X-Hub-Signature-256";
  const RenderedRequest r = Render(n, MakePage());
  const std::string sig = Header(r, "X-Hub-Signature-256");
  EXPECT_EQ(sig, "sha256=" + HmacSha256Hex("Jefe", r.body));
  EXPECT_EQ(sig.size(), 7u + 64u);
  EXPECT_NE(sig, "sha256=" + HmacSha256Hex("Jeff", r.body));
  EXPECT_EQ(r.body.find("Jefe"), std::string::npos);  // the key never travels
}

// ---------------------------------------------------------------------------------------------
// Every format

std::vector<NotifyConfig> AllNotifiers() {
  NotifyConfig hook = Notifier(NotifierKind::webhook, {"https://chat.example/hook"});
  hook.secret = "webhook-secret";
  return {Notifier(NotifierKind::alertmanager, {"http://am1:9093"}),
          Notifier(NotifierKind::pagerduty), Notifier(NotifierKind::oncall, {"https://oc/x"}),
          Notifier(NotifierKind::statuspage), hook};
}

TEST(PageRender, InvalidUtf8EvidenceYieldsValidJson) {
  Page p = MakePage();
  p.evidence = {"bad \xC3\x28 byte", "cut \xE2\x82", "\xFF\xFE", "overlong \xC0\xAF"};
  p.summary = "summary \xED\xA0\x80 (a surrogate)";
  p.title = "title \xF5";
  for (const NotifyConfig& n : AllNotifiers()) {
    const RenderedRequest r = Render(n, p);
    EXPECT_TRUE(ValidUtf8(r.body)) << n.name;
    EXPECT_FALSE(Body(r).is_null()) << n.name;
  }
  // The replacement character shows where a byte was bad.
  const Json wh = Body(Render(AllNotifiers().back(), p));
  EXPECT_EQ(wh["evidence"][0], "bad \xEF\xBF\xBD( byte");
}

TEST(PageRender, DryRunPagesAreTagged) {
  Page p = MakePage();
  p.dry_run = true;
  const std::string title = "[DRY-RUN] checkout: HTTP 503 (https://shop/health)";
  const std::vector<NotifyConfig> all = AllNotifiers();
  EXPECT_EQ(Body(Render(all[0], p))[0]["annotations"]["summary"], title);
  EXPECT_EQ(Body(Render(all[0], p))[0]["annotations"]["description"], "[DRY-RUN] HTTP 503 in 12ms");
  EXPECT_EQ(Body(Render(all[1], p))["payload"]["summary"], title);
  EXPECT_EQ(Body(Render(all[2], p))["title"], "[SEV1] " + title);
  // The public status page names the service, never the internal title (nor the tag).
  EXPECT_EQ(Body(Render(all[3], p))["incident"]["name"], "checkout: service disruption");
  const Json wh = Body(Render(all[4], p));
  EXPECT_EQ(wh["title"], title);
  EXPECT_EQ(wh["summary"], "[DRY-RUN] HTTP 503 in 12ms");
  EXPECT_EQ(wh["dry_run"], true);
}

TEST(PageRender, SecretsOnlyWhereTheFormatWantsThem) {
  for (const NotifyConfig& n : AllNotifiers()) {
    NotifyConfig m = n;
    m.secret = "SECRET-abc-123";
    for (const PageAction a : {PageAction::trigger, PageAction::resolve}) {
      RenderContext ctx = Ctx();
      ctx.remote_id = "inc1";
      const RenderedRequest r = Render(m, MakePage(a), ctx);
      const bool in_body = r.body.find("SECRET-abc-123") != std::string::npos;
      EXPECT_EQ(in_body, n.kind == NotifierKind::pagerduty) << n.name;
      for (const auto& [k, v] : r.headers) {
        if (v.find("SECRET-abc-123") != std::string::npos) {
          EXPECT_EQ(n.kind, NotifierKind::statuspage) << n.name << " header " << k;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// judge

DeliveryAnswer Answer(long status, std::string body = "", std::string retry_after = "") {
  DeliveryAnswer a;
  a.transport_ok = true;
  a.status = status;
  a.body = std::move(body);
  a.retry_after = std::move(retry_after);
  return a;
}

TEST(PageJudge, TwoHundredsAreDelivered) {
  const NotifyConfig pd = Notifier(NotifierKind::pagerduty);
  const Verdict v = judge(
      pd, MakePage(),
      Answer(202, R"({"status":"success","message":"Event processed","dedup_key":"k"})"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::delivered);
  EXPECT_EQ(v.remote_id, "");
  EXPECT_EQ(v.retry_after, std::nullopt);
  EXPECT_EQ(judge(Notifier(NotifierKind::alertmanager), MakePage(), Answer(200), kNow).kind,
            Verdict::Kind::delivered);
}

TEST(PageJudge, BadRequestsArePermanentAndSayWhy) {
  const NotifyConfig pd = Notifier(NotifierKind::pagerduty);
  Verdict v = judge(
      pd, MakePage(),
      Answer(
          400,
          R"({"status":"invalid event","message":"Event object is invalid",)"
          R"("errors":["Length of 'routing_key' is incorrect","'payload.summary' is missing"]})"),
      kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  EXPECT_EQ(v.why,
            "HTTP 400: invalid event: Length of 'routing_key' is incorrect; 'payload.summary' is "
            "missing");

  const NotifyConfig am = Notifier(NotifierKind::alertmanager);
  v = judge(am, MakePage(), Answer(400, "start time must be before end time\n"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  EXPECT_EQ(v.why, "HTTP 400: start time must be before end time");

  v = judge(am, MakePage(), Answer(413, std::string(1000, 'x')), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  // The first 200 bytes of the body.
  EXPECT_EQ(v.why, "HTTP 413: " + std::string(197, 'x') + "\xE2\x80\xA6");

  v = judge(Notifier(NotifierKind::webhook), MakePage(), Answer(422), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  EXPECT_EQ(v.why, "HTTP 422");
}

TEST(PageJudge, RateLimitsHonourRetryAfterSecondsOrDate) {
  const NotifyConfig pd = Notifier(NotifierKind::pagerduty);
  Verdict v = judge(pd, MakePage(), Answer(429, "", "30"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.retry_after, Duration(seconds(30)));
  EXPECT_EQ(v.why, "HTTP 429");

  // now is 01:42:07.123: one minute later on the second, minus the milliseconds.
  v = judge(pd, MakePage(), Answer(429, "", "Fri, 27 Nov 2026 01:43:07 GMT"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.retry_after, Duration(59'877));

  v = judge(pd, MakePage(), Answer(429, "", "Fri, 27 Nov 2026 23:59:59 GMT"), kNow);
  EXPECT_EQ(v.retry_after, Duration(((22 * 60 + 17) * 60 + 51) * 1000 + 877));

  v = judge(pd, MakePage(), Answer(429, "", "Sun, 06 Nov 1994 08:49:37 GMT"), kNow);
  EXPECT_EQ(v.retry_after, Duration(0));  // in the past

  for (const char* bad :
       {"soon", "-5", "1.5", "Fri, 27 Nov 2026 01:43:07 UTC", "Fri, 31 Nov 2026 01:43:07 GMT",
        "Fri, 27 Nov 2026 24:00:00 GMT", "Friday, 27-Nov-26 01:43:07 GMT"}) {
    v = judge(pd, MakePage(), Answer(429, "", bad), kNow);
    EXPECT_EQ(v.kind, Verdict::Kind::retry) << bad;
    EXPECT_EQ(v.retry_after, std::nullopt) << bad;
  }
  v = judge(pd, MakePage(), Answer(503, "", " 120 "), kNow);
  EXPECT_EQ(v.retry_after, Duration(seconds(120)));
}

TEST(PageJudge, ServerErrorsAndTimeoutsAreRetried) {
  const NotifyConfig am = Notifier(NotifierKind::alertmanager);
  for (const long status : {408L, 500L, 502L, 503L, 504L}) {
    const Verdict v = judge(am, MakePage(), Answer(status, "oops"), kNow);
    EXPECT_EQ(v.kind, Verdict::Kind::retry) << status;
    EXPECT_EQ(v.why, "HTTP " + std::to_string(status) + ": oops");
    EXPECT_EQ(v.retry_after, std::nullopt);
  }
}

TEST(PageJudge, OtherClientErrorsAreRetriedAsConfigMistakes) {
  Verdict v = judge(Notifier(NotifierKind::pagerduty), MakePage(), Answer(401), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.why, "HTTP 401: probably a config mistake, check the routing key");
  v = judge(Notifier(NotifierKind::statuspage), MakePage(), Answer(403, "forbidden"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.why, "HTTP 403: probably a config mistake, check the API key: forbidden");
  v = judge(Notifier(NotifierKind::webhook), MakePage(), Answer(404), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.why, "HTTP 404: probably a config mistake, check the url");
}

TEST(PageJudge, TransportErrorsAreRetried) {
  DeliveryAnswer a;
  a.transport_ok = false;
  a.error = "Failed to connect to am1 port 9093: Connection refused";
  const Verdict v = judge(Notifier(NotifierKind::alertmanager), MakePage(), a, kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::retry);
  EXPECT_EQ(v.why, "Failed to connect to am1 port 9093: Connection refused");
  EXPECT_EQ(v.retry_after, std::nullopt);
}

TEST(PageJudge, StatuspageCreateReadsTheIncidentId) {
  const NotifyConfig sp = Notifier(NotifierKind::statuspage);
  const Page create = MakePage(PageAction::trigger);
  const std::string answer =
      R"({"id":"p31zjtct2jer","components":[{"id":"c1"}],"name":"checkout",)"
      R"("incident_updates":[{"id":"u1","incident_id":"p31zjtct2jer","body":"We are investigating"}]})";
  Verdict v = judge(sp, create, Answer(201, answer), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::delivered);
  EXPECT_EQ(v.remote_id, "p31zjtct2jer");

  // The id after nested ones (only the top-level one counts), in an answer cut short.
  v = judge(sp, create,
            Answer(201, R"({"components":[{"id":"c1","x":{"id":"deep"}}],"id":"abc","name":"che)"),
            kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::delivered);
  EXPECT_EQ(v.remote_id, "abc");

  v = judge(sp, create, Answer(201, R"({"id":12345})"), kNow);
  EXPECT_EQ(v.remote_id, "12345");

  // Created but no id: retrying would post a second public incident; refused loudly instead.
  v = judge(sp, create, Answer(201, R"({"components":[{"id":"c1"}],"name":"x"})"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  EXPECT_EQ(v.remote_id, "");
  EXPECT_NE(v.why.find("no id"), std::string::npos) << v.why;

  // An update needs no id back.
  v = judge(sp, MakePage(PageAction::update), Answer(200, "{}"), kNow);
  EXPECT_EQ(v.kind, Verdict::Kind::delivered);
  EXPECT_EQ(v.remote_id, "");
}

// ---------------------------------------------------------------------------------------------
// backoff

TEST(PageBackoff, DoublesFromOneSecondUpToFiveMinutes) {
  const std::vector<std::pair<int, long>> full = {
      {1, 1'000},   {2, 2'000},    {3, 4'000},    {4, 8'000},    {5, 16'000},       {8, 128'000},
      {9, 256'000}, {10, 300'000}, {11, 300'000}, {64, 300'000}, {INT_MAX, 300'000}};
  for (const auto& [attempts, ms] : full) {
    EXPECT_EQ(backoff(attempts, 1.0, std::nullopt), Duration(ms)) << attempts;
  }
  EXPECT_EQ(backoff(0, 1.0, std::nullopt), Duration(1'000));
  EXPECT_EQ(backoff(-7, 1.0, std::nullopt), Duration(1'000));
  EXPECT_EQ(backoff(INT_MIN, 1.0, std::nullopt), Duration(1'000));
}

TEST(PageBackoff, JitterSpreadsOverHalfToAllOfTheStep) {
  EXPECT_EQ(backoff(3, 0.0, std::nullopt), Duration(2'000));
  EXPECT_EQ(backoff(3, 0.5, std::nullopt), Duration(3'000));
  EXPECT_EQ(backoff(3, 1.0, std::nullopt), Duration(4'000));
  EXPECT_EQ(backoff(20, 0.0, std::nullopt), Duration(150'000));
  EXPECT_EQ(backoff(3, -1.0, std::nullopt), Duration(2'000));  // clamped
  EXPECT_EQ(backoff(3, 7.0, std::nullopt), Duration(4'000));
  for (double j = 0.0; j <= 1.0; j += 0.125) {
    const Duration d = backoff(5, j, std::nullopt);
    EXPECT_GE(d, Duration(8'000)) << j;
    EXPECT_LE(d, Duration(16'000)) << j;
  }
}

TEST(PageBackoff, ALongerRetryAfterWinsCappedAtAnHour) {
  EXPECT_EQ(backoff(1, 1.0, Duration(seconds(30))), Duration(seconds(30)));
  EXPECT_EQ(backoff(10, 1.0, Duration(seconds(30))), Duration(seconds(300)));  // shorter: ignored
  EXPECT_EQ(backoff(1, 1.0, Duration(hours(5))), Duration(hours(1)));
  EXPECT_EQ(backoff(1, 1.0, Duration(0)), Duration(1'000));
}

}  // namespace
}  // namespace vigil
