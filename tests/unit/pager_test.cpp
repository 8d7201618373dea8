// The pager (notify/pager.h): which pages an incident needs now. Incidents come from the real
// IncidentBook (findings in), mirrored into a local Incident to which the tests also apply the
// page events the daemon would write (page_event() of every planned page that is not quiet), so
// what was paged is read back from the timeline exactly as after a restart. Times are built by
// hand (t(n) is n seconds after a fixed epoch); nothing sleeps, nothing is sent.
#include "notify/pager.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace vigil {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TimePoint t(int n) { return TimePoint{} + seconds(1'700'000'000) + seconds(n); }
constexpr int kMin = 60;

NotifyConfig Notify(const std::string& name, NotifierKind kind, Severity severity,
                    std::vector<std::string> teams = {}) {
  NotifyConfig n;
  n.name = name;
  n.kind = kind;
  n.severity = severity;
  n.teams = std::move(teams);
  n.urls = {"http://" + name + ".example:9093"};
  return n;
}

CheckConfig Http(const std::string& name, const std::string& service, const std::string& team) {
  CheckConfig c;
  c.name = name;
  c.probe = "unit";
  c.service = service;
  c.team = team;
  // A unit check, not an HTTP one: the pager does not care which, and g++ 12 -O2 gives a false
  // maybe-uninitialized warning on HttpSettings' default expect_status in this file.
  c.settings = UnitSettings{{name + ".service"}};
  return c;
}

// Every kind, routed differently:
//   am      alertmanager, every incident
//   pd      pagerduty, SEV2 or worse, team payments
//   oncall  oncall, SEV1 only
//   status  statuspage, SEV1 only
//   hook    webhook, every severity, team payments
//   search  webhook, team search
Config Routed() {
  Config c;
  c.notify = {Notify("am", NotifierKind::alertmanager, Severity::sev3),
              Notify("pd", NotifierKind::pagerduty, Severity::sev2, {"payments"}),
              Notify("oncall", NotifierKind::oncall, Severity::sev1),
              Notify("status", NotifierKind::statuspage, Severity::sev1),
              Notify("hook", NotifierKind::webhook, Severity::sev3, {"payments"}),
              Notify("search", NotifierKind::webhook, Severity::sev3, {"search"})};
  return c;
}

// The payments team's chain (primary, 5m, secondary, 5m, manager), beside PagerDuty.
Config Chained() {
  Config c;
  c.notify = {Notify("pd", NotifierKind::pagerduty, Severity::sev3),
              Notify("primary", NotifierKind::webhook, Severity::sev3),
              Notify("secondary", NotifierKind::webhook, Severity::sev3),
              Notify("manager", NotifierKind::webhook, Severity::sev3)};
  EscalationConfig e;
  e.team = "payments";
  e.steps = {{"primary", Duration(0)}, {"secondary", minutes(5)}, {"manager", minutes(5)}};
  c.escalations = {e};
  return c;
}

// "NOTIFIER ACTION[ step K][ quiet]" per planned page, in order: exact and readable.
std::vector<std::string> names(const std::vector<PlannedPage>& pages) {
  std::vector<std::string> out;
  for (const PlannedPage& p : pages) {
    std::string s = p.page.notifier + " " + std::string(to_string(p.page.action));
    if (p.step >= 0) s += " step " + std::to_string(p.step);
    if (p.quiet) s += " quiet";
    out.push_back(s);
  }
  return out;
}
using Names = std::vector<std::string>;

const PlannedPage& find(const std::vector<PlannedPage>& pages, const std::string& notifier) {
  for (const PlannedPage& p : pages) {
    if (p.page.notifier == notifier) return p;
  }
  ADD_FAILURE() << "no page for " << notifier;
  static const PlannedPage none;
  return none;
}

class Pager : public ::testing::Test {
 protected:
  Pager()
      : cfg(Routed()),
        // upgrade_after 0: no raise by age, so hour-long cadences keep their severity.
        book(TriageSettings{"h1", Duration::zero()}),
        web(Http("web", "shop", "payments")),
        db(Http("db", "shop", "payments")),
        search_api(Http("search-api", "search", "search")) {}

