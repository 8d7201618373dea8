// The mitigator (agent/mitigator.h) with a fake clock and fake actions: what it records, runs and
// refuses, step by step. The real IncidentBook and ledger; the ledger is written to a temporary
// state directory. Nothing sleeps: time moves when a test moves `now`, and an action reports
// when a test calls its `done`.
#include "agent/mitigator.h"
#include "agent/load_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace vigil {
namespace {

using namespace std::chrono_literals;

constexpr const char* kConfig = R"(
[agent]
state_dir = "STATE"

[action.restart.app]
unit = "app.service"
max_runs = 2
per = "1h"
cooldown = "0s"
verify_within = "2m"

[action.restart.api]
unit = "app.service"

[action.block.ssh]
block_for = "10m"

[[check]]
name = "app"
probe = "http"
url = "http://127.0.0.1:8080/health"
mitigate = ["restart:app", "restart:api"]

[[check]]
name = "api"
probe = "http"
url = "http://127.0.0.1:8081/health"
mitigate = ["restart:api"]

[[check]]
name = "sshd"
probe = "journal"
unit = "ssh.service"
pattern = 'Failed password for .* from (?P<ip>\S+)'
key = "ip"
count = 3
mitigate = ["block:ssh"]
)";

// An action that remembers each run and reports only when the test says so.
class FakeAction : public Action {
 public:
  struct Run {
    std::string incident, target;
    Done done;
  };
  std::string lock_key(const ActionConfig& a, const std::string&) const override {
    return a.kind == ActionKind::block ? "address" : "unit " + a.unit;
  }
  std::string would(const ActionConfig& a, const std::string& target, TimePoint) const override {
    return "would " + a.ref() + " on " + target;
  }
  std::optional<std::string> not_ready() const override {
    if (ready) return std::nullopt;
    return "waiting until the fake is ready";
  }
  void run(const std::string& incident, const ActionConfig&, const std::string& target,
           Done done) override {
    runs.push_back(Run{incident, target, std::move(done)});
  }
  std::vector<Run> runs;
  bool ready = true;
};

class MitigatorTest : public ::testing::Test {
 protected:
  MitigatorTest() : book(TriageSettings{"h1", 1h}) {
    std::string tmpl = ::testing::TempDir() + "vigil-mitigator-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    state = tmpl;
    std::string text = kConfig;
    text.replace(text.find("STATE"), 5, state);
    LoadResult r = parse_config(text, "test.toml");
    EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
    cfg = *r.config;
  }
  ~MitigatorTest() override { std::filesystem::remove_all(state); }

  // Built on first use, so a test can change cfg first.
  Mitigator& m() {
    if (!mitigator) {
      auto restart = std::make_unique<FakeAction>();
      auto block = std::make_unique<FakeAction>();
      restarts = restart.get();
      blocks = block.get();
      std::map<ActionKind, std::unique_ptr<Action>> actions;
      actions[ActionKind::restart] = std::move(restart);
      actions[ActionKind::block] = std::move(block);
      Mitigator::Hooks h;
      // As the daemon's scribe: what was recorded goes back to the mitigator (recorded()).
      h.record = [this](std::vector<IncidentBook::Change> changes) {
        for (const auto& c : changes) recorded.push_back(c.event);
        mitigator->recorded(changes);
      };
      h.append_closed = [this](const std::string& id, const TimelineEvent& e) {
        closed.push_back(id + ": " + e.text);
      };
      h.fresh = [](const Incident&) { return true; };
      h.in_maintenance = [](const std::string&, TimePoint) { return false; };
      h.fast_verify = [this](const std::string&, TimePoint until) { verify_until = until; };
      h.read_protected = [this] {
        ++protected_reads;
        return view;
      };
      h.release_switched = [](const std::string&) { return std::optional<TimePoint>(); };
      h.clock = [this] { return now; };
      h.fleet_acquire = [this](const ActionConfig& a, const std::string& incident,
                               std::function<void(fleet::SlotAnswer)> done) {
        asks.push_back(Ask{a.ref(), incident, std::move(done)});
      };
      h.fleet_release = [this](const std::string& ref, const std::string& incident) {
        releases.push_back(ref + " " + incident);
      };
      mitigator = std::make_unique<Mitigator>(book, cfg, std::move(actions), std::move(h));
      mitigator->start();
    }
    return *mitigator;
  }

