// The incident book: findings in, incidents out. Time comes with each call, so these tests build
// TimePoints by hand (t(n) is n seconds after a fixed epoch) and never sleep. Most behaviour is
// written as tables of steps (fire, recover, flap, a failed mitigation, a tick) with the incidents
// they must leave behind.
#include "agent/incidents/incident.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vigil {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Type = TimelineEvent::Type;

// A fixed, arbitrary epoch (2023-11-14 22:13:20 UTC); t(n) is n seconds after it.
TimePoint t(int n) { return TimePoint{} + seconds(1'700'000'000) + seconds(n); }
// The inverse, for readable failure messages: seconds after the epoch.
long long secs(TimePoint at) { return std::chrono::duration_cast<seconds>(at - t(0)).count(); }
std::optional<long long> secs(const std::optional<TimePoint>& at) {
  if (!at) return std::nullopt;
  return secs(*at);
}

constexpr const char* kHost = "h1";

TriageSettings Settings(Duration upgrade_after = hours(1)) {
  TriageSettings s;
  s.host = kHost;
  s.upgrade_after = upgrade_after;
  return s;
}

CheckConfig Http(const std::string& name, const std::string& service, const std::string& team) {
  CheckConfig c;
  c.name = name;
  c.probe = "http";
  c.service = service;
  c.team = team;
  HttpSettings h;
  h.url = "http://127.0.0.1:8080/health";
  c.settings = h;
  return c;
}

CheckConfig Unit(const std::string& name, std::vector<std::string> units,
                 const std::string& service) {
  CheckConfig c;
  c.name = name;
  c.probe = "unit";
  c.service = service;
  UnitSettings u;
  u.units = std::move(units);
  c.settings = u;
  return c;
}

CheckConfig Journal(const std::string& name, const std::string& key, const std::string& service) {
  CheckConfig c;
  c.name = name;
  c.probe = "journal";
  c.service = service;
  JournalSettings j;
  j.units = {"ssh.service"};
  j.key = key;
  c.settings = j;
  return c;
}

// The checks the tables refer to by name.
//   web, shop-unit, shop-log: three checks of the service "shop" (HTTP, unit, journal without key)
//   api:        an HTTP check of no service
//   units:      a unit check of no service watching two units (one incident per unit)
//   cart-units: a unit check of the service "cart" watching two units (one incident for both)
//   sshd:       a journal rule keyed by the captured IP (one incident per IP)
//   shop-abuse: the same, but naming the service "shop" (the key still wins)
const CheckConfig& check(const std::string& name) {
  static const std::map<std::string, CheckConfig> checks = [] {
    std::map<std::string, CheckConfig> m;
    for (CheckConfig c :
         {Http("web", "shop", "payments"), Unit("shop-unit", {"shop.service"}, "shop"),
          Journal("shop-log", "", "shop"), Http("api", "", ""),
          Unit("units", {"a.service", "b.service"}, ""),
          Unit("cart-units", {"a.service", "b.service"}, "cart"), Journal("sshd", "ip", ""),
          Journal("shop-abuse", "ip", "shop")}) {
      std::string name_of = c.name;
      m.emplace(std::move(name_of), std::move(c));
    }
    return m;
  }();
  return checks.at(name);
}

FailureKind failure_of(const CheckConfig& c) {
  if (c.unit() != nullptr) return FailureKind::unit_failed;
  if (c.journal() != nullptr) return FailureKind::journal_match;
  return FailureKind::http_5xx;
}

Finding MakeFinding(const CheckConfig& c, const std::string& key, Finding::Kind kind, Severity s,
                    int at, int since) {
  Finding f;
  f.check = c.name;
  f.key = key;
  f.kind = kind;
  f.severity = s;
  f.reason = std::string(to_string(kind)) + " " + std::string(to_string(s));
  f.at = t(at);
  f.since = t(since);
  Observation& o = f.observation;
  o.check = c.name;
  o.key = key;
  o.at = t(at);
  const bool ok = kind == Finding::Kind::recovered;
  o.failure = ok ? FailureKind::none : failure_of(c);
  if (c.http() != nullptr) {
    o.summary = ok ? "HTTP 200 in 12ms" : "HTTP 503 in 12ms";
    o.http.status = ok ? 200 : 503;
    o.http.total = milliseconds(12);
    o.http.attempts = ok ? 1 : 3;
  } else if (c.unit() != nullptr) {
    o.summary = ok ? "active (running)" : "failed (exit-code)";
  } else {
    o.summary = ok ? "quiet" : "5 matches within 10m";
  }
  return f;
}

int count(const Incident& inc, Type type) {
  return static_cast<int>(std::count_if(inc.timeline.begin(), inc.timeline.end(),
                                        [type](const TimelineEvent& e) { return e.type == type; }));
}

std::vector<std::string> types_of(const std::vector<IncidentBook::Change>& changes) {
  std::vector<std::string> out;
  for (const IncidentBook::Change& c : changes) out.emplace_back(to_string(c.event.type));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Scenario tables: a sequence of steps, then what the book must hold.

enum class Op {
  fire,        // a firing finding (since: 2s before, the first time the member fires)
  raise_to,    // a severity_changed finding to `severity`
  change,      // a changed finding (same severity, another failure)
  recover,     // a recovered finding
  flap_on,     // on_flapping(..., Flapping::started, severity, ...)
  flap_off,    // on_flapping(..., Flapping::stopped, ...)
  mitigation,  // record() of a mitigation event with outcome=failed on the open incident
  tick,        // tick(t(at))
};

struct Step {
  Op op;
  const char* check;
  const char* key;
  Severity severity;
  int at;
};

constexpr Severity S1 = Severity::sev1;
constexpr Severity S2 = Severity::sev2;
constexpr Severity S3 = Severity::sev3;

// Everything a sequence of steps produced.
struct Played {
  std::vector<IncidentBook::Change> changes;
  std::vector<std::string> opened;  // ids, in the order the incidents were opened
};

Played play(IncidentBook& book, const std::vector<Step>& steps) {
  Played p;
  std::map<std::pair<std::string, std::string>, int> since;  // first failing second, per member
  std::map<std::pair<std::string, std::string>, Severity> last;
  for (const Step& s : steps) {
    const CheckConfig& c = check(s.check);
    const std::string key = s.key;
    const auto member = std::make_pair(c.name, key);
    std::vector<IncidentBook::Change> out;
    const auto since_of = [&] { return since.count(member) ? since[member] : s.at - 2; };
    switch (s.op) {
      case Op::fire:
        if (!since.count(member)) since[member] = s.at - 2;
        out = book.on_finding(
            c, MakeFinding(c, key, Finding::Kind::firing, s.severity, s.at, since_of()));
        break;
      case Op::raise_to: {
        Finding f =
            MakeFinding(c, key, Finding::Kind::severity_changed, s.severity, s.at, since_of());
        if (last.count(member)) f.previous = last[member];
        out = book.on_finding(c, f);
        break;
      }
      case Op::change:
        out = book.on_finding(
            c, MakeFinding(c, key, Finding::Kind::changed, s.severity, s.at, since_of()));
        break;
      case Op::recover:
        out = book.on_finding(
            c, MakeFinding(c, key, Finding::Kind::recovered, s.severity, s.at, since_of()));
        since.erase(member);
        break;
      case Op::flap_on:
        out = book.on_flapping(c, key, Flapping::started, s.severity,
                               "7 changes in the last 20 results", t(s.at));
        break;
      case Op::flap_off:
        out = book.on_flapping(c, key, Flapping::stopped, s.severity,
                               "2 changes in the last 20 results", t(s.at));
        break;
      case Op::mitigation: {
        const Incident* inc = book.open_for(book.dedupe_key(c, key));
        EXPECT_NE(inc, nullptr) << "no open incident to mitigate at " << s.at;
        if (inc == nullptr) break;
        TimelineEvent e;
        e.at = t(s.at);
        e.type = Type::mitigation;
        e.check = c.name;
        e.key = key;
        e.text = "restart shop.service: done, but the check still fails";
        e.fields = {{"action", "restart"}, {"target", "shop.service"}, {"outcome", "failed"}};
        out = book.record(inc->id, e);
        break;
      }
      case Op::tick:
        out = book.tick(t(s.at));
        break;
    }
    if (s.op != Op::recover && s.op != Op::tick && s.op != Op::mitigation) {
      last[member] = s.severity;
    }
    for (IncidentBook::Change& ch : out) {
      if (ch.event.type == Type::opened) p.opened.push_back(ch.incident);
      p.changes.push_back(std::move(ch));
    }
  }
  return p;
}

struct Scenario {
  const char* name;
  std::vector<Step> steps;
  struct Want {
    int incidents;  // opened in all
    int open;       // still open at the end
    // Of the last incident opened (ignored when none was):
    IncidentState state;
    Severity severity;
    Severity peak;
    int severity_events;
  } want;
};

void run(const std::vector<Scenario>& scenarios) {
  for (const Scenario& sc : scenarios) {
    SCOPED_TRACE(sc.name);
    IncidentBook book(Settings());
    const Played p = play(book, sc.steps);
    const auto& want = sc.want;
    EXPECT_EQ(static_cast<int>(p.opened.size()), want.incidents);
    EXPECT_EQ(static_cast<int>(book.open().size()), want.open);
    // Ids are never reused.
    EXPECT_EQ(std::set<std::string>(p.opened.begin(), p.opened.end()).size(), p.opened.size());
    if (p.opened.empty()) {
      EXPECT_TRUE(p.changes.empty());
      continue;
    }
    const Incident* inc = book.find(p.opened.back());
    ASSERT_NE(inc, nullptr);
    EXPECT_EQ(to_string(inc->state), to_string(want.state));
    EXPECT_EQ(to_string(inc->severity), to_string(want.severity));
    EXPECT_EQ(to_string(inc->peak), to_string(want.peak));
    EXPECT_EQ(count(*inc, Type::severity), want.severity_events);
    EXPECT_EQ(inc->open(), inc->state != IncidentState::resolved);
    EXPECT_EQ(inc->resolved.has_value(), inc->state == IncidentState::resolved);
  }
}

using IS = IncidentState;

TEST(IncidentBook, LifecycleAndDedupe) {
  run({
      {"one firing opens one triaged incident",
       {{Op::fire, "web", "", S1, 0}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"firing again and a change stay in the same incident",
       {{Op::fire, "web", "", S2, 0}, {Op::change, "web", "", S2, 5}, {Op::fire, "web", "", S2, 8}},
       {1, 1, IS::triaged, S2, S2, 1}},
      {"recovery resolves",
       {{Op::fire, "web", "", S1, 0}, {Op::recover, "web", "", S1, 10}},
       {1, 0, IS::resolved, S1, S1, 1}},
      {"a recovered finding with nothing open does nothing",
       {{Op::recover, "web", "", S1, 0}},
       {0, 0, IS::resolved, S1, S1, 0}},
      {"a recovery of another service does not touch the incident",
       {{Op::fire, "web", "", S2, 0}, {Op::recover, "api", "", S1, 5}},
       {1, 1, IS::triaged, S2, S2, 1}},
      {"a failure after resolution opens a new incident",
       {{Op::fire, "web", "", S1, 0},
        {Op::recover, "web", "", S1, 10},
        {Op::fire, "web", "", S2, 20}},
       {2, 1, IS::triaged, S2, S2, 1}},
      {"resolved and failing again in the same second: still a new incident",
       {{Op::fire, "web", "", S1, 0},
        {Op::recover, "web", "", S1, 10},
        {Op::fire, "web", "", S3, 10}},
       {2, 1, IS::triaged, S3, S3, 1}},
      {"checks of one service share one incident",
       {{Op::fire, "web", "", S1, 0},
        {Op::fire, "shop-unit", "shop.service", S1, 2},
        {Op::fire, "shop-log", "", S2, 3}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"checks without a service do not share",
       {{Op::fire, "api", "", S2, 0}, {Op::fire, "units", "a.service", S2, 1}},
       {2, 2, IS::triaged, S2, S2, 1}},
      {"a journal key gives one incident per captured key",
       {{Op::fire, "sshd", "203.0.113.7", S2, 0},
        {Op::fire, "sshd", "198.51.100.2", S2, 1},
        {Op::fire, "sshd", "203.0.113.7", S2, 2}},
       {2, 2, IS::triaged, S2, S2, 1}},
      {"a journal key wins over the service",
       {{Op::fire, "web", "", S2, 0},
        {Op::fire, "shop-abuse", "203.0.113.7", S2, 1},
        {Op::fire, "shop-abuse", "198.51.100.2", S2, 2}},
       {3, 3, IS::triaged, S2, S2, 1}},
      {"a unit check without service: one incident per unit",
       {{Op::fire, "units", "a.service", S1, 0},
        {Op::fire, "units", "b.service", S1, 1},
        {Op::recover, "units", "a.service", S1, 5}},
       {2, 1, IS::triaged, S1, S1, 1}},
      {"a unit check of a service: one incident for all its units",
       {{Op::fire, "cart-units", "a.service", S1, 0},
        {Op::fire, "cart-units", "b.service", S1, 1},
        {Op::recover, "cart-units", "a.service", S1, 5}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"a unit check of a service resolves when its last unit recovers",
       {{Op::fire, "cart-units", "a.service", S1, 0},
        {Op::fire, "cart-units", "b.service", S1, 1},
        {Op::recover, "cart-units", "a.service", S1, 5},
        {Op::recover, "cart-units", "b.service", S1, 6}},
       {1, 0, IS::resolved, S1, S1, 1}},
  });
}

TEST(IncidentBook, SeverityFromFindingsAndChecks) {
  run({
      {"the initial severity is the finding's",
       {{Op::fire, "web", "", S3, 0}},
       {1, 1, IS::triaged, S3, S3, 1}},
      {"a severity_changed finding raises",
       {{Op::fire, "web", "", S3, 0}, {Op::raise_to, "web", "", S1, 5}},
       {1, 1, IS::triaged, S1, S1, 2}},
      {"a severity_changed finding lowers; the peak stays",
       {{Op::fire, "web", "", S1, 0}, {Op::raise_to, "web", "", S3, 5}},
       {1, 1, IS::triaged, S3, S1, 2}},
      {"a change of failure at the same severity is no severity event",
       {{Op::fire, "web", "", S2, 0}, {Op::change, "web", "", S2, 5}},
       {1, 1, IS::triaged, S2, S2, 1}},
      {"two checks of one service failing: one level up",
       {{Op::fire, "web", "", S2, 0}, {Op::fire, "shop-unit", "shop.service", S2, 3}},
       {1, 1, IS::triaged, S1, S1, 2}},
      {"the base is the worst member, then one level up",
       {{Op::fire, "web", "", S3, 0}, {Op::fire, "shop-log", "", S2, 3}},
       {1, 1, IS::triaged, S1, S1, 2}},
      {"one level up stops at SEV1",
       {{Op::fire, "web", "", S1, 0}, {Op::fire, "shop-unit", "shop.service", S1, 3}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"three checks are still one level up",
       {{Op::fire, "web", "", S3, 0},
        {Op::fire, "shop-unit", "shop.service", S3, 1},
        {Op::fire, "shop-log", "", S3, 2}},
       {1, 1, IS::triaged, S2, S2, 2}},
      {"partial recovery downgrades",
       {{Op::fire, "web", "", S2, 0},
        {Op::fire, "shop-unit", "shop.service", S2, 3},
        {Op::recover, "web", "", S2, 10}},
       {1, 1, IS::triaged, S2, S1, 3}},
      {"the last recovery resolves and keeps the severity",
       {{Op::fire, "web", "", S2, 0},
        {Op::fire, "shop-unit", "shop.service", S2, 3},
        {Op::recover, "web", "", S2, 10},
        {Op::recover, "shop-unit", "shop.service", S2, 20}},
       {1, 0, IS::resolved, S2, S1, 3}},
      {"a member failing again after a partial recovery raises again",
       {{Op::fire, "web", "", S2, 0},
        {Op::fire, "shop-unit", "shop.service", S2, 3},
        {Op::recover, "web", "", S2, 10},
        {Op::fire, "web", "", S2, 20}},
       {1, 1, IS::triaged, S1, S1, 4}},
  });
}

TEST(IncidentBook, SeverityFromFailedMitigationsAndAge) {
  run({
      {"a failed mitigation raises one level",
       {{Op::fire, "web", "", S3, 0}, {Op::mitigation, "web", "", S3, 60}},
       {1, 1, IS::triaged, S2, S2, 2}},
      {"two failed mitigations raise two levels",
       {{Op::fire, "web", "", S3, 0},
        {Op::mitigation, "web", "", S3, 60},
        {Op::mitigation, "web", "", S3, 120}},
       {1, 1, IS::triaged, S1, S1, 3}},
      {"the raise is kept on a later finding",
       {{Op::fire, "web", "", S3, 0},
        {Op::mitigation, "web", "", S3, 60},
        {Op::change, "web", "", S3, 70}},
       {1, 1, IS::triaged, S2, S2, 2}},
      {"the raise is kept on a partial recovery",
       {{Op::fire, "web", "", S3, 0},
        {Op::fire, "shop-unit", "shop.service", S3, 3},
        {Op::mitigation, "web", "", S3, 60},
        {Op::recover, "web", "", S3, 70}},
       {1, 1, IS::triaged, S2, S1, 4}},
      {"the raise ends with the incident",
       {{Op::fire, "web", "", S3, 0},
        {Op::mitigation, "web", "", S3, 60},
        {Op::recover, "web", "", S3, 70},
        {Op::fire, "web", "", S3, 80}},
       {2, 1, IS::triaged, S3, S3, 1}},
      {"a tick before upgrade_after does nothing",
       {{Op::fire, "web", "", S3, 0}, {Op::tick, "web", "", S3, 3599}},
       {1, 1, IS::triaged, S3, S3, 1}},
      {"open longer than upgrade_after: one level, once",
       {{Op::fire, "web", "", S3, 0},
        {Op::tick, "web", "", S3, 1800},
        {Op::tick, "web", "", S3, 3601},
        {Op::tick, "web", "", S3, 3700},
        {Op::tick, "web", "", S3, 7300}},
       {1, 1, IS::triaged, S2, S2, 2}},
      {"the age raise is kept on a later finding",
       {{Op::fire, "web", "", S3, 0},
        {Op::tick, "web", "", S3, 3601},
        {Op::change, "web", "", S3, 3700}},
       {1, 1, IS::triaged, S2, S2, 2}},
      {"the age raise stops at SEV1",
       {{Op::fire, "web", "", S1, 0}, {Op::tick, "web", "", S1, 4000}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"age and several checks add up",
       {{Op::fire, "web", "", S3, 0},
        {Op::fire, "shop-unit", "shop.service", S3, 1},
        {Op::tick, "web", "", S3, 3700}},
       {1, 1, IS::triaged, S1, S1, 3}},
      {"a resolved incident is not raised",
       {{Op::fire, "web", "", S3, 0},
        {Op::recover, "web", "", S3, 10},
        {Op::tick, "web", "", S3, 4000}},
       {1, 0, IS::resolved, S3, S3, 1}},
  });
}

TEST(IncidentBook, Flapping) {
  run({
      {"flapping keeps the incident open through recoveries",
       {{Op::fire, "web", "", S1, 0},
        {Op::flap_on, "web", "", S1, 5},
        {Op::recover, "web", "", S1, 10},
        {Op::fire, "web", "", S1, 15},
        {Op::recover, "web", "", S1, 20}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"stopping to flap while healthy resolves",
       {{Op::fire, "web", "", S1, 0},
        {Op::flap_on, "web", "", S1, 5},
        {Op::recover, "web", "", S1, 10},
        {Op::flap_off, "web", "", S1, 30}},
       {1, 0, IS::resolved, S1, S1, 1}},
      {"stopping to flap while firing keeps it open",
       {{Op::fire, "web", "", S1, 0},
        {Op::flap_on, "web", "", S1, 5},
        {Op::flap_off, "web", "", S1, 10}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"... until the recovery",
       {{Op::fire, "web", "", S1, 0},
        {Op::flap_on, "web", "", S1, 5},
        {Op::flap_off, "web", "", S1, 10},
        {Op::recover, "web", "", S1, 20}},
       {1, 0, IS::resolved, S1, S1, 1}},
      {"a flapping check with no incident opens one",
       {{Op::flap_on, "web", "", S2, 0}},
       {1, 1, IS::triaged, S2, S2, 1}},
      {"only one incident while it flaps",
       {{Op::flap_on, "web", "", S2, 0},
        {Op::fire, "web", "", S2, 1},
        {Op::recover, "web", "", S2, 5},
        {Op::fire, "web", "", S2, 10},
        {Op::recover, "web", "", S2, 15},
        {Op::fire, "web", "", S2, 20}},
       {1, 1, IS::triaged, S2, S2, 1}},
      {"flapping alone, then stopping: resolved",
       {{Op::flap_on, "web", "", S2, 0}, {Op::flap_off, "web", "", S2, 60}},
       {1, 0, IS::resolved, S2, S2, 1}},
      {"stopping to flap with nothing open does nothing",
       {{Op::flap_off, "web", "", S2, 0}},
       {0, 0, IS::resolved, S2, S2, 0}},
      {"flapping per unit key: one incident per unit",
       {{Op::flap_on, "units", "a.service", S2, 0}, {Op::flap_on, "units", "b.service", S2, 1}},
       {2, 2, IS::triaged, S2, S2, 1}},
  });
}

// The daemon passes, as the flapping rating, the rating of the observation at which flapping
// started (possibly a lesser failure, or a healthy result rated by for_failure(none)). Starting
// to flap must not lower a member that still fires: only a (partial) recovery downgrades.
TEST(IncidentBook, StartingToFlapDoesNotLowerAFiringMember) {
  run({
      {"firing SEV1, flapping rated SEV3",
       {{Op::fire, "web", "", S1, 0}, {Op::flap_on, "web", "", S3, 5}},
       {1, 1, IS::triaged, S1, S1, 1}},
      {"firing SEV2, flapping rated SEV3",
       {{Op::fire, "web", "", S2, 0}, {Op::flap_on, "web", "", S3, 5}},
       {1, 1, IS::triaged, S2, S2, 1}},
  });
}

// ---------------------------------------------------------------------------------------------
// Opening: the events, their order and what they carry.

TEST(IncidentBook, OpeningEventSequence) {
  struct Case {
    const char* name;
    std::vector<std::string> evidence;
    std::vector<std::string> types;
  };
  const std::vector<Case> cases = {
      {"with evidence lines",
       {"shop.service: failed (Result: exit-code)", "shop[812]: panic: out of memory"},
       {"opened", "finding", "evidence", "severity", "state"}},
      {"without evidence lines", {}, {"opened", "finding", "severity", "state"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IncidentBook book(Settings());
    const CheckConfig& web = check("web");
    Finding f = MakeFinding(web, "", Finding::Kind::firing, S1, 10, 7);
    f.observation.failure = FailureKind::refused;
    f.observation.summary = "connection refused";
    f.observation.evidence = c.evidence;
    const std::vector<IncidentBook::Change> out = book.on_finding(web, f);
    ASSERT_EQ(types_of(out), c.types);
    const std::string& id = out.front().incident;
    for (const IncidentBook::Change& ch : out) {
      EXPECT_EQ(ch.incident, id);
      EXPECT_EQ(secs(ch.event.at), 10) << to_string(ch.event.type);
    }

    const TimelineEvent& opened = out[0].event;
    EXPECT_EQ(opened.check, "web");
    EXPECT_EQ(secs(opened.since), 7);
    const std::map<std::string, std::string> fields = {{"host", "h1"},
                                                       {"service", "shop"},
                                                       {"team", "payments"},
                                                       {"dedupe_key", "h1/service/shop"},
                                                       {"title", "shop: connection refused"},
                                                       {"maintenance", "no"}};
    EXPECT_EQ(opened.fields, fields);

    const TimelineEvent& finding = out[1].event;
    EXPECT_EQ(finding.check, "web");
    EXPECT_EQ(finding.key, "");
    EXPECT_EQ(finding.finding, "firing");
    EXPECT_EQ(finding.failure, "refused");
    EXPECT_EQ(finding.severity, S1);
    EXPECT_EQ(secs(finding.since), 7);
    EXPECT_EQ(finding.text, "connection refused");

    if (!c.evidence.empty()) {
      EXPECT_EQ(out[2].event.evidence, c.evidence);
      EXPECT_EQ(out[2].event.check, "web");
    }

    const TimelineEvent& severity = out[out.size() - 2].event;
    EXPECT_EQ(severity.severity, S1);
    EXPECT_EQ(severity.previous, std::nullopt);
    EXPECT_EQ(severity.text.rfind("declared SEV1", 0), 0u) << severity.text;

    const TimelineEvent& state = out.back().event;
    EXPECT_EQ(state.state, IS::triaged);

    const Incident* inc = book.find(id);
    ASSERT_NE(inc, nullptr);
    EXPECT_EQ(inc->timeline.size(), out.size());
    EXPECT_EQ(inc->host, "h1");
    EXPECT_EQ(inc->service, "shop");
    EXPECT_EQ(inc->team, "payments");
    EXPECT_EQ(inc->title, "shop: connection refused");
    EXPECT_FALSE(inc->maintenance);
    EXPECT_EQ(to_string(inc->state), "triaged");
    ASSERT_EQ(inc->members.size(), 1u);
    const IncidentMember& m = inc->members.begin()->second;
    EXPECT_EQ(m.check, "web");
    EXPECT_TRUE(m.firing);
    EXPECT_FALSE(m.flapping);
    EXPECT_EQ(m.severity, S1);
    EXPECT_EQ(m.failure, "refused");
    EXPECT_EQ(m.summary, "connection refused");
    EXPECT_EQ(secs(m.since), 7);
    EXPECT_EQ(book.open_for("h1/service/shop"), inc);
  }
}

TEST(IncidentBook, FlappingOpeningEventSequence) {
  IncidentBook book(Settings());
  const auto out =
      book.on_flapping(check("web"), "", Flapping::started, S2, "7 changes in 20", t(10));
  EXPECT_EQ(types_of(out), (std::vector<std::string>{"opened", "flapping", "severity", "state"}));
  const Incident* inc = book.find(out.front().incident);
  ASSERT_NE(inc, nullptr);
  EXPECT_TRUE(inc->flapping());
  EXPECT_EQ(to_string(inc->state), "triaged");
  EXPECT_EQ(to_string(inc->severity), "SEV2");
  EXPECT_EQ(secs(inc->detected), 10);
  EXPECT_EQ(secs(inc->triaged), 10);
}

TEST(IncidentBook, MaintenanceMarksANewIncident) {
  IncidentBook book(Settings());
  const CheckConfig& web = check("web");
  const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S1, 10, 8),
                                   InMaintenance::yes);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.front().event.fields.at("maintenance"), "yes");
  EXPECT_TRUE(book.find(out.front().incident)->maintenance);
}

// Each transition carries the time of the call that caused it; MTTD and time to resolve follow.
TEST(IncidentBook, TimestampsComeFromTheCalls) {
  IncidentBook book(Settings());
  const CheckConfig& web = check("web");
  const auto opened = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S1, 10, 7));
  const std::string id = opened.front().incident;

  TimelineEvent mitigating;
  mitigating.at = t(20);
  mitigating.type = Type::state;
  mitigating.state = IS::mitigating;
  mitigating.text = "restarting shop.service";
  EXPECT_EQ(book.record(id, mitigating).size(), 1u);
  TimelineEvent verifying = mitigating;
  verifying.at = t(25);
  verifying.state = IS::verifying;
  verifying.text = "re-probing";
  EXPECT_EQ(book.record(id, verifying).size(), 1u);
  EXPECT_EQ(to_string(book.find(id)->state), "verifying");

  const auto resolved =
      book.on_finding(web, MakeFinding(web, "", Finding::Kind::recovered, S1, 40, 7));
  ASSERT_FALSE(resolved.empty());
  EXPECT_EQ(resolved.back().event.state, IS::resolved);
  EXPECT_TRUE(book.open().empty());
  EXPECT_EQ(book.open_for("h1/service/shop"), nullptr);

  const Incident* inc = book.find(id);
  ASSERT_NE(inc, nullptr);
  ASSERT_EQ(book.recently_resolved().size(), 1u);
  EXPECT_EQ(book.recently_resolved().back().id, id);
  EXPECT_EQ(to_string(inc->state), "resolved");
  EXPECT_EQ(secs(inc->started), 7);
  EXPECT_EQ(secs(inc->detected), 10);
  EXPECT_EQ(secs(inc->triaged), 10);
  EXPECT_EQ(secs(inc->mitigated), 20);
  EXPECT_EQ(secs(inc->resolved), 40);
  EXPECT_EQ(inc->time_to_detect(), seconds(3));
  EXPECT_EQ(inc->time_to_mitigate(), seconds(13));
  EXPECT_EQ(inc->time_to_resolve(), seconds(33));
  EXPECT_FALSE(inc->members.begin()->second.firing);
}

// Later states (mitigating, verifying, escalated) come in through record(); whatever the state,
// the last recovery resolves the incident.
TEST(IncidentBook, ResolvesFromAnyOpenState) {
  for (const IncidentState s : {IS::triaged, IS::mitigating, IS::verifying, IS::escalated}) {
    SCOPED_TRACE(std::string(to_string(s)));
    IncidentBook book(Settings());
    const CheckConfig& web = check("web");
    const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S1, 0, 0));
    const std::string id = out.front().incident;
    if (s != IS::triaged) {
      TimelineEvent e;
      e.at = t(20);
      e.type = Type::state;
      e.state = s;
      e.text = "moved";
      ASSERT_EQ(book.record(id, e).size(), 1u);
      EXPECT_EQ(to_string(book.find(id)->state), to_string(s));
      EXPECT_EQ(book.open().size(), 1u);
    }
    const auto done =
        book.on_finding(web, MakeFinding(web, "", Finding::Kind::recovered, S1, 30, 0));
    ASSERT_FALSE(done.empty());
    EXPECT_EQ(done.back().event.state, IS::resolved);
    EXPECT_EQ(to_string(book.find(id)->state), "resolved");
    EXPECT_EQ(secs(book.find(id)->resolved), 30);
    EXPECT_TRUE(book.open().empty());
  }
}

// The impact starts at the first failing observation of any member: a unit that crashed at t(0)
// but fired later (fail_after) than the HTTP check it broke still started the incident at t(0).
TEST(IncidentBook, StartedIsTheEarliestFailingObservationOfAnyMember) {
  IncidentBook book(Settings());
  const CheckConfig& web = check("web");
  const CheckConfig& unit = check("shop-unit");
  const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S1, 10, 9));
  book.on_finding(unit, MakeFinding(unit, "shop.service", Finding::Kind::firing, S1, 12, 0));
  const Incident* inc = book.find(out.front().incident);
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(secs(inc->started), 0);
  EXPECT_EQ(inc->time_to_detect(), seconds(10));
}

// The finding event names the kind of finding with the values documented in incident.h
// (TimelineEvent::finding: firing | severity_changed | changed | recovered).
TEST(IncidentBook, FindingEventNamesTheKind) {
  struct Case {
    Finding::Kind kind;
    const char* want;
  };
  const std::vector<Case> cases = {
      {Finding::Kind::firing, "firing"},
      {Finding::Kind::severity_changed, "severity_changed"},
      {Finding::Kind::changed, "changed"},
      {Finding::Kind::recovered, "recovered"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    IncidentBook book(Settings());
    const CheckConfig& web = check("web");
    if (c.kind != Finding::Kind::firing) {
      book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S2, 0, 0));
    }
    const auto out = book.on_finding(web, MakeFinding(web, "", c.kind, S1, 10, 0));
    const auto it = std::find_if(out.begin(), out.end(), [](const IncidentBook::Change& ch) {
      return ch.event.type == Type::finding;
    });
    ASSERT_NE(it, out.end());
    EXPECT_EQ(it->event.finding, c.want);
    // A recovery names no failure; every other finding names its FailureKind.
    EXPECT_EQ(it->event.failure, c.kind == Finding::Kind::recovered ? "" : "http_5xx");
  }
}

TEST(IncidentBook, RecentlyResolvedIsBounded) {
  IncidentBook book(Settings());
  const CheckConfig& web = check("web");
  std::vector<std::string> ids;
  for (int i = 0; i < 101; ++i) {
    const auto out =
        book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S2, i * 10, i * 10));
    ids.push_back(out.front().incident);
    book.on_finding(web, MakeFinding(web, "", Finding::Kind::recovered, S2, i * 10 + 5, i * 10));
  }
  ASSERT_EQ(book.recently_resolved().size(), 100u);
  EXPECT_EQ(book.recently_resolved().front().id, ids[1]);
  EXPECT_EQ(book.recently_resolved().back().id, ids[100]);
  EXPECT_EQ(book.find(ids[0]), nullptr);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size());
}