  // The book's events for our incident, applied to the mirror.
  void take(const std::vector<IncidentBook::Change>& changes) {
    for (const IncidentBook::Change& c : changes) {
      if (inc.id.empty()) inc.id = c.incident;
      if (c.incident == inc.id) inc.apply(c.event);
    }
  }
  Finding finding(const CheckConfig& c, Finding::Kind kind, Severity s, int at) {
    Finding f;
    f.check = c.name;
    f.kind = kind;
    f.severity = s;
    f.reason = "test";
    f.at = t(at);
    f.since = t(at);
    f.observation.check = c.name;
    f.observation.at = t(at);
    const bool ok = kind == Finding::Kind::recovered;
    f.observation.failure = ok ? FailureKind::none : FailureKind::http_5xx;
    f.observation.summary = ok ? "HTTP 200 in 9ms" : "HTTP 503 in 12ms";
    return f;
  }
  void fire(const CheckConfig& c, Severity s, int at,
            InMaintenance maintenance = InMaintenance::no) {
    take(book.on_finding(c, finding(c, Finding::Kind::firing, s, at), maintenance));
  }
  void reseverity(const CheckConfig& c, Severity s, int at) {
    take(book.on_finding(c, finding(c, Finding::Kind::severity_changed, s, at)));
  }
  // A recovery carries the member's last severity, as the classifier's does.
  void recover(const CheckConfig& c, int at) {
    const auto m = inc.members.find({c.name, ""});
    const Severity last = m == inc.members.end() ? Severity::sev3 : m->second.severity;
    take(book.on_finding(c, finding(c, Finding::Kind::recovered, last, at)));
  }
  void flap(const CheckConfig& c, Flapping f, Severity s, int at) {
    take(book.on_flapping(c, "", f, s, "test", t(at)));
  }
  void record(TimelineEvent e) {
    ASSERT_FALSE(inc.id.empty());
    const auto changes = book.record(inc.id, e);
    if (changes.empty()) {
      inc.apply(e);  // resolved already: the mirror takes it anyway
    } else {
      take(changes);
    }
  }
  void ack(int at) {
    TimelineEvent e;
    e.at = t(at);
    e.type = TimelineEvent::Type::ack;
    e.text = "acknowledged (uid 1000)";
    record(e);
  }
  void state(IncidentState s, int at) {
    TimelineEvent e;
    e.at = t(at);
    e.type = TimelineEvent::Type::state;
    e.state = s;
    e.text = "test";
    record(e);
  }
  void maintenance(bool on, int at) {
    TimelineEvent e;
    e.at = t(at);
    e.type = TimelineEvent::Type::maintenance;
    e.fields["maintenance"] = on ? "yes" : "no";
    record(e);
  }

  // What the pager wants at `at`, without queueing it.
  std::vector<PlannedPage> plan(int at) {
    PagerInput in;
    in.config = &cfg;
    in.incident = &inc;
    in.now = t(at);
    in.last_sent = last_sent;
    return plan_pages(in);
  }
  // Plans and queues, as the daemon does: a timeline event for every page that is not quiet,
  // and the Alertmanager send times in memory.
  std::vector<PlannedPage> page(int at) {
    std::vector<PlannedPage> pages = plan(at);
    for (const PlannedPage& p : pages) {
      const NotifyConfig* n = nullptr;
      for (const NotifyConfig& c : cfg.notify) {
        if (c.name == p.page.notifier) n = &c;
      }
      if (n != nullptr && n->kind == NotifierKind::alertmanager) last_sent[n->name] = t(at);
      if (!p.quiet) inc.apply(page_event(p));
    }
    return pages;
  }
  int page_events() const {
    int n = 0;
    for (const TimelineEvent& e : inc.timeline) n += e.type == TimelineEvent::Type::page;
    return n;
  }

  Config cfg;
  IncidentBook book;
  Incident inc;
  std::map<std::string, TimePoint> last_sent;
  CheckConfig web, db, search_api;
};

TEST(PagerRoutes, SeverityAndTeam) {
  const NotifyConfig sev2 = Notify("x", NotifierKind::webhook, Severity::sev2, {"a", "b"});
  EXPECT_TRUE(routes(sev2, Severity::sev1, "a"));
  EXPECT_TRUE(routes(sev2, Severity::sev2, "b"));
  EXPECT_FALSE(routes(sev2, Severity::sev3, "a"));  // not bad enough
  EXPECT_FALSE(routes(sev2, Severity::sev1, "c"));  // not their team
  EXPECT_FALSE(routes(sev2, Severity::sev1, ""));
  const NotifyConfig all = Notify("y", NotifierKind::webhook, Severity::sev3);
  EXPECT_TRUE(routes(all, Severity::sev3, ""));
  EXPECT_TRUE(routes(all, Severity::sev1, "whoever"));
  const NotifyConfig sev1 = Notify("z", NotifierKind::oncall, Severity::sev1);
  EXPECT_FALSE(routes(sev1, Severity::sev2, ""));
  EXPECT_TRUE(routes(sev1, Severity::sev1, ""));
}