  // Fires `check` (key) now and returns its incident's id.
  std::string fire(const std::string& check, const std::string& key = "") {
    const CheckConfig& c = *cfg.find_check(check);
    Finding f;
    f.check = check;
    f.key = key;
    f.kind = Finding::Kind::firing;
    f.severity = Severity::sev2;
    f.at = now;
    f.since = now;
    f.reason = "failing";
    f.observation.check = check;
    f.observation.key = key;
    f.observation.failure = c.journal() ? FailureKind::journal_match : FailureKind::http_5xx;
    std::string id;
    const auto changes = book.on_finding(c, f);
    for (const auto& ch : changes) id = ch.incident;
    if (mitigator) mitigator->recorded(changes);  // the daemon records every change
    return id;
  }
  void recover(const std::string& check) {
    Finding f;
    f.check = check;
    f.kind = Finding::Kind::recovered;
    f.severity = Severity::sev2;
    f.at = now;
    f.since = now;
    const auto changes = book.on_finding(*cfg.find_check(check), f);
    if (mitigator) mitigator->recorded(changes);
  }

  // The texts of the mitigation and state events recorded so far, in order.
  std::vector<std::string> texts() const {
    std::vector<std::string> out;
    for (const TimelineEvent& e : recorded) out.push_back(e.text);
    return out;
  }
  bool recorded_text(const std::string& text) const {
    for (const TimelineEvent& e : recorded) {
      if (e.text == text) return true;
    }
    return false;
  }
  int count_text(const std::string& text) const {
    int n = 0;
    for (const TimelineEvent& e : recorded) n += e.text == text ? 1 : 0;
    return n;
  }

  std::string state;
  Config cfg;
  IncidentBook book;
  TimePoint now = TimePoint{} + 1'700'000'000s;
  std::vector<TimelineEvent> recorded;
  std::vector<std::string> closed;
  std::optional<TimePoint> verify_until;
  ProtectedAddresses view;
  int protected_reads = 0;
  FakeAction* restarts = nullptr;
  FakeAction* blocks = nullptr;
  std::unique_ptr<Mitigator> mitigator;

  // The fleet's budget, faked: each ask waits for the test to answer it.
  struct Ask {
    std::string ref, incident;
    std::function<void(fleet::SlotAnswer)> done;
  };
  std::vector<Ask> asks;
  std::vector<std::string> releases;
  void cap_restart_app() {
    cfg.fleet.name = "f";
    cfg.fleet.etcd = {"http://127.0.0.1:2379"};
    cfg.actions["restart:app"].fleet_max = 1;
  }
  static fleet::SlotAnswer answer(fleet::SlotAnswer::Kind kind, std::string why) {
    fleet::SlotAnswer a;
    a.kind = kind;
    a.why = std::move(why);
    return a;
  }
};

TEST_F(MitigatorTest, StartsTheFirstRungAndSavesTheBudgetBeforeItRuns) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(restarts->runs.size(), 1u);
  EXPECT_EQ(restarts->runs[0].incident, id);
  EXPECT_EQ(restarts->runs[0].target, "app.service");
  EXPECT_EQ(m().runs(), 1u);
  EXPECT_EQ(book.find(id)->state, IncidentState::mitigating);
  EXPECT_TRUE(recorded_text("started restart:app on app.service (rung 1)"));
  // The run is in the ledger on disk before the action reports.
  EXPECT_TRUE(std::filesystem::exists(state + "/mitigations.json"));
  // Asked again while it runs: nothing new starts.
  m().mitigate(id, now + 1s);
  m().mitigate_all(now + 2s);
  EXPECT_EQ(restarts->runs.size(), 1u);
}