TEST(IncidentBook, HttpEvidenceOnFindingEvents) {
  struct Case {
    const char* name;
    Finding::Kind kind;
    HttpEvidence http;
    std::map<std::string, std::string> fields;
  };
  const auto http = [](long status, int ms, int attempts, std::string error, std::string body) {
    HttpEvidence h;
    h.status = status;
    h.total = milliseconds(ms);
    h.attempts = attempts;
    h.error = std::move(error);
    h.body_head = std::move(body);
    return h;
  };
  const std::vector<Case> cases = {
      {"a 503 with a body",
       Finding::Kind::firing,
       http(503, 12, 3, "", "upstream connect error"),
       {{"http_status", "503"}, {"latency_ms", "12"}, {"body_head", "upstream connect error"}}},
      {"no status line: the error, no status",
       Finding::Kind::firing,
       http(0, 5000, 3, "Connection timed out after 5000 milliseconds", ""),
       {{"latency_ms", "5000"}, {"error", "Connection timed out after 5000 milliseconds"}}},
      {"not HTTP (no attempt): no fields", Finding::Kind::firing, http(0, 0, 0, "", ""), {}},
      {"a recovery records its answer too",
       Finding::Kind::recovered,
       http(200, 8, 1, "", ""),
       {{"http_status", "200"}, {"latency_ms", "8"}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IncidentBook book(Settings());
    const CheckConfig& web = check("web");
    if (c.kind == Finding::Kind::recovered) {
      book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S1, 0, 0));
    }
    Finding f = MakeFinding(web, "", c.kind, S1, 10, 0);
    f.observation.http = c.http;
    const auto out = book.on_finding(web, f);
    const auto it = std::find_if(out.begin(), out.end(), [](const IncidentBook::Change& ch) {
      return ch.event.type == Type::finding;
    });
    ASSERT_NE(it, out.end());
    EXPECT_EQ(it->event.fields, c.fields);
  }
}