TEST_F(Pager, FirstTriggerGoesToRoutedTargetsOnly) {
  fire(web, Severity::sev2, 0);
  const auto pages = plan(1);
  EXPECT_EQ(names(pages), (Names{"am trigger", "pd trigger", "hook trigger"}));
  const Page& p = find(pages, "pd").page;
  EXPECT_EQ(p.target, "pd");
  EXPECT_EQ(p.incident, inc.id);
  EXPECT_EQ(p.host, "h1");
  EXPECT_EQ(p.team, "payments");
  EXPECT_EQ(p.service, "shop");
  EXPECT_EQ(p.check, "web");
  EXPECT_EQ(p.severity, Severity::sev2);
  EXPECT_FALSE(p.previous.has_value());
  EXPECT_EQ(p.state, "triaged");
  EXPECT_EQ(p.summary, "HTTP 503 in 12ms");
  EXPECT_EQ(p.details.at("failure"), "http_5xx");
  EXPECT_EQ(p.at, t(1));
  EXPECT_EQ(p.started, t(0));
  EXPECT_FALSE(p.resolved.has_value());
  EXPECT_FALSE(p.acknowledged);
  EXPECT_FALSE(pages[0].quiet);
  EXPECT_EQ(pages[0].step, -1);
}

TEST_F(Pager, OtherTeamAndLowSeverityReachFewer) {
  fire(search_api, Severity::sev3, 0);
  EXPECT_EQ(names(plan(0)), (Names{"am trigger", "search trigger"}));
}

TEST_F(Pager, IncidentRaisedToSev1ReachesSev1OnlyTargetsThen) {
  fire(web, Severity::sev3, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger", "hook trigger"}));
  reseverity(web, Severity::sev1, 60);
  const auto pages = page(60);
  EXPECT_EQ(names(pages),
            (Names{"am update", "pd trigger", "oncall trigger", "status trigger", "hook update"}));
  EXPECT_EQ(find(pages, "am").page.severity, Severity::sev1);
  EXPECT_EQ(find(pages, "am").page.previous, Severity::sev3);
  EXPECT_EQ(find(pages, "hook").page.previous, Severity::sev3);
  EXPECT_FALSE(find(pages, "pd").page.previous.has_value());
  EXPECT_FALSE(find(pages, "am").quiet);  // a real change: on the timeline
  EXPECT_TRUE(plan(61).empty());
}

TEST_F(Pager, ReplayedPageEventsNeverRetrigger) {
  fire(web, Severity::sev1, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger", "pd trigger", "oncall trigger", "status trigger",
                                   "hook trigger"}));
  EXPECT_EQ(page_events(), 5);
  EXPECT_TRUE(plan(0).empty());
  EXPECT_TRUE(plan(30).empty());
  // A restart: the incident rebuilt from its timeline, no memory of Alertmanager sends.
  Incident replayed;
  replayed.id = inc.id;
  for (const TimelineEvent& e : inc.timeline) replayed.apply(e);
  PagerInput in;
  in.config = &cfg;
  in.incident = &replayed;
  in.now = t(30);
  EXPECT_TRUE(plan_pages(in).empty());
  const PagedState s = paged_state(replayed);
  ASSERT_EQ(s.targets.size(), 5u);
  EXPECT_TRUE(s.targets.at("pd").triggered);
  EXPECT_EQ(s.targets.at("pd").severity, Severity::sev1);
  EXPECT_EQ(s.targets.at("pd").state, "triaged");
  EXPECT_EQ(s.targets.at("pd").last, t(0));
  EXPECT_FALSE(s.targets.at("pd").resolved);
  EXPECT_EQ(s.targets.count("search"), 0u);
}

TEST_F(Pager, SeverityChangeUpdatesEveryTriggeredTargetWithThePrevious) {
  fire(web, Severity::sev1, 0);
  page(0);
  reseverity(web, Severity::sev2, 10);
  // Lowered below oncall's and status's routing: they still get it, being triggered.
  const auto pages = page(10);
  EXPECT_EQ(names(pages),
            (Names{"am update", "pd update", "oncall update", "status update", "hook update"}));
  for (const PlannedPage& p : pages) {
    EXPECT_EQ(p.page.severity, Severity::sev2) << p.page.notifier;
    EXPECT_EQ(p.page.previous, Severity::sev1) << p.page.notifier;
  }
  EXPECT_TRUE(plan(11).empty());
  EXPECT_EQ(paged_state(inc).targets.at("oncall").severity, Severity::sev2);
}