TEST_F(MitigatorTest, ASuccessVerifiesUntilTheDeadlineAndThenTriesTheNextRungOrEscalates) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  now += 3s;
  restarts->runs[0].done(ActionResult::ok, "restarted app.service");
  EXPECT_EQ(book.find(id)->state, IncidentState::verifying);
  ASSERT_TRUE(verify_until.has_value());
  EXPECT_EQ(*verify_until, now + 2min);  // stamped by the clock when the result arrived
  // Before the deadline nothing happens; at it, "did not help", and the ladder goes on with
  // its second rung.
  m().check_verifications(now + 119s);
  EXPECT_EQ(restarts->runs.size(), 1u);
  now += 2min;
  m().check_verifications(now);
  EXPECT_TRUE(
      recorded_text("did not help: the checks still fail after restart:app on app.service"));
  ASSERT_EQ(restarts->runs.size(), 2u);
  EXPECT_TRUE(recorded_text("started restart:api on app.service (rung 2)"));
  // The second one fails outright: the ladder is at its end, a human is needed.
  now += 1s;
  restarts->runs[1].done(ActionResult::failed, "restart failed: job failed");
  EXPECT_EQ(book.find(id)->state, IncidentState::escalated);
  EXPECT_EQ(restarts->runs.size(), 2u);
  // The exhausted ladder opened the circuit for this check; an ack closes it.
  EXPECT_EQ(m().ledger().circuits().size(), 1u);
  EXPECT_TRUE(m().close_circuit(book.find(id)->dedupe_key));
  EXPECT_TRUE(m().ledger().circuits().empty());
  EXPECT_FALSE(m().close_circuit(book.find(id)->dedupe_key));
  // Every step is counted for the metrics (vigil_mitigations_total), by action and outcome.
  using Counts = std::map<std::pair<std::string, std::string>, std::uint64_t>;
  const Counts expected = {{{"restart:app", "started"}, 1}, {{"restart:app", "ok"}, 1},
                           {{"restart:app", "failed"}, 1},  {{"restart:api", "started"}, 1},
                           {{"restart:api", "failed"}, 1},  {{"", "escalated"}, 1}};
  EXPECT_EQ(m().outcomes(), expected);
}

// The success the metrics exist for: the checks pass again during the verification, and the
// book (not the mitigator) writes "verified"; it is counted like every other step.
TEST_F(MitigatorTest, AVerifiedRestartIsCounted) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  now += 3s;
  restarts->runs[0].done(ActionResult::ok, "restarted app.service");
  now += 10s;
  recover("app");
  using Counts = std::map<std::pair<std::string, std::string>, std::uint64_t>;
  const Counts expected = {{{"restart:app", "started"}, 1},
                           {{"restart:app", "ok"}, 1},
                           {{"restart:app", "verified"}, 1}};
  EXPECT_EQ(m().outcomes(), expected);
}

TEST_F(MitigatorTest, ARefusedRunSpendsNoBudget) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  EXPECT_TRUE(m().ledger().last_run("restart:app", "app.service").has_value());
  restarts->runs[0].done(ActionResult::refused, "app.service is already restarting");
  EXPECT_TRUE(recorded_text("app.service is already restarting"));
  // Not counted, and the ladder goes on at once with its next rung.
  EXPECT_FALSE(m().ledger().last_run("restart:app", "app.service").has_value());
  ASSERT_EQ(restarts->runs.size(), 2u);
  EXPECT_TRUE(recorded_text("started restart:api on app.service (rung 2)"));
}