TEST(IncidentBook, SeverityEventsSayWhy) {
  IncidentBook book(Settings());
  const Played p = play(book, {{Op::fire, "web", "", S2, 0},
                               {Op::fire, "shop-unit", "shop.service", S2, 3},
                               {Op::recover, "web", "", S2, 10},
                               {Op::mitigation, "shop-unit", "shop.service", S2, 20},
                               {Op::tick, "web", "", S2, 3601}});
  std::vector<const TimelineEvent*> sev;
  for (const IncidentBook::Change& ch : p.changes) {
    if (ch.event.type == Type::severity) sev.push_back(&ch.event);
  }
  // declared SEV2; raised to SEV1 (two checks); back to SEV2 (web recovered); SEV1 (mitigation
  // failed); nothing more from the tick (already SEV1).
  ASSERT_EQ(sev.size(), 4u);
  const auto has = [](const TimelineEvent* e, const std::string& part) {
    return e->text.find(part) != std::string::npos;
  };
  EXPECT_EQ(sev[0]->severity, S2);
  EXPECT_TRUE(has(sev[0], "declared SEV2")) << sev[0]->text;

  EXPECT_EQ(sev[1]->severity, S1);
  EXPECT_EQ(sev[1]->previous, S2);
  EXPECT_TRUE(has(sev[1], "SEV2 -> SEV1")) << sev[1]->text;
  EXPECT_TRUE(has(sev[1], "2 checks failing")) << sev[1]->text;

  EXPECT_EQ(sev[2]->severity, S2);
  EXPECT_EQ(sev[2]->previous, S1);
  EXPECT_TRUE(has(sev[2], "web recovered")) << sev[2]->text;

  EXPECT_EQ(sev[3]->severity, S1);
  EXPECT_EQ(sev[3]->previous, S2);
  EXPECT_TRUE(has(sev[3], "mitigation")) << sev[3]->text;
  EXPECT_NE(sev[3]->text.find("1 mitigation(s) did not help"), std::string::npos) << sev[3]->text;
  EXPECT_EQ(book.find(p.opened.front())->raised, 1);
}

