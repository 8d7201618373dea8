// The notifier plugins (notify/notifier.h, register.cpp): one per kind, the facts the pager plans
// by, and a few pages and answers through a plugin directly. Every wire format is checked field by
// field through render()/judge() in page_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "notify/register.h"

namespace vigil {
namespace {

constexpr NotifierKind kKinds[] = {NotifierKind::alertmanager, NotifierKind::pagerduty,
                                   NotifierKind::oncall, NotifierKind::statuspage,
                                   NotifierKind::webhook};

const Notifier& Of(NotifierKind k) {
  const Notifier* n = notifier_for(k);
  if (n == nullptr) ADD_FAILURE() << "no notifier for " << to_string(k);
  static const auto kAll = make_notifiers();
  return n != nullptr ? *n : *kAll.begin()->second;
}

Page MakePage(PageAction action) {
  Page p;
  p.action = action;
  p.incident = "20261127-014200-checkout";
  p.host = "web1";
  p.title = "checkout: HTTP 503";
  p.service = "checkout";
  p.severity = Severity::sev1;
  p.state = "triaged";
  return p;
}

DeliveryAnswer Answer(long status, std::string body) {
  DeliveryAnswer a;
  a.transport_ok = true;
  a.status = status;
  a.body = std::move(body);
  return a;
}

TEST(Notifiers, EveryKindHasOneWhoseKindMatches) {
  const auto all = make_notifiers();
  EXPECT_EQ(all.size(), std::size(kKinds));
  for (const NotifierKind k : kKinds) {
    const auto it = all.find(k);
    ASSERT_NE(it, all.end()) << to_string(k);
    ASSERT_NE(it->second, nullptr) << to_string(k);
    EXPECT_EQ(it->second->kind(), k) << to_string(k);
    ASSERT_NE(notifier_for(k), nullptr) << to_string(k);
    EXPECT_EQ(notifier_for(k)->kind(), k) << to_string(k);
  }
}

TEST(Notifiers, OnlyPagerDutyAndWebhooksHaveAnAcknowledge) {
  for (const NotifierKind k : kKinds) {
    const bool expected = k == NotifierKind::pagerduty || k == NotifierKind::webhook;
    EXPECT_EQ(Of(k).has_acknowledge(), expected) << to_string(k);
  }
}

TEST(Notifiers, OnlyPagerDutyTakesChangeEvents) {
  for (const NotifierKind k : kKinds) {
    EXPECT_EQ(Of(k).takes_change_events(), k == NotifierKind::pagerduty) << to_string(k);
  }
}

TEST(Notifiers, KindsWithoutAnAcknowledgeSkipIt) {
  NotifyConfig n;
  n.name = "x";
  n.urls = {"http://receiver:9093/"};
  n.page_id = "pg1";
  for (const NotifierKind k : kKinds) {
    n.kind = k;
    const auto r = Of(k).render(n, 0, MakePage(PageAction::acknowledge), RenderContext{});
    ASSERT_TRUE(r.has_value()) << to_string(k);
    EXPECT_EQ(r->skip, !Of(k).has_acknowledge()) << to_string(k);
  }
}

TEST(Notifiers, AlertmanagerPostsToTheChosenPeer) {
  NotifyConfig n;
  n.kind = NotifierKind::alertmanager;
  n.name = "am";
  n.urls = {"http://am1:9093/", "http://am2:9093"};
  const auto r =
      Of(NotifierKind::alertmanager).render(n, 1, MakePage(PageAction::trigger), RenderContext{});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->url, "http://am2:9093/api/v2/alerts");
  const auto alerts = nlohmann::json::parse(r->body);
  ASSERT_EQ(alerts.size(), 1U);
  EXPECT_EQ(alerts[0]["labels"]["alertname"], "VigilIncident");
  EXPECT_EQ(alerts[0]["labels"]["severity"], "SEV1");

  const auto none =
      Of(NotifierKind::alertmanager).render(n, 2, MakePage(PageAction::trigger), RenderContext{});
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().message, "alertmanager am: no peer #2");
}

TEST(Notifiers, PagerDutySaysWhichFieldsAreWrong) {
  const Verdict v =
      Of(NotifierKind::pagerduty)
          .judge(MakePage(PageAction::trigger),
                 Answer(400, R"({"status":"invalid event","message":"Event object is invalid",)"
                             R"("errors":["'payload.summary' is missing"]})"),
                 TimePoint{});
  EXPECT_EQ(v.kind, Verdict::Kind::permanent);
  EXPECT_EQ(v.why, "HTTP 400: invalid event: 'payload.summary' is missing");

  const Verdict auth = Of(NotifierKind::pagerduty)
                           .judge(MakePage(PageAction::trigger), Answer(403, ""), TimePoint{});
  EXPECT_EQ(auth.kind, Verdict::Kind::retry);
  EXPECT_EQ(auth.why, "HTTP 403: probably a config mistake, check the routing key");
}

TEST(Notifiers, StatuspageKeepsTheNewIncidentsId) {
  const Notifier& sp = Of(NotifierKind::statuspage);
  const Verdict created = sp.judge(MakePage(PageAction::trigger),
                                   Answer(201, R"({"id":"p31zjtct2jer","name":"x"})"), TimePoint{});
  EXPECT_EQ(created.kind, Verdict::Kind::delivered);
  EXPECT_EQ(created.remote_id, "p31zjtct2jer");

  const Verdict no_id = sp.judge(MakePage(PageAction::trigger), Answer(201, "{}"), TimePoint{});
  EXPECT_EQ(no_id.kind, Verdict::Kind::permanent);
  EXPECT_EQ(no_id.why, "HTTP 201: statuspage created the incident but its answer has no id: {}");

  // An update's answer carries the same id: it is not read again.
  const Verdict updated =
      sp.judge(MakePage(PageAction::update), Answer(200, R"({"id":"p31zjtct2jer"})"), TimePoint{});
  EXPECT_EQ(updated.kind, Verdict::Kind::delivered);
  EXPECT_EQ(updated.remote_id, "");
}

TEST(Notifiers, OtherKindsUseTheGenericHint) {
  for (const NotifierKind k :
       {NotifierKind::alertmanager, NotifierKind::oncall, NotifierKind::webhook}) {
    const Verdict v = Of(k).judge(MakePage(PageAction::trigger), Answer(404, ""), TimePoint{});
    EXPECT_EQ(v.kind, Verdict::Kind::retry) << to_string(k);
    EXPECT_EQ(v.why, "HTTP 404: probably a config mistake, check the url") << to_string(k);
  }
}

}  // namespace
}  // namespace vigil