TEST_F(MitigatorTest, OneActionPerLockAtATimeAndTheHoldIsRecordedOnce) {
  const std::string a = fire("app");
  const std::string b = fire("api");
  ASSERT_NE(a, b);
  m().mitigate(a, now);
  m().mitigate(b, now);
  m().mitigate(b, now + 1s);
  EXPECT_EQ(restarts->runs.size(), 1u);
  EXPECT_EQ(count_text("on hold: another mitigation on unit app.service is running"), 1);
  // The lock is released with the result; the other incident's action may run.
  restarts->runs[0].done(ActionResult::ok, "restarted");
  m().mitigate(b, now + 2s);
  ASSERT_EQ(restarts->runs.size(), 2u);
  EXPECT_EQ(restarts->runs[1].incident, b);
}

TEST_F(MitigatorTest, DryRunRecordsWhatItWouldDoAndRunsNothing) {
  cfg.agent.dry_run = DryRun::yes;
  const std::string id = fire("app");
  m().mitigate(id, now);
  EXPECT_TRUE(restarts->runs.empty());
  EXPECT_EQ(m().runs(), 0u);
  EXPECT_TRUE(recorded_text("dry-run: would restart:app on app.service"));
  EXPECT_FALSE(std::filesystem::exists(state + "/mitigations.json"));
}

TEST_F(MitigatorTest, ABudgetThatCannotBeWrittenRunsNothing) {
  // The state directory is a regular file: mitigations.json cannot be written under it.
  cfg.agent.state_dir = state + "/not-a-dir";
  std::ofstream(cfg.agent.state_dir) << "x";
  const std::string id = fire("app");
  m().mitigate(id, now);
  EXPECT_TRUE(restarts->runs.empty());
  EXPECT_EQ(m().runs(), 0u);
  EXPECT_TRUE(recorded_text("not run: the run could not be recorded in " + state +
                            "/not-a-dir/mitigations.json"));
}

TEST_F(MitigatorTest, AResultAfterRecoveryGoesToTheClosedIncidentsFile) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  recover("app");
  ASSERT_FALSE(book.find(id)->open());
  restarts->runs[0].done(ActionResult::ok, "restarted app.service");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0], id + ": restarted app.service");
}

TEST_F(MitigatorTest, AKindThatIsNotReadyHoldsAndTheProtectedViewIsReadAtMostOnceASecond) {
  m();
  blocks->ready = false;
  const std::string a = fire("sshd", "203.0.113.7");
  m().mitigate(a, now);
  EXPECT_TRUE(blocks->runs.empty());
  EXPECT_TRUE(recorded_text("on hold: waiting until the fake is ready"));
  blocks->ready = true;
  m().mitigate(a, now);
  ASSERT_EQ(blocks->runs.size(), 1u);
  EXPECT_EQ(blocks->runs[0].target, "203.0.113.7");
  blocks->runs[0].done(ActionResult::ok, "blocked 203.0.113.7");
  EXPECT_TRUE(recorded_text("verified: ufw holds the rule for 203.0.113.7"));
  EXPECT_EQ(protected_reads, 1);
  // A second attacker in the same second shares the view; one a second later reads it anew.
  const std::string b = fire("sshd", "203.0.113.8");
  m().mitigate(b, now);
  blocks->runs[1].done(ActionResult::ok, "blocked");
  EXPECT_EQ(protected_reads, 1);
  const std::string c = fire("sshd", "203.0.113.9");
  m().mitigate(c, now + 1s);
  EXPECT_EQ(protected_reads, 2);
}

TEST_F(MitigatorTest, AViewReadWithAFailureIsNeverReusedAndHoldsEveryBlock) {
  view.warnings = {"cannot list sessions"};
  const std::string a = fire("sshd", "203.0.113.7");
  m().mitigate(a, now);
  EXPECT_TRUE(blocks->runs.empty());
  EXPECT_EQ(m().protection_failures(), 1u);
  // The same second: read again (fail closed, but blocking resumes as soon as it is readable).
  view.warnings.clear();
  const std::string b = fire("sshd", "203.0.113.8");
  m().mitigate(b, now);
  EXPECT_EQ(protected_reads, 2);
  ASSERT_EQ(blocks->runs.size(), 1u);
  EXPECT_EQ(blocks->runs[0].target, "203.0.113.8");
}