TEST(IncidentBook, AgeRaiseSaysWhy) {
  IncidentBook book(Settings());
  const Played p = play(book, {{Op::fire, "web", "", S3, 0}, {Op::tick, "web", "", S3, 3601}});
  ASSERT_FALSE(p.changes.empty());
  const TimelineEvent& e = p.changes.back().event;
  EXPECT_EQ(e.type, Type::severity);
  EXPECT_EQ(secs(e.at), 3601);
  EXPECT_EQ(e.previous, S3);
  EXPECT_EQ(e.severity, S2);
  EXPECT_NE(e.text.find("open for more than 1h"), std::string::npos) << e.text;
}

TEST(IncidentBook, ZeroUpgradeAfterNeverRaises) {
  IncidentBook book(Settings(Duration::zero()));
  const CheckConfig& web = check("web");
  const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S3, 0, 0));
  EXPECT_TRUE(book.tick(t(100'000)).empty());
  book.on_finding(web, MakeFinding(web, "", Finding::Kind::changed, S3, 100'001, 0));
  EXPECT_EQ(to_string(book.find(out.front().incident)->severity), "SEV3");
}

TEST(IncidentBook, RecordAndEvidenceNeedAnOpenIncident) {
  IncidentBook book(Settings());
  const CheckConfig& web = check("web");
  TimelineEvent note;
  note.at = t(5);
  note.type = Type::note;
  note.text = "looking";
  EXPECT_TRUE(book.record("20231114-221320-nope", note).empty());
  EXPECT_TRUE(book.add_evidence(web, "", "journal", {"line"}, t(5)).empty());

  const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S2, 0, 0));
  const std::string id = out.front().incident;
  const auto noted = book.record(id, note);
  ASSERT_EQ(noted.size(), 1u);
  EXPECT_EQ(noted[0].incident, id);
  EXPECT_EQ(noted[0].event.type, Type::note);

  // A mitigation that worked changes nothing of the severity.
  TimelineEvent ok;
  ok.at = t(6);
  ok.type = Type::mitigation;
  ok.fields = {{"action", "restart"}, {"outcome", "ok"}};
  EXPECT_EQ(book.record(id, ok).size(), 1u);
  EXPECT_EQ(to_string(book.find(id)->severity), "SEV2");

  const auto ev = book.add_evidence(check("shop-unit"), "shop.service", "unit status",
                                    {"shop.service: failed"}, t(7));
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].incident, id);
  EXPECT_EQ(ev[0].event.type, Type::evidence);
  EXPECT_EQ(ev[0].event.evidence, std::vector<std::string>{"shop.service: failed"});

  book.on_finding(web, MakeFinding(web, "", Finding::Kind::recovered, S2, 10, 0));
  EXPECT_TRUE(book.record(id, note).empty());
  EXPECT_EQ(book.find(id)->timeline.back().type, Type::state);
}