TEST_F(Pager, ResolveGoesToEveryTriggeredTargetOnce) {
  fire(search_api, Severity::sev3, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger", "search trigger"}));
  recover(search_api, 40);
  ASSERT_FALSE(inc.open());
  const auto pages = page(41);
  EXPECT_EQ(names(pages), (Names{"am resolve", "search resolve"}));
  EXPECT_EQ(find(pages, "am").page.resolved, t(40));
  EXPECT_EQ(find(pages, "am").page.state, "resolved");
  EXPECT_TRUE(plan(42).empty());
  EXPECT_TRUE(plan(3600).empty());
  EXPECT_TRUE(paged_state(inc).targets.at("search").resolved);
}

TEST_F(Pager, ResolveOfAnUnannouncedSeverityNamesTheOldOne) {
  fire(web, Severity::sev2, 0);
  page(0);
  reseverity(web, Severity::sev1, 10);
  recover(web, 11);  // resolved before the update was planned
  const auto pages = page(12);
  EXPECT_EQ(names(pages), (Names{"am resolve", "pd resolve", "hook resolve"}));
  EXPECT_EQ(find(pages, "am").page.previous, Severity::sev2);
}

TEST_F(Pager, ResolvedBeforeAnyPagePagesNothing) {
  fire(web, Severity::sev1, 0);
  recover(web, 1);
  ASSERT_FALSE(inc.open());
  EXPECT_TRUE(plan(2).empty());
}

TEST_F(Pager, MaintenancePagesNothing) {
  fire(web, Severity::sev1, 0, InMaintenance::yes);
  ASSERT_TRUE(inc.maintenance);
  EXPECT_TRUE(plan(0).empty());
  EXPECT_TRUE(plan(3600).empty());
  recover(web, 4000);
  EXPECT_TRUE(plan(4001).empty());
}

TEST_F(Pager, MaintenanceAfterThePageOnlyResolves) {
  fire(web, Severity::sev2, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger", "pd trigger", "hook trigger"}));
  maintenance(true, 10);
  reseverity(web, Severity::sev1, 20);
  ack(30);
  EXPECT_TRUE(plan(3600).empty());  // no update, no new SEV1 target, no ack, no re-send
  recover(web, 4000);
  EXPECT_EQ(names(page(4001)), (Names{"am resolve", "pd resolve", "hook resolve"}));
}

TEST_F(Pager, FlappingIncidentPagesOnce) {
  fire(web, Severity::sev2, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger", "pd trigger", "hook trigger"}));
  flap(web, Flapping::started, Severity::sev2, 5);
  for (int i = 1; i <= 5; ++i) {
    recover(web, i * 10);
    ASSERT_TRUE(inc.open()) << "flapping keeps it open";
    EXPECT_EQ(names(page(i * 10)), Names{}) << i;
    fire(web, Severity::sev2, i * 10 + 5);
    EXPECT_EQ(names(page(i * 10 + 5)), Names{}) << i;
  }
  EXPECT_EQ(page_events(), 3);
}

TEST_F(Pager, AckAcknowledgesPagerDutyAndWebhooksOnce) {
  fire(web, Severity::sev1, 0);
  page(0);
  ack(20);
  const auto pages = page(21);  // within am's resend_every: nothing else is due
  EXPECT_EQ(names(pages), (Names{"pd acknowledge", "hook acknowledge"}));
  EXPECT_EQ(find(pages, "pd").page.text, "acknowledged (uid 1000)");
  EXPECT_TRUE(find(pages, "hook").page.acknowledged);
  EXPECT_TRUE(plan(22).empty());
  const PagedState s = paged_state(inc);
  EXPECT_TRUE(s.acknowledged);
  EXPECT_EQ(s.ack_by, "acknowledged (uid 1000)");
  EXPECT_TRUE(s.targets.at("pd").acknowledged);
  EXPECT_FALSE(s.targets.at("am").acknowledged);
  // A target triggered after the ack is acknowledged right away too.
  cfg.notify.push_back(Notify("late", NotifierKind::pagerduty, Severity::sev3));
  EXPECT_EQ(names(page(23)), (Names{"late trigger"}));
  EXPECT_EQ(names(page(24)), (Names{"late acknowledge"}));
}

TEST_F(Pager, AlertmanagerIsResentQuietlyFromLastSent) {
  cfg.notify = {Notify("am", NotifierKind::alertmanager, Severity::sev3)};
  cfg.notify[0].resend_every = minutes(1);
  fire(web, Severity::sev2, 0);
  EXPECT_EQ(names(page(0)), (Names{"am trigger"}));
  EXPECT_TRUE(plan(59).empty());
  EXPECT_EQ(names(page(60)), (Names{"am update quiet"}));
  EXPECT_EQ(page_events(), 1);    // quiet: no timeline event
  EXPECT_TRUE(plan(61).empty());  // counted from last_sent, not from the timeline's trigger
  EXPECT_TRUE(plan(119).empty());
  EXPECT_EQ(names(page(120)), (Names{"am update quiet"}));
  // After a restart (no memory), from the timeline: due at once.
  last_sent.clear();
  EXPECT_EQ(names(plan(121)), (Names{"am update quiet"}));
  const auto resend = plan(121);
  EXPECT_EQ(resend[0].page.severity, Severity::sev2);
  EXPECT_FALSE(resend[0].page.previous.has_value());
}

TEST_F(Pager, StatuspageUpdatesOnStateAndOnCadence) {
  cfg.notify = {Notify("status", NotifierKind::statuspage, Severity::sev1)};
  fire(web, Severity::sev1, 0);
  EXPECT_EQ(names(page(0)), (Names{"status trigger"}));
  EXPECT_TRUE(plan(30 * kMin - 1).empty());
  auto pages = page(30 * kMin);
  EXPECT_EQ(names(pages), (Names{"status update"}));
  EXPECT_EQ(pages[0].page.text, "No news yet: still triaged.");
  EXPECT_TRUE(plan(31 * kMin).empty());
  state(IncidentState::mitigating, 40 * kMin);
  pages = page(40 * kMin);
  EXPECT_EQ(names(pages), (Names{"status update"}));
  EXPECT_EQ(pages[0].page.state, "mitigating");
  EXPECT_EQ(pages[0].page.text, "");
  EXPECT_TRUE(plan(70 * kMin - 1).empty());  // the cadence counts from the last update
  pages = page(70 * kMin);
  EXPECT_EQ(names(pages), (Names{"status update"}));
  EXPECT_EQ(pages[0].page.text, "No news yet: still mitigating.");
}

TEST_F(Pager, AlertmanagerAndOnCallIgnoreStateChanges) {
  cfg.notify = {Notify("am", NotifierKind::alertmanager, Severity::sev3),
                Notify("oncall", NotifierKind::oncall, Severity::sev3),
                Notify("pd", NotifierKind::pagerduty, Severity::sev3),
                Notify("hook", NotifierKind::webhook, Severity::sev3)};
  fire(web, Severity::sev2, 0);
  page(0);
  state(IncidentState::mitigating, 10);
  EXPECT_EQ(names(page(10)), (Names{"hook update"}));
}

TEST_F(Pager, WebhookRemindsOfAnUnacknowledgedSev1) {
  cfg.notify = {Notify("hook", NotifierKind::webhook, Severity::sev3)};
  fire(web, Severity::sev1, 0);
  EXPECT_EQ(names(page(0)), (Names{"hook trigger"}));
  EXPECT_TRUE(plan(30 * kMin - 1).empty());
  auto pages = page(30 * kMin);
  EXPECT_EQ(names(pages), (Names{"hook update"}));
  EXPECT_EQ(pages[0].page.text, "unacknowledged for 30m");
  EXPECT_TRUE(plan(59 * kMin).empty());
  pages = page(60 * kMin);
  EXPECT_EQ(names(pages), (Names{"hook update"}));
  EXPECT_EQ(pages[0].page.text, "unacknowledged for 60m");
  EXPECT_EQ(page_event(pages[0]).text, "paged hook: update (SEV1): unacknowledged for 60m");
  ack(61 * kMin);
  EXPECT_EQ(names(page(61 * kMin)), (Names{"hook acknowledge"}));
  EXPECT_TRUE(plan(120 * kMin).empty());  // acknowledged: no more reminders
}

TEST_F(Pager, WebhookDoesNotRemindOfASev2) {
  cfg.notify = {Notify("hook", NotifierKind::webhook, Severity::sev3)};
  fire(web, Severity::sev2, 0);
  page(0);
  EXPECT_TRUE(plan(120 * kMin).empty());
}

class PagerEscalation : public Pager {
 protected:
  PagerEscalation() { cfg = Chained(); }
};

TEST_F(PagerEscalation, StepsFollowTheirDelays) {
  fire(web, Severity::sev2, 0);
  auto pages = page(0);
  EXPECT_EQ(names(pages), (Names{"pd trigger", "primary trigger step 0"}));
  EXPECT_EQ(page_event(pages[1]).text, "paged primary: trigger (SEV2) step 0");
  EXPECT_EQ(page_event(pages[1]).fields.at("step"), "0");
  EXPECT_TRUE(plan(5 * kMin - 1).empty());
  EXPECT_EQ(names(page(5 * kMin)), (Names{"secondary trigger step 1"}));
  // The next delay counts from step 1, not from the trigger.
  EXPECT_TRUE(plan(10 * kMin - 1).empty());
  EXPECT_EQ(names(page(10 * kMin)), (Names{"manager trigger step 2"}));
  EXPECT_TRUE(plan(60 * kMin).empty());  // the chain is done
  const PagedState s = paged_state(inc);
  EXPECT_EQ(s.step, 2);
  EXPECT_EQ(s.step_at, t(10 * kMin));
}

TEST_F(PagerEscalation, LateStepIsPagedOnceAfterARestart) {
  fire(web, Severity::sev2, 0);
  page(0);
  // vigil was down from 1m to 20m: one step now, the next 5m later.
  EXPECT_EQ(names(page(20 * kMin)), (Names{"secondary trigger step 1"}));
  EXPECT_TRUE(plan(25 * kMin - 1).empty());
  EXPECT_EQ(names(page(25 * kMin)), (Names{"manager trigger step 2"}));
}

TEST_F(PagerEscalation, AckStopsTheChain) {
  fire(web, Severity::sev2, 0);
  page(0);
  ack(2 * kMin);
  EXPECT_EQ(names(page(2 * kMin)), (Names{"pd acknowledge", "primary acknowledge"}));
  EXPECT_TRUE(plan(5 * kMin).empty());
  EXPECT_TRUE(plan(60 * kMin).empty());
}

TEST_F(PagerEscalation, ResolveStopsTheChainAndResolvesEveryPagedStep) {
  fire(web, Severity::sev2, 0);
  page(0);
  EXPECT_EQ(names(page(5 * kMin)), (Names{"secondary trigger step 1"}));
  recover(web, 7 * kMin);
  EXPECT_EQ(names(page(7 * kMin)), (Names{"pd resolve", "primary resolve", "secondary resolve"}));
  EXPECT_TRUE(plan(10 * kMin).empty());  // no manager
}

TEST_F(PagerEscalation, ChainNotifiersAreNeverRouted) {
  // search has no chain; the chain's webhooks route every team and severity, yet stay silent.
  fire(search_api, Severity::sev1, 0);
  EXPECT_EQ(names(page(0)), (Names{"pd trigger"}));
  EXPECT_TRUE(plan(30 * kMin).empty());
}

TEST_F(PagerEscalation, CatchAllChainCoversOtherTeams) {
  cfg.escalations[0].team = "";
  fire(search_api, Severity::sev2, 0);
  EXPECT_EQ(names(plan(0)), (Names{"pd trigger", "primary trigger step 0"}));
}

TEST_F(PagerEscalation, FirstStepWaitsForItsSeverity) {
  cfg.notify[1].severity = Severity::sev1;  // primary: SEV1 only
  cfg.notify[1].teams = {"someone-else"};   // the team check is the chain's, not the notifier's
  fire(web, Severity::sev3, 0);
  EXPECT_EQ(names(page(0)), (Names{"pd trigger"}));
  EXPECT_TRUE(plan(10 * kMin).empty());
  reseverity(web, Severity::sev1, 11 * kMin);
  EXPECT_EQ(names(page(11 * kMin)), (Names{"pd update", "primary trigger step 0"}));
  EXPECT_TRUE(plan(16 * kMin - 1).empty());
  EXPECT_EQ(names(page(16 * kMin)), (Names{"secondary trigger step 1"}));
}

TEST_F(PagerEscalation, ChainTargetsGetRemindersAndUpdates) {
  fire(web, Severity::sev1, 0);
  page(0);
  EXPECT_EQ(names(page(5 * kMin)), (Names{"secondary trigger step 1"}));
  state(IncidentState::escalated, 6 * kMin);
  EXPECT_EQ(names(page(6 * kMin)), (Names{"primary update", "secondary update"}));
  EXPECT_EQ(names(page(10 * kMin)), (Names{"manager trigger step 2"}));
  EXPECT_TRUE(plan(36 * kMin - 1).empty());
  // Reminders every update_every from each target's last page, saying since when.
  const auto pages = page(36 * kMin);
  EXPECT_EQ(names(pages), (Names{"primary update", "secondary update"}));
  EXPECT_EQ(pages[0].page.text, "unacknowledged for 36m");
  EXPECT_EQ(pages[1].page.text, "unacknowledged for 31m");
  EXPECT_EQ(names(page(40 * kMin)), (Names{"manager update"}));
}

TEST_F(PagerEscalation, MaintenanceHoldsTheChain) {
  fire(web, Severity::sev2, 0);
  page(0);
  maintenance(true, kMin);
  EXPECT_TRUE(plan(30 * kMin).empty());
}

TEST_F(Pager, ChangeEventForARollbackThatRan) {
  fire(web, Severity::sev1, 0);
  page(0);
  const auto mitigation = [&](const char* action, const char* outcome) {
    TimelineEvent e;
    e.at = t(100);
    e.type = TimelineEvent::Type::mitigation;
    e.text = "rolled back app: B -> A";
    e.fields = {{"action", action}, {"target", "app"}, {"outcome", outcome}, {"rung", "0"}};
    return e;
  };
  const auto pages = change_pages(cfg, inc, mitigation("rollback:app", "ok"));
  ASSERT_EQ(names(pages), (Names{"pd change"}));  // not oncall, am, status, hook
  const Page& p = pages[0].page;
  EXPECT_EQ(p.text, "rolled back app: B -> A");
  EXPECT_EQ(p.details.at("action"), "rollback:app");
  EXPECT_EQ(p.details.at("target"), "app");
  EXPECT_EQ(p.at, t(100));
  EXPECT_EQ(p.incident, inc.id);
  EXPECT_TRUE(change_pages(cfg, inc, mitigation("rollback:app", "verified")).empty());
  EXPECT_TRUE(change_pages(cfg, inc, mitigation("rollback:app", "started")).empty());
  EXPECT_TRUE(change_pages(cfg, inc, mitigation("rollback:app", "failed")).empty());
  EXPECT_TRUE(change_pages(cfg, inc, mitigation("rollback:app", "dry_run")).empty());
  EXPECT_TRUE(change_pages(cfg, inc, mitigation("restart:app", "ok")).empty());
  TimelineEvent note = mitigation("rollback:app", "ok");
  note.type = TimelineEvent::Type::note;
  EXPECT_TRUE(change_pages(cfg, inc, note).empty());
}

TEST_F(Pager, NoChangeEventWherePagerDutyWasNotPaged) {
  fire(web, Severity::sev3, 0);  // pd takes SEV2 or worse
  page(0);
  TimelineEvent e;
  e.at = t(100);
  e.type = TimelineEvent::Type::mitigation;
  e.fields = {{"action", "rollback:app"}, {"outcome", "ok"}};
  EXPECT_TRUE(change_pages(cfg, inc, e).empty());
}

TEST_F(Pager, SnapshotBoundsEvidenceAndCarriesMitigations) {
  fire(web, Severity::sev1, 0);
  std::vector<std::string> lines;
  for (int i = 0; i < 24; ++i) lines.push_back("line " + std::to_string(i));
  // 509 ASCII bytes then "€" (3 bytes) twice: byte 512 falls inside the second euro sign.
  lines.push_back(std::string(509, 'x') + "\xE2\x82\xAC\xE2\x82\xAC");
  take(book.add_evidence(web, "", "journal", lines, t(1)));
  TimelineEvent m;
  m.at = t(2);
  m.type = TimelineEvent::Type::mitigation;
  m.text = "B -> A";
  m.fields = {{"action", "rollback:app"}, {"outcome", "ok"}, {"target", "app"}};
  record(m);
  Page p = snapshot(inc, cfg.notify[0], PageAction::trigger, t(3));
  // What the check saw first (the 503), then the newest 19 gathered lines.
  ASSERT_EQ(p.evidence.size(), 20u);
  EXPECT_EQ(p.evidence.front(), "web: HTTP 503 in 12ms");
  EXPECT_EQ(p.evidence[1], "line 6");
  EXPECT_EQ(p.evidence[18], "line 23");
  EXPECT_EQ(p.evidence.back(), std::string(509, 'x') + "\xE2\x82\xAC");  // 512 bytes, whole
  EXPECT_EQ(p.details.at("mitigations"), "rollback:app ok: B -> A");
  EXPECT_FALSE(p.dry_run);
  EXPECT_EQ(p.notifier, "am");
  EXPECT_EQ(p.target, "am");
  EXPECT_EQ(p.action, PageAction::trigger);
  // A line cut inside a sequence loses the whole character.
  take(book.add_evidence(web, "", "journal", {std::string(511, 'y') + "\xE2\x82\xAC"}, t(4)));
  p = snapshot(inc, cfg.notify[0], PageAction::trigger, t(5));
  EXPECT_EQ(p.evidence.back(), std::string(511, 'y'));
  // A dry-run decision marks every page.
  m.fields = {{"action", "restart:app"}, {"outcome", "dry_run"}, {"dry_run", "yes"}};
  m.text = "dry-run: would restart app.service";
  record(m);
  p = snapshot(inc, cfg.notify[0], PageAction::update, t(6));
  EXPECT_TRUE(p.dry_run);
  EXPECT_EQ(p.details.at("mitigations"), "restart:app dry_run: dry-run: would restart app.service");
}

TEST_F(Pager, SnapshotSpeaksForTheFiringMember) {
  fire(db, Severity::sev2, 0);
  fire(web, Severity::sev2, 1);
  recover(db, 2);  // "db" sorts first but no longer fails
  const Page p = snapshot(inc, cfg.notify[0], PageAction::update, t(3));
  // The summary is the member failing now; the check label stays the member that opened the
  // incident (it is part of the Alertmanager alert's identity).
  EXPECT_EQ(p.check, "db");
  EXPECT_EQ(p.summary, "HTTP 503 in 12ms");
  const Incident empty;
  const Page q = snapshot(empty, cfg.notify[0], PageAction::update, t(3));
  EXPECT_EQ(q.check, "");
  EXPECT_EQ(q.summary, "");
}

TEST(PagerEvent, RecordsWhatWasPaged) {
  PlannedPage p;
  p.page.notifier = "pd";
  p.page.target = "pd";
  p.page.action = PageAction::update;
  p.page.severity = Severity::sev1;
  p.page.previous = Severity::sev2;
  p.page.state = "mitigating";
  p.page.at = t(7);
  const TimelineEvent e = page_event(p);
  EXPECT_EQ(e.type, TimelineEvent::Type::page);
  EXPECT_EQ(e.at, t(7));
  EXPECT_EQ(e.severity, Severity::sev1);
  EXPECT_EQ(e.text, "paged pd: update (SEV1)");
  EXPECT_EQ(e.fields, (std::map<std::string, std::string>{
                          {"notifier", "pd"}, {"action", "update"}, {"state", "mitigating"}}));
  p.step = 2;
  p.page.text = "escalated";
  const TimelineEvent s = page_event(p);
  EXPECT_EQ(s.text, "paged pd: update (SEV1) step 2: escalated");
  EXPECT_EQ(s.fields.at("step"), "2");
}

TEST(PagerState, FoldsPageAndAckEvents) {
  Incident inc;
  const auto page = [&](const char* notifier, const char* action, Severity s, int at,
                        const char* step = "") {
    TimelineEvent e;
    e.at = t(at);
    e.type = TimelineEvent::Type::page;
    e.severity = s;
    e.fields = {{"notifier", notifier}, {"action", action}, {"state", "triaged"}};
    if (*step != '\0') e.fields["step"] = step;
    inc.apply(e);
  };
  page("a", "trigger", Severity::sev2, 1);
  page("a", "update", Severity::sev1, 5);
  page("b", "trigger", Severity::sev3, 6, "0");
  page("c", "trigger", Severity::sev3, 9, "1");
  page("b", "acknowledge", Severity::sev3, 10);
  page("a", "resolve", Severity::sev1, 11);
  page("a", "bogus", Severity::sev1, 12);  // an unknown action from a newer vigil: ignored
  PagedState s = paged_state(inc);
  EXPECT_FALSE(s.acknowledged);
  ASSERT_EQ(s.targets.size(), 3u);
  const PagedTarget& a = s.targets.at("a");
  EXPECT_TRUE(a.triggered);
  EXPECT_TRUE(a.resolved);
  EXPECT_FALSE(a.acknowledged);
  EXPECT_EQ(a.severity, Severity::sev1);
  EXPECT_EQ(a.first, t(1));
  EXPECT_EQ(a.last, t(5));
  EXPECT_TRUE(s.targets.at("b").acknowledged);
  EXPECT_EQ(s.targets.at("b").last, t(6));
  EXPECT_EQ(s.step, 1);
  EXPECT_EQ(s.step_at, t(9));
  TimelineEvent ack;
  ack.at = t(20);
  ack.type = TimelineEvent::Type::ack;
  ack.text = "acknowledged (uid 0)";
  inc.apply(ack);
  s = paged_state(inc);
  EXPECT_TRUE(s.acknowledged);
  EXPECT_EQ(s.ack_by, "acknowledged (uid 0)");
}

}  // namespace
}  // namespace vigil
