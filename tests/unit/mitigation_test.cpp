// The mitigation ladder and its guards (agent/mitigate/mitigation.h): decide() over real configs
// parsed from TOML and incidents built by the real IncidentBook. Times are built by hand; nothing
// sleeps, nothing runs.
#include "agent/mitigate/mitigation.h"
#include "agent/load_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace vigil {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using Kind = Decision::Kind;

TimePoint t(int n) { return TimePoint{} + seconds(1'700'000'000) + seconds(n); }

constexpr const char* kConfig = R"(
[mitigation]
allow = ["198.51.100.0/24"]
max_blocks_per_minute = 2

[action.rollback.app]
dir = "/srv/app"
unit = "app.service"
max_runs = 1

[action.restart.app]
unit = "app.service"
max_runs = 3
per = "1h"
cooldown = "1m"

[action.block.ssh]
block_for = "10m"

[[check]]
name = "app"
probe = "http"
url = "http://127.0.0.1:8080/health"
service = "app"
mitigate = ["rollback:app", "restart:app"]

[[check]]
name = "sshd"
probe = "journal"
unit = "ssh.service"
pattern = 'Failed password for .* from (?P<ip>\S+)'
key = "ip"
count = 3
mitigate = ["block:ssh"]

[[check]]
name = "plain"
probe = "http"
url = "http://127.0.0.1:8081/"
)";

Config config() {
  LoadResult r = parse_config(kConfig, "test.toml");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return *r.config;
}

class Ladder : public ::testing::Test {
 protected:
  Ladder() : cfg(config()), book(TriageSettings{"h1", std::chrono::hours(1)}) {}

  // Fires `check` (key) and returns its open incident.
  const Incident& fire(const std::string& check, const std::string& key = "", int at = 0) {
    const CheckConfig& c = *cfg.find_check(check);
    Finding f;
    f.check = check;
    f.key = key;
    f.kind = Finding::Kind::firing;
    f.severity = Severity::sev1;
    f.at = t(at);
    f.since = t(at);
    f.reason = "failing";
    f.observation.check = check;
    f.observation.key = key;
    f.observation.failure = c.journal() ? FailureKind::journal_match : FailureKind::http_5xx;
    for (const auto& ch : book.on_finding(c, f)) id = ch.incident;
    return *book.find(id);
  }
  void event(const char* oc, int rung, const std::string& action, const std::string& target, int at,
             const std::string& deadline = "") {
    TimelineEvent e;
    e.at = t(at);
    e.type = TimelineEvent::Type::mitigation;
    e.fields = {
        {"outcome", oc}, {"rung", std::to_string(rung)}, {"action", action}, {"target", target}};
    if (!deadline.empty()) e.fields["deadline"] = deadline;
    (void)book.record(id, e);
  }
  Decision next(int at, Guards g = {}) {
    const Incident& inc = *book.find(id);
    return decide(inc, ladder_state(inc), cfg, ledger, g, t(at));
  }

  Config cfg;
  IncidentBook book;
  MitigationLedger ledger;
  std::string id;
};

TEST_F(Ladder, FirstRungActsRightAway) {
  fire("app");
  const Decision d = next(1);
  ASSERT_EQ(d.kind, Kind::act) << d.reason;
  EXPECT_EQ(d.action->ref(), "rollback:app");
  EXPECT_EQ(d.target, "app");
  EXPECT_EQ(d.rung, 0);
  EXPECT_EQ(d.dry_run, DryRun::no);
}

TEST_F(Ladder, NoLadderNoAction) {
  fire("plain");
  EXPECT_EQ(next(1).kind, Kind::nothing);
}

TEST_F(Ladder, RunningOrVerifyingActionIsNotDoubled) {
  fire("app");
  event(outcome::started, 0, "rollback:app", "app", 1);
  EXPECT_EQ(next(2).kind, Kind::nothing);
  event(outcome::ok, 0, "rollback:app", "app", 2, "2023-11-14T22:15:20.000Z");
  const LadderState l = ladder_state(*book.find(id));
  EXPECT_EQ(l.phase, LadderState::Phase::verifying);
  EXPECT_EQ(l.deadline, t(120));
  EXPECT_EQ(next(3).kind, Kind::nothing);
}

TEST_F(Ladder, FailedRungMovesToTheNextAndRaisesSeverity) {
  fire("app");
  const Severity before = book.find(id)->severity;
  event(outcome::started, 0, "rollback:app", "app", 1);
  event(outcome::failed, 0, "rollback:app", "app", 60);
  EXPECT_EQ(book.find(id)->raised, 1);
  EXPECT_EQ(book.find(id)->severity, before);  // SEV1 is the top already
  const Decision d = next(61);
  ASSERT_EQ(d.kind, Kind::act) << d.reason;
  EXPECT_EQ(d.action->ref(), "restart:app");
  EXPECT_EQ(d.target, "app.service");
  EXPECT_EQ(d.rung, 1);
}

TEST_F(Ladder, ExhaustedLadderEscalatesAndOpensTheCircuit) {
  fire("app");
  event(outcome::started, 0, "rollback:app", "app", 1);
  event(outcome::failed, 0, "rollback:app", "app", 60);
  event(outcome::started, 1, "restart:app", "app.service", 61);
  event(outcome::failed, 1, "restart:app", "app.service", 120);
  const Decision d = next(121);
  EXPECT_EQ(d.kind, Kind::escalate);
  EXPECT_TRUE(d.open_circuit);
  EXPECT_NE(d.reason.find("all 2 mitigations were tried"), std::string::npos) << d.reason;
  event(outcome::gave_up, 2, "", "", 121);
  EXPECT_EQ(next(122).kind, Kind::nothing);  // escalated once, not every second
}

TEST_F(Ladder, BudgetIsCountedPerTargetWithinTheWindow) {
  cfg.checks[0].mitigate = {"restart:app"};
  fire("app");
  ledger.ran("restart:app", "app.service", t(0));
  ledger.ran("restart:app", "app.service", t(100));
  ledger.ran("restart:app", "app.service", t(200));
  const Decision d = next(300);
  EXPECT_EQ(d.kind, Kind::escalate);
  EXPECT_TRUE(d.open_circuit);
  EXPECT_NE(d.reason.find("budget exhausted"), std::string::npos) << d.reason;
  // An hour after the first run, one slot is free again.
  EXPECT_EQ(next(3600 + 1).kind, Kind::act);
  // Runs on another target do not count.
  MitigationLedger other;
  other.ran("restart:app", "other.service", t(0));
  EXPECT_EQ(other.runs_within("restart:app", "app.service", minutes(60), t(1)), 0);
}

TEST_F(Ladder, CooldownWaitsAndSaysUntilWhen) {
  cfg.checks[0].mitigate = {"restart:app"};
  fire("app");
  ledger.ran("restart:app", "app.service", t(0));
  const Decision d = next(30);
  ASSERT_EQ(d.kind, Kind::wait);
  EXPECT_EQ(d.retry_at, t(60));
  EXPECT_NE(d.reason.find("cooldown"), std::string::npos);
  EXPECT_EQ(next(60).kind, Kind::act);
}

TEST_F(Ladder, HoldsForMaintenanceAndFlapping) {
  fire("app");
  Guards g;
  g.maintenance = true;
  EXPECT_EQ(next(1, g).kind, Kind::wait);
  EXPECT_NE(next(1, g).reason.find("maintenance"), std::string::npos);
  g.maintenance = false;
  EXPECT_EQ(next(1, g).kind, Kind::act);
  // A member starts flapping (the incident book hears it from the flap detector): on hold until
  // it settles.
  (void)book.on_flapping(*cfg.find_check("app"), "", Flapping::started, Severity::sev1,
                         "5 changes in 20 results", t(1), InMaintenance::no);
  ASSERT_TRUE(book.find(id)->flapping());
  EXPECT_EQ(next(2, g).kind, Kind::wait);
  EXPECT_NE(next(2, g).reason.find("flapping"), std::string::npos);
  (void)book.on_flapping(*cfg.find_check("app"), "", Flapping::stopped, Severity::sev1, "settled",
                         t(3), InMaintenance::no);
  EXPECT_EQ(next(4, g).kind, Kind::act);
}

TEST_F(Ladder, OpenCircuitRefusesUntilClosed) {
  fire("app");
  ledger.open_circuit(book.find(id)->dedupe_key, "budget exhausted", t(0));
  const Decision d = next(1);
  EXPECT_EQ(d.kind, Kind::escalate);
  EXPECT_FALSE(d.open_circuit);
  EXPECT_NE(d.reason.find("circuit open"), std::string::npos);
  EXPECT_TRUE(ledger.close_circuit(book.find(id)->dedupe_key));
  EXPECT_EQ(next(2).kind, Kind::act);
}

TEST_F(Ladder, DryRunFromEitherSwitch) {
  fire("app");
  Guards g;
  g.dry_run = DryRun::yes;
  EXPECT_EQ(next(1, g).dry_run, DryRun::yes);
  cfg.actions["rollback:app"].dry_run = DryRun::no;  // cannot override --dry-run
  EXPECT_EQ(next(1, g).dry_run, DryRun::yes);
  cfg.actions["rollback:app"].dry_run = DryRun::yes;
  EXPECT_EQ(next(1).dry_run, DryRun::yes);
}

TEST_F(Ladder, BlockTargetsTheCanonicalAddress) {
  fire("sshd", "203.0.113.45");
  const Decision d = next(1);
  ASSERT_EQ(d.kind, Kind::act) << d.reason;
  EXPECT_EQ(d.target, "203.0.113.45");
  fire("sshd", "2001:DB8:0:0::1", 2);
  EXPECT_EQ(next(3).target, "2001:db8::1");
}

TEST_F(Ladder, HostileKeysAreSkippedNeverBlocked) {
  for (const std::string& key : std::vector<std::string>{
           "1.2.3.4; reboot", "$(id)", "1.2.3.4 ", "01.2.3.4", std::string(10'000, '1'),
           std::string("1.2.3.4\xff"), "::ffff:1.2.3.4; x", ""}) {
    fire("sshd", key, 5);
    const Decision d = next(6);
    EXPECT_EQ(d.kind, Kind::skip) << "key: " << key;
    EXPECT_TRUE(d.target.empty()) << "key: " << key;
  }
}

TEST_F(Ladder, ProtectedAddressIsSkippedWithTheReason) {
  fire("sshd", "203.0.113.45");
  Guards g;
  g.protected_reason = [](const IpAddress& ip) -> std::optional<std::string> {
    if (ip.to_string() == "203.0.113.45") return std::string("allow-listed (203.0.113.0/24)");
    return std::nullopt;
  };
  const Decision d = next(1, g);
  EXPECT_EQ(d.kind, Kind::skip);
  EXPECT_EQ(d.reason, "never blocked: 203.0.113.45 is allow-listed (203.0.113.0/24)");
  event(outcome::skipped, 0, "block:ssh", "203.0.113.45", 1);
  // Nothing ran: a human is told, but there is no misbehaving automation to stop.
  const Decision e = next(2, g);
  EXPECT_EQ(e.kind, Kind::escalate);
  EXPECT_FALSE(e.open_circuit);
  EXPECT_EQ(e.reason, "no mitigation could apply: a human is needed");
}

TEST_F(Ladder, BlockRateIsLimitedAcrossAddresses) {
  ledger.ran("block:ssh", "203.0.113.1", t(0));
  ledger.ran("block:ssh", "203.0.113.2", t(10));
  fire("sshd", "203.0.113.3", 20);
  const Decision d = next(20);
  EXPECT_EQ(d.kind, Kind::wait);
  EXPECT_NE(d.reason.find("max_blocks_per_minute"), std::string::npos);
  EXPECT_EQ(next(61).kind, Kind::act);
}

TEST_F(Ladder, RollbackOnlyOfARecentDeploy) {
  fire("app");
  Guards g;
  g.release_age = [](const std::string& dir) -> std::optional<Duration> {
    EXPECT_EQ(dir, "/srv/app");
    return std::chrono::hours(3);
  };
  const Decision d = next(1, g);
  EXPECT_EQ(d.kind, Kind::skip);
  EXPECT_NE(d.reason.find("longer than deployed_within (1h)"), std::string::npos) << d.reason;
  g.release_age = [](const std::string&) -> std::optional<Duration> { return minutes(5); };
  EXPECT_EQ(next(1, g).kind, Kind::act);
}

TEST_F(Ladder, ARefusedStepDidNotRun) {
  cfg.checks[0].mitigate = {"restart:app"};
  fire("app");
  event(outcome::started, 0, "restart:app", "app.service", 1);
  event(outcome::skipped, 0, "restart:app", "app.service", 1);
  const LadderState l = ladder_state(*book.find(id));
  EXPECT_EQ(l.ran, 0);
  const Decision d = next(2);
  EXPECT_EQ(d.kind, Kind::escalate);
  EXPECT_FALSE(d.open_circuit);
}

TEST_F(Ladder, EscalationRaisesTheSeverityOnce) {
  cfg.checks[0].mitigate = {"restart:app"};
  fire("app");
  event(outcome::gave_up, 0, "restart:app", "app.service", 1);
  EXPECT_EQ(book.find(id)->raised, 1);
}

TEST_F(Ladder, NextStepIsChosenByNameNotPosition) {
  fire("app");
  event(outcome::started, 0, "rollback:app", "app", 1);
  event(outcome::failed, 0, "rollback:app", "app", 60);
  // A reload reorders the ladder: the failed rollback must not run again.
  cfg.checks[0].mitigate = {"rollback:app", "restart:app"};
  std::swap(cfg.checks[0].mitigate[0], cfg.checks[0].mitigate[1]);
  Decision d = next(61);
  ASSERT_EQ(d.kind, Kind::act) << d.reason;
  EXPECT_EQ(d.ref, "restart:app");
  EXPECT_EQ(d.rung, 0);
  event(outcome::started, 0, "restart:app", "app.service", 62);
  event(outcome::failed, 0, "restart:app", "app.service", 120);
  d = next(121);
  EXPECT_EQ(d.kind, Kind::escalate);
  EXPECT_TRUE(d.open_circuit);
}

TEST_F(Ladder, RestartOfVigilKeepsTheRung) {
  fire("app");
  event(outcome::started, 0, "rollback:app", "app", 1);
  event(outcome::failed, 0, "rollback:app", "app", 30);
  // A restarted vigil rebuilds the incident from the same events.
  Incident replay;
  for (const TimelineEvent& e : book.find(id)->timeline) replay.apply(e);
  const LadderState l = ladder_state(replay);
  EXPECT_EQ(l.phase, LadderState::Phase::idle);
  EXPECT_EQ(l.rung, 1);
}

TEST_F(Ladder, RecoveryWhileVerifyingIsTheVerification) {
  fire("app");
  event(outcome::started, 0, "rollback:app", "app", 1);
  event(outcome::ok, 0, "rollback:app", "app", 2, "2023-11-14T22:15:20.000Z");
  TimelineEvent s;
  s.at = t(2);
  s.type = TimelineEvent::Type::state;
  s.state = IncidentState::verifying;
  (void)book.record(id, s);
  Finding f;
  f.check = "app";
  f.kind = Finding::Kind::recovered;
  f.severity = Severity::sev1;
  f.at = t(10);
  f.since = t(0);
  const auto changes = book.on_finding(*cfg.find_check("app"), f);
  ASSERT_FALSE(book.find(id)->open());
  bool verified = false;
  for (const auto& c : changes) {
    if (c.event.type == TimelineEvent::Type::mitigation) {
      verified = c.event.fields.at("outcome") == "verified";
      EXPECT_EQ(c.event.fields.at("action"), "rollback:app");
    }
  }
  EXPECT_TRUE(verified);
}

TEST(Ledger, RoundTripsAndRefusesGarbage) {
  MitigationLedger l;
  l.ran("restart:app", "app.service", t(0));
  l.ran("restart:app", "app.service", t(5));
  l.open_circuit("h1/service/app", "budget exhausted", t(6));
  auto back = MitigationLedger::from_json(l.to_json());
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->runs_within("restart:app", "app.service", minutes(1), t(10)), 2);
  ASSERT_NE(back->circuit("h1/service/app"), nullptr);
  EXPECT_EQ(back->circuit("h1/service/app")->opened, t(6));
  EXPECT_FALSE(MitigationLedger::from_json("{"));
  EXPECT_FALSE(MitigationLedger::from_json(R"({"version":2})"));
  EXPECT_FALSE(MitigationLedger::from_json(R"({"version":1,"runs":[{"action":"a"}]})"));
  EXPECT_FALSE(MitigationLedger::from_json(
      R"({"version":1,"runs":[{"action":"a","target":"b","at":["x"]}]})"));
  l.unrun("restart:app", "app.service", t(5));
  EXPECT_EQ(l.runs_within("restart:app", "app.service", minutes(1), t(10)), 1);
  l.ran("restart:app", "app.service", t(5));
  l.prune(minutes(1), t(62));
  EXPECT_EQ(l.runs_within("restart:app", "app.service", minutes(60), t(62)), 1);
}

}  // namespace
}  // namespace vigil