// ---------------------------------------------------------------------------------------------
// Dedupe keys and ids.

TEST(IncidentBook, DedupeKeys) {
  struct Case {
    const char* check;
    const char* key;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"web", "", "h1/service/shop"},
      {"shop-unit", "shop.service", "h1/service/shop"},
      {"shop-log", "", "h1/service/shop"},
      {"api", "", "h1/api"},
      {"units", "a.service", "h1/units/a.service"},
      {"units", "b.service", "h1/units/b.service"},
      {"cart-units", "a.service", "h1/service/cart"},
      {"cart-units", "b.service", "h1/service/cart"},
      {"sshd", "203.0.113.7", "h1/sshd/203.0.113.7"},
      {"shop-abuse", "203.0.113.7", "h1/shop-abuse/203.0.113.7"},
  };
  const IncidentBook book(Settings());
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.check) + " " + c.key);
    EXPECT_EQ(book.dedupe_key(check(c.check), c.key), c.want);
  }
}

TEST(IncidentBook, IdsAreStampedWithASlug) {
  struct Case {
    const char* check;
    const char* key;
    const char* want;
  };
  const std::vector<Case> cases = {
      {"web", "", "20231114-221320-shop"},
      {"api", "", "20231114-221320-api"},
      {"units", "a.service", "20231114-221320-units-a-service"},
      {"cart-units", "a.service", "20231114-221320-cart"},
      {"sshd", "203.0.113.7", "20231114-221320-sshd-203-0-113-7"},
      {"shop-abuse", "203.0.113.7", "20231114-221320-shop-203-0-113-7"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.check) + " " + c.key);
    IncidentBook book(Settings());
    const CheckConfig& chk = check(c.check);
    const auto out = book.on_finding(chk, MakeFinding(chk, c.key, Finding::Kind::firing, S2, 0, 0));
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.front().incident, c.want);
  }
}