TEST_F(MitigatorTest, ACircuitClosesAfterItsTargetWasHealthyForCircuitReset) {
  const std::string id = fire("app");
  m().mitigate(id, now);
  restarts->runs[0].done(ActionResult::failed, "job failed");
  ASSERT_EQ(restarts->runs.size(), 2u);
  restarts->runs[1].done(ActionResult::failed, "job failed");
  ASSERT_EQ(m().ledger().circuits().size(), 1u);
  recover("app");
  m().close_healthy_circuits(now);
  m().close_healthy_circuits(now + cfg.mitigation.circuit_reset - 1s);
  EXPECT_EQ(m().ledger().circuits().size(), 1u);
  m().close_healthy_circuits(now + cfg.mitigation.circuit_reset);
  EXPECT_TRUE(m().ledger().circuits().empty());
}

TEST_F(MitigatorTest, NothingStartsAfterStop) {
  const std::string id = fire("app");
  m().stop();
  m().mitigate(id, now);
  EXPECT_TRUE(restarts->runs.empty());
  EXPECT_TRUE(texts().empty());
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

using Slot = fleet::SlotAnswer::Kind;
using Lines = std::vector<std::string>;

TEST_F(MitigatorTest, ACappedActionRunsOnlyWithAFleetSlotAndHoldsWhileTheFleetIsFull) {
  cap_restart_app();
  const std::string id = fire("app");
  m().mitigate(id, now);
  EXPECT_TRUE(restarts->runs.empty()) << "no slot yet";
  ASSERT_EQ(asks.size(), 1u);
  EXPECT_EQ(asks[0].ref, "restart:app");
  EXPECT_EQ(asks[0].incident, id);
  m().mitigate(id, now);  // the answer is on its way: no second ask
  EXPECT_EQ(asks.size(), 1u);

  asks[0].done(answer(Slot::full, "slots for restart:app: 1 of 1 taken (by h2)"));
  const std::string held =
      "on hold: held: fleet budget: slots for restart:app: 1 of 1 taken (by h2); asking again "
      "every 5s";
  EXPECT_TRUE(recorded_text(held));
  EXPECT_TRUE(restarts->runs.empty());
  // Asked every second by the daemon: the hold is written once, etcd asked every `retry`.
  now += 1s;
  m().mitigate(id, now);
  EXPECT_EQ(asks.size(), 1u);
  EXPECT_EQ(count_text(held), 1);
  now += 4s;
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 2u);

  asks[1].done(answer(Slot::granted, "slot 1 of 1 for restart:app taken"));
  ASSERT_EQ(restarts->runs.size(), 1u);
  EXPECT_TRUE(recorded_text(
      "started restart:app on app.service (rung 1; fleet: slot 1 of 1 for restart:app taken)"));
  EXPECT_TRUE(releases.empty());

  // Kept while the action runs and while its effect is verified; given back when it ends.
  restarts->runs[0].done(ActionResult::ok, "restarted app.service");
  m().check_verifications(now);
  EXPECT_TRUE(releases.empty()) << "verifying: the slot is still needed";
  recover("app");
  m().check_verifications(now);
  EXPECT_EQ(releases, Lines{"restart:app " + id});
}

TEST_F(MitigatorTest, AFailedCappedActionGivesItsSlotBackAndTheNextRungNeedsNone) {
  cap_restart_app();
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 1u);
  asks[0].done(answer(Slot::granted, "slot 1 of 1 for restart:app taken"));
  ASSERT_EQ(restarts->runs.size(), 1u);
  restarts->runs[0].done(ActionResult::failed, "restart failed: job failed");
  // The next rung (restart:api) has no cap: it runs at once, without asking.
  ASSERT_EQ(restarts->runs.size(), 2u);
  EXPECT_EQ(asks.size(), 1u);
  m().check_verifications(now);
  EXPECT_EQ(releases, Lines{"restart:app " + id});
}