TEST(IncidentBook, IdTakenAddsASuffix) {
  struct Case {
    std::set<std::string> taken;
    const char* want;
  };
  const std::vector<Case> cases = {
      {{}, "20231114-221320-shop"},
      {{"20231114-221320-shop"}, "20231114-221320-shop-2"},
      {{"20231114-221320-shop", "20231114-221320-shop-2"}, "20231114-221320-shop-3"},
      {{"20231114-221320-api"}, "20231114-221320-shop"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.want);
    IncidentBook book(Settings());
    book.id_taken = [&c](const std::string& id) { return c.taken.count(id) > 0; };
    const CheckConfig& web = check("web");
    const auto out = book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S2, 0, 0));
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.front().incident, c.want);
  }
}

TEST(IncidentBook, AReopenedIncidentGetsANewIdEvenInTheSameSecond) {
  IncidentBook book(Settings());
  const Played p = play(book, {{Op::fire, "web", "", S1, 0},
                               {Op::recover, "web", "", S1, 0},
                               {Op::fire, "web", "", S1, 0},
                               {Op::recover, "web", "", S1, 0},
                               {Op::fire, "web", "", S1, 0}});
  EXPECT_EQ(p.opened, (std::vector<std::string>{"20231114-221320-shop", "20231114-221320-shop-2",
                                                "20231114-221320-shop-3"}));
  EXPECT_EQ(to_string(book.find(p.opened[0])->state), "resolved");
  EXPECT_EQ(book.open_for("h1/service/shop")->id, p.opened[2]);
}

// ---------------------------------------------------------------------------------------------
// Replay: the timeline is the incident.

Incident replay(const std::string& id, const std::vector<TimelineEvent>& events) {
  Incident inc;
  inc.id = id;  // as the store does: the id is the file name
  for (const TimelineEvent& e : events) inc.apply(e);
  return inc;
}

std::vector<TimelineEvent> events_of(const std::vector<IncidentBook::Change>& changes,
                                     const std::string& id) {
  std::vector<TimelineEvent> out;
  for (const IncidentBook::Change& c : changes) {
    if (c.incident == id) out.push_back(c.event);
  }
  return out;
}

void expect_same(const Incident& got, const Incident& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.dedupe_key, want.dedupe_key);
  EXPECT_EQ(got.host, want.host);
  EXPECT_EQ(got.service, want.service);
  EXPECT_EQ(got.team, want.team);
  EXPECT_EQ(got.title, want.title);
  EXPECT_EQ(to_string(got.severity), to_string(want.severity));
  EXPECT_EQ(to_string(got.peak), to_string(want.peak));
  EXPECT_EQ(to_string(got.state), to_string(want.state));
  EXPECT_EQ(got.maintenance, want.maintenance);
  EXPECT_EQ(secs(got.started), secs(want.started));
  EXPECT_EQ(secs(got.detected), secs(want.detected));
  EXPECT_EQ(secs(got.triaged), secs(want.triaged));
  EXPECT_EQ(secs(got.mitigated), secs(want.mitigated));
  EXPECT_EQ(secs(got.resolved), secs(want.resolved));
  EXPECT_EQ(got.raised, want.raised);
  EXPECT_EQ(got.timeline.size(), want.timeline.size());
  ASSERT_EQ(got.members.size(), want.members.size());
  for (const auto& [k, w] : want.members) {
    SCOPED_TRACE("member " + k.first + " " + k.second);
    const auto it = got.members.find(k);
    ASSERT_NE(it, got.members.end());
    const IncidentMember& g = it->second;
    EXPECT_EQ(g.check, w.check);
    EXPECT_EQ(g.key, w.key);
    EXPECT_EQ(g.firing, w.firing);
    EXPECT_EQ(g.flapping, w.flapping);
    EXPECT_EQ(to_string(g.severity), to_string(w.severity));
    EXPECT_EQ(g.failure, w.failure);
    EXPECT_EQ(g.summary, w.summary);
    EXPECT_EQ(secs(g.since), secs(w.since));
  }
}

TEST(IncidentReplay, ApplyingTheTimelineRebuildsEachIncident) {
  const std::vector<std::pair<const char*, std::vector<Step>>> cases = {
      {"several checks, a failed mitigation, a partial recovery, age",
       {{Op::fire, "web", "", S3, 0},
        {Op::fire, "shop-unit", "shop.service", S2, 3},
        {Op::mitigation, "web", "", S2, 30},
        {Op::raise_to, "web", "", S2, 40},
        {Op::recover, "shop-unit", "shop.service", S2, 50},
        {Op::tick, "web", "", S2, 3700},
        {Op::change, "web", "", S2, 3800}}},
      {"resolved, then a new incident",
       {{Op::fire, "web", "", S1, 0},
        {Op::raise_to, "web", "", S3, 10},
        {Op::recover, "web", "", S3, 20},
        {Op::fire, "web", "", S2, 30}}},
      {"flapping",
       {{Op::flap_on, "web", "", S2, 0},
        {Op::fire, "web", "", S1, 1},
        {Op::recover, "web", "", S1, 5},
        {Op::fire, "shop-log", "", S3, 6},
        {Op::flap_off, "web", "", S2, 30}}},
      {"per-key incidents",
       {{Op::fire, "sshd", "203.0.113.7", S2, 0},
        {Op::fire, "sshd", "198.51.100.2", S3, 1},
        {Op::recover, "sshd", "203.0.113.7", S2, 60}}},
  };
  for (const auto& [name, steps] : cases) {
    SCOPED_TRACE(name);
    IncidentBook book(Settings());
    const Played p = play(book, steps);
    ASSERT_FALSE(p.opened.empty());
    for (const std::string& id : p.opened) {
      SCOPED_TRACE(id);
      const Incident* live = book.find(id);
      ASSERT_NE(live, nullptr);
      // From the changes the book handed out (what the store persists) ...
      expect_same(replay(id, events_of(p.changes, id)), *live);
      // ... and from the incident's own timeline.
      expect_same(replay(id, live->timeline), *live);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Restart: a book restored from replayed timelines continues where the old one stopped.

TEST(IncidentRestart, ARestoredIncidentContinuesAndResolves) {
  IncidentBook before(Settings());
  const Played p = play(before, {{Op::fire, "web", "", S3, 0},
                                 {Op::fire, "shop-unit", "shop.service", S3, 3},
                                 {Op::mitigation, "web", "", S3, 30}});
  ASSERT_EQ(p.opened.size(), 1u);
  const std::string id = p.opened[0];
  ASSERT_EQ(to_string(before.find(id)->severity), "SEV1");  // SEV3 + 2 checks + 1 mitigation

  IncidentBook after(Settings());
  after.restore(replay(id, events_of(p.changes, id)));
  ASSERT_EQ(after.open().size(), 1u);
  EXPECT_EQ(after.open_for("h1/service/shop")->id, id);

  // The classifier starts afresh: the web check fires again with a new `since`.
  const CheckConfig& web = check("web");
  const CheckConfig& unit = check("shop-unit");
  auto out = after.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S3, 100, 98));
  ASSERT_FALSE(out.empty());
  for (const IncidentBook::Change& ch : out) {
    EXPECT_EQ(ch.incident, id);
    EXPECT_NE(ch.event.type, Type::opened);
    EXPECT_NE(ch.event.type, Type::state);
  }
  EXPECT_EQ(after.open().size(), 1u);
  const Incident* inc = after.find(id);
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(secs(inc->started), -2);
  EXPECT_EQ(secs(inc->members.at({"web", ""}).since), -2);
  EXPECT_EQ(to_string(inc->severity), "SEV1");

  // The failed mitigation's raise survived: web recovers, the unit (SEV3) alone is SEV2.
  out = after.on_finding(web, MakeFinding(web, "", Finding::Kind::recovered, S3, 110, 98));
  EXPECT_EQ(to_string(after.find(id)->severity), "SEV2");

  out = after.on_finding(unit,
                         MakeFinding(unit, "shop.service", Finding::Kind::recovered, S3, 120, 1));
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().incident, id);
  EXPECT_EQ(out.back().event.state, IS::resolved);
  EXPECT_TRUE(after.open().empty());
  inc = after.find(id);
  ASSERT_NE(inc, nullptr);
  EXPECT_EQ(to_string(inc->state), "resolved");
  EXPECT_EQ(secs(inc->resolved), 120);
  EXPECT_EQ(inc->time_to_resolve(), seconds(122));

  // And the next failure is a new incident.
  out = after.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S3, 130, 129));
  ASSERT_FALSE(out.empty());
  EXPECT_NE(out.front().incident, id);
  EXPECT_EQ(out.front().event.type, Type::opened);
}