TEST_F(MitigatorTest, EtcdUnreachableHoldsCappedActionsByDefault) {
  cap_restart_app();
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 1u);
  asks[0].done(answer(Slot::unavailable, "etcd http://127.0.0.1:2379: Connection refused"));
  EXPECT_TRUE(restarts->runs.empty());
  EXPECT_TRUE(recorded_text(
      "on hold: held: fleet budget unavailable: etcd http://127.0.0.1:2379: Connection refused; "
      "capped actions wait ([fleet] unreachable = \"hold\")"));
  // An uncapped action of another incident is not held by the fleet.
  const std::string other = fire("api");
  m().mitigate(other, now);
  ASSERT_EQ(restarts->runs.size(), 1u);
  EXPECT_EQ(restarts->runs[0].incident, other);
}

TEST_F(MitigatorTest, EtcdUnreachableActsWhenTheConfigSaysSo) {
  cap_restart_app();
  cfg.fleet.unreachable = FleetUnreachable::act;
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 1u);
  asks[0].done(answer(Slot::unavailable, "etcd http://127.0.0.1:2379: Connection refused"));
  ASSERT_EQ(restarts->runs.size(), 1u);
  EXPECT_TRUE(recorded_text(
      "started restart:app on app.service (rung 1; fleet: budget unavailable (etcd "
      "http://127.0.0.1:2379: Connection refused), acting without a slot ([fleet] unreachable "
      "= \"act\"))"));
  restarts->runs[0].done(ActionResult::failed, "restart failed");
  m().check_verifications(now);
  EXPECT_TRUE(releases.empty()) << "no slot was taken, none is given back";
}

TEST_F(MitigatorTest, ASlotGrantedAfterTheIncidentClosedIsGivenBack) {
  cap_restart_app();
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 1u);
  recover("app");
  m().mitigate(id, now);  // closed: its wait is forgotten
  asks[0].done(answer(Slot::granted, "slot 1 of 1 for restart:app taken"));
  EXPECT_TRUE(restarts->runs.empty());
  EXPECT_EQ(releases, Lines{"restart:app " + id});
}

// A budget replaced by a reload drops the requests it had in flight: the incident asks again
// (after the bound at once if the daemon says so), and a slot it held is forgotten.
TEST_F(MitigatorTest, AnAnswerThatNeverComesDoesNotHoldTheIncidentForever) {
  cap_restart_app();
  const std::string id = fire("app");
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 1u);
  now += 1min;
  m().mitigate(id, now);
  EXPECT_EQ(asks.size(), 1u) << "still within the bound: the answer may come";
  now += 1min;
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 2u) << "past the bound: asked again";
  m().fleet_replaced();
  m().mitigate(id, now);
  ASSERT_EQ(asks.size(), 3u) << "a new budget: asked again at once";
  asks[2].done(answer(Slot::granted, "slot 1 of 1 for restart:app taken"));
  EXPECT_EQ(restarts->runs.size(), 1u);
  // The late answers of the old budget change nothing.
  asks[0].done(answer(Slot::granted, "slot 1 of 1 for restart:app taken"));
  EXPECT_EQ(restarts->runs.size(), 1u);
}

TEST_F(MitigatorTest, DryRunNeverAsksTheFleet) {
  cap_restart_app();
  cfg.agent.dry_run = DryRun::yes;
  const std::string id = fire("app");
  m().mitigate(id, now);
  EXPECT_TRUE(asks.empty());
  EXPECT_TRUE(recorded_text("dry-run: would restart:app on app.service"));
}

}  // namespace
}  // namespace vigil