TEST(IncidentRestart, ARestoredFlappingIncidentStaysOpenUntilItStops) {
  IncidentBook before(Settings());
  const Played p = play(before, {{Op::fire, "web", "", S2, 0}, {Op::flap_on, "web", "", S2, 5}});
  const std::string id = p.opened.at(0);
  IncidentBook after(Settings());
  after.restore(replay(id, events_of(p.changes, id)));
  const Played q = play(after, {{Op::recover, "web", "", S2, 100},
                                {Op::fire, "web", "", S2, 110},
                                {Op::recover, "web", "", S2, 120}});
  EXPECT_TRUE(q.opened.empty());
  ASSERT_EQ(after.open().size(), 1u);
  EXPECT_EQ(after.open().front()->id, id);
  const Played r = play(after, {{Op::flap_off, "web", "", S2, 200}});
  EXPECT_TRUE(r.opened.empty());
  EXPECT_TRUE(after.open().empty());
  EXPECT_EQ(to_string(after.find(id)->state), "resolved");
}

TEST(IncidentRestart, ARestoredPerKeyIncidentKeepsItsKey) {
  IncidentBook before(Settings());
  const Played p = play(before, {{Op::fire, "sshd", "203.0.113.7", S2, 0}});
  const std::string id = p.opened.at(0);
  IncidentBook after(Settings());
  after.restore(replay(id, events_of(p.changes, id)));
  const Played q = play(after, {{Op::fire, "sshd", "203.0.113.7", S2, 100},
                                {Op::fire, "sshd", "198.51.100.2", S2, 101}});
  ASSERT_EQ(q.opened.size(), 1u);  // only the other IP
  EXPECT_NE(q.opened[0], id);
  EXPECT_EQ(after.open_for("h1/sshd/203.0.113.7")->id, id);
  EXPECT_EQ(after.open().size(), 2u);
  play(after, {{Op::recover, "sshd", "203.0.113.7", S2, 200}});
  EXPECT_EQ(to_string(after.find(id)->state), "resolved");
  EXPECT_EQ(after.open().size(), 1u);
}

TEST(IncidentRestart, TickCountsFromTheRestoredDetection) {
  IncidentBook before(Settings());
  const Played p = play(before, {{Op::fire, "web", "", S3, 0}});
  const std::string id = p.opened.at(0);
  IncidentBook after(Settings());
  after.restore(replay(id, events_of(p.changes, id)));
  EXPECT_TRUE(after.tick(t(3000)).empty());
  const auto out = after.tick(t(3601));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].incident, id);
  EXPECT_EQ(out[0].event.severity, S2);
}

TEST(IncidentRestart, RestoredIdsAreTaken) {
  struct Case {
    const char* name;
    std::vector<Step> steps;  // before the restart
    bool open;
  };
  const std::vector<Case> cases = {
      {"open", {{Op::fire, "web", "", S2, 0}}, true},
      {"resolved", {{Op::fire, "web", "", S2, 0}, {Op::recover, "web", "", S2, 0}}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    IncidentBook before(Settings());
    const Played p = play(before, c.steps);
    const std::string id = p.opened.at(0);
    IncidentBook after(Settings());
    after.restore(replay(id, events_of(p.changes, id)));
    EXPECT_EQ(after.open().size(), c.open ? 1u : 0u);
    EXPECT_EQ(after.find(id) != nullptr, c.open);  // resolved ones are not kept
    // Another check of no service, same second: a different slug, so no clash.
    const CheckConfig& api = check("api");
    auto out = after.on_finding(api, MakeFinding(api, "", Finding::Kind::firing, S2, 0, 0));
    EXPECT_EQ(out.front().incident, "20231114-221320-api");
    // The same service in the same second: a fresh incident (if the old one was resolved), whose
    // id must not be the restored one.
    const CheckConfig& web = check("web");
    out = after.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, S2, 0, 0));
    if (c.open) {
      EXPECT_EQ(out.front().incident, id);
      EXPECT_NE(out.front().event.type, Type::opened);
    } else {
      EXPECT_EQ(out.front().event.type, Type::opened);
      EXPECT_EQ(out.front().incident, id + "-2");
    }
  }
}

// A check removed (or renamed) by a reload: its incident resolves instead of staying open.
TEST(IncidentBook, RetiringARemovedCheckResolvesItsIncident) {
  IncidentBook book(Settings());
  const CheckConfig web = Http("web", "shop", "t");
  const CheckConfig api = Http("api", "shop", "t");
  book.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, Severity::sev1, 0, 0));
  book.on_finding(api, MakeFinding(api, "", Finding::Kind::firing, Severity::sev2, 1, 1));
  ASSERT_EQ(book.open().size(), 1u);
  // Only one of two checks retired: still open, lowered to what is left.
  book.retire("web", "check removed from the configuration", t(5));
  ASSERT_EQ(book.open().size(), 1u);
  EXPECT_EQ(book.open().front()->severity, Severity::sev2);
  book.retire("api", "check removed from the configuration", t(6));
  EXPECT_TRUE(book.open().empty());
  ASSERT_EQ(book.recently_resolved().size(), 1u);
  EXPECT_EQ(book.recently_resolved().back().timeline.back().state, IncidentState::resolved);
  // Nothing open for a name that never failed.
  EXPECT_TRUE(book.retire("nope", "gone", t(7)).empty());
}

// A reload that gives a failing check a service (a new dedupe key) continues its incident:
// its recovery must close the incident it is in, not leave it open beside a duplicate.
TEST(IncidentBook, AMemberStaysWithItsIncidentWhenItsDedupeKeyChanges) {
  IncidentBook book(Settings());
  const CheckConfig before = Http("web", "", "t");
  const CheckConfig after = Http("web", "shop", "t");
  book.on_finding(before, MakeFinding(before, "", Finding::Kind::firing, Severity::sev1, 0, 0));
  ASSERT_EQ(book.open().size(), 1u);
  const std::string id = book.open().front()->id;
  book.on_finding(after, MakeFinding(after, "", Finding::Kind::changed, Severity::sev1, 3, 0));
  ASSERT_EQ(book.open().size(), 1u);
  EXPECT_EQ(book.open().front()->id, id);
  book.on_finding(after, MakeFinding(after, "", Finding::Kind::recovered, Severity::sev1, 6, 0));
  EXPECT_TRUE(book.open().empty());
}

// A timeline cut short by a crash right after "opened" restores an incident with nothing in it
// that could ever recover: resolve_idle closes it; one with a failing member stays open.
TEST(IncidentRestart, AnIncidentWithNothingFailingIsResolvedAfterRestart) {
  IncidentBook first(Settings());
  const CheckConfig web = Http("web", "shop", "t");
  const auto changes =
      first.on_finding(web, MakeFinding(web, "", Finding::Kind::firing, Severity::sev1, 0, 0));
  Incident cut;  // only the opened event survived
  cut.id = changes.front().incident;
  cut.apply(changes.front().event);
  Incident whole;
  whole.id = "other";
  for (const auto& c : changes) whole.apply(c.event);
  whole.dedupe_key = "elsewhere";

  IncidentBook book(Settings());
  book.restore(cut);
  book.restore(whole);
  ASSERT_EQ(book.open().size(), 2u);
  const auto out = book.resolve_idle("nothing was failing in it when vigil restarted", t(9));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out.front().incident, cut.id);
  EXPECT_EQ(out.front().event.state, IncidentState::resolved);
  ASSERT_EQ(book.open().size(), 1u);
  EXPECT_EQ(book.open().front()->id, "other");
}

}  // namespace
}  // namespace vigil
