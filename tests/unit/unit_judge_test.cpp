// judge_unit and sys::describe: the pure part of the unit probe, fed with hand-made unit states
// and hand-made times (no bus, no clock, no sleeping).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "agent/config/config.h"
#include "agent/sys/units.h"
#include "probes/unit.h"

namespace vigil {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

// An arbitrary fixed instant, so tests never depend on the clock.
const TimePoint kT0 = TimePoint(std::chrono::hours(24 * 365 * 50));

// A loaded service in `active`/`sub`, as a GetAll would report it.
sys::UnitState State(std::string active, std::string sub, std::string result = "success") {
  sys::UnitState s;
  s.unit = "app.service";
  s.known = true;
  s.load_state = "loaded";
  s.active_state = std::move(active);
  s.sub_state = std::move(sub);
  s.result = std::move(result);
  s.restart = "no";
  return s;
}

// A service restarted by its own Restart=on-failure `restarts` times so far, running again.
sys::UnitState Restarted(std::uint32_t restarts) {
  sys::UnitState s = State("active", "running");
  s.restart = "on-failure";
  s.n_restarts = restarts;
  return s;
}

// Judges one state with a fresh history and the default settings (3 restarts within 1m).
UnitVerdict JudgeOnce(const sys::UnitState& s, const UnitSettings& settings = UnitSettings{}) {
  UnitHistory h;
  return judge_unit(settings, s, h, kT0);
}

std::string Name(FailureKind k) { return std::string(to_string(k)); }

// ---------------------------------------------------------------------------------------------
// Defaults

TEST(UnitSettingsDefaults, ExpectActiveAndThreeRestartsWithinAMinute) {
  const UnitSettings u;
  EXPECT_EQ(u.expect, UnitExpect::active);
  EXPECT_EQ(u.restart_loop_count, 3);
  EXPECT_EQ(u.restart_loop_window, minutes(1));
}

// ---------------------------------------------------------------------------------------------
// Expect active (the default)

TEST(JudgeUnit, ActiveRunningIsHealthy) {
  const UnitVerdict v = JudgeOnce(State("active", "running"));
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("app.service"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("active (running)"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, ActivatingStartIsHealthy) {
  const UnitVerdict v = JudgeOnce(State("activating", "start"));
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
}

TEST(JudgeUnit, ReloadingIsHealthy) {
  const UnitVerdict v = JudgeOnce(State("reloading", "reload"));
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
}

TEST(JudgeUnit, FailedIsUnitFailed) {
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.exec_main_code = 1;
  s.exec_main_status = 1;
  const UnitVerdict v = JudgeOnce(s);
  EXPECT_EQ(v.failure, FailureKind::unit_failed) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("app.service"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("exit-code"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("status=1"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, AutoRestartIsUnitFailedAndSaysCrashed) {
  sys::UnitState s = State("activating", "auto-restart", "exit-code");
  s.restart = "on-failure";
  s.n_restarts = 1;
  const UnitVerdict v = JudgeOnce(s);
  EXPECT_EQ(v.failure, FailureKind::unit_failed) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("crashed"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, InactiveDeadIsUnitInactive) {
  const UnitVerdict v = JudgeOnce(State("inactive", "dead"));
  EXPECT_EQ(v.failure, FailureKind::unit_inactive) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("expected active"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, DeactivatingIsUnitInactive) {
  const UnitVerdict v = JudgeOnce(State("deactivating", "stop-sigterm"));
  EXPECT_EQ(v.failure, FailureKind::unit_inactive) << Name(v.failure) << ": " << v.summary;
}

TEST(JudgeUnit, NotFoundIsNotFoundAndPointsAtTheConfig) {
  sys::UnitState s = State("inactive", "dead");
  s.load_state = "not-found";
  const UnitVerdict v = JudgeOnce(s);
  EXPECT_EQ(v.failure, FailureKind::not_found) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("app.service"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("does not exist"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, NotFoundWinsOverExpectInactive) {
  sys::UnitState s = State("inactive", "dead");
  s.load_state = "not-found";
  UnitSettings u;
  u.expect = UnitExpect::inactive;
  EXPECT_EQ(JudgeOnce(s, u).failure, FailureKind::not_found);
}

TEST(JudgeUnit, StartLimitHitResultAndFailedIsStartLimit) {
  const UnitVerdict v = JudgeOnce(State("failed", "failed", "start-limit-hit"));
  EXPECT_EQ(v.failure, FailureKind::start_limit) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("start-limit-hit"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, StartLimitHitButActiveAgainIsHealthy) {
  // An operator reset-failed and started it again: the old Result no longer matters.
  const UnitVerdict v = JudgeOnce(State("active", "running", "start-limit-hit"));
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
}

TEST(JudgeUnit, FailedDespiteRestartPolicyAfterRestartsIsStartLimit) {
  // systemd 252: an automatic restart refused by the start limit keeps the original Result.
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.restart = "on-failure";
  s.n_restarts = 5;
  const UnitVerdict v = JudgeOnce(s);
  EXPECT_EQ(v.failure, FailureKind::start_limit) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("Restart=on-failure"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("no longer restarts"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, FailedWithRestartPolicyButNoRestartYetIsUnitFailed) {
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.restart = "on-failure";
  s.n_restarts = 0;
  EXPECT_EQ(JudgeOnce(s).failure, FailureKind::unit_failed);
}

TEST(JudgeUnit, FailedWithRestartNoIsUnitFailed) {
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.restart = "no";
  s.n_restarts = 4;  // left over from an earlier policy: Restart=no never restarts
  const UnitVerdict v = JudgeOnce(s);
  EXPECT_EQ(v.failure, FailureKind::unit_failed) << Name(v.failure) << ": " << v.summary;
}

TEST(JudgeUnit, FailedWithoutRestartPropertyIsUnitFailed) {
  // Not a service (no Restart= at all): a plain failure.
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.restart.clear();
  s.n_restarts = 2;
  EXPECT_EQ(JudgeOnce(s).failure, FailureKind::unit_failed);
}

// ---------------------------------------------------------------------------------------------
// Restart loops: the same history fed successive states, with increasing times

TEST(JudgeUnit, RestartsWithinAMinuteAreARestartLoopOnTheThird) {
  const UnitSettings u;
  UnitHistory h;
  EXPECT_EQ(judge_unit(u, Restarted(0), h, kT0).failure, FailureKind::none);
  EXPECT_EQ(judge_unit(u, Restarted(1), h, kT0 + seconds(10)).failure, FailureKind::none);
  EXPECT_EQ(judge_unit(u, Restarted(2), h, kT0 + seconds(20)).failure, FailureKind::none);
  const UnitVerdict v = judge_unit(u, Restarted(3), h, kT0 + seconds(30));
  EXPECT_EQ(v.failure, FailureKind::restart_loop) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("restart loop"), std::string::npos) << v.summary;
  EXPECT_NE(v.summary.find("3 restarts within 1m"), std::string::npos) << v.summary;
  EXPECT_EQ(h.restarts.size(), 3u);
  EXPECT_EQ(h.last_restarts, 3u);
}

TEST(JudgeUnit, RestartLoopIsReportedWhileTheUnitIsDownBetweenRestarts) {
  // The loop is seen whatever the state at the moment: here the unit waits for its next restart.
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  judge_unit(u, Restarted(1), h, kT0 + seconds(5));
  judge_unit(u, Restarted(2), h, kT0 + seconds(10));
  sys::UnitState waiting = State("activating", "auto-restart", "exit-code");
  waiting.restart = "on-failure";
  waiting.n_restarts = 3;
  EXPECT_EQ(judge_unit(u, waiting, h, kT0 + seconds(15)).failure, FailureKind::restart_loop);
}

TEST(JudgeUnit, SeveralRestartsSeenAtOnceCountEach) {
  // A missed signal: NRestarts jumped from 0 to 3 between two reads.
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  EXPECT_EQ(judge_unit(u, Restarted(3), h, kT0 + seconds(20)).failure, FailureKind::restart_loop);
}

TEST(JudgeUnit, RestartsAlreadyDoneBeforeFirstSightDoNotCount) {
  // The agent started after the unit had restarted 7 times: history unknown, no loop claimed.
  const UnitSettings u;
  UnitHistory h;
  EXPECT_EQ(judge_unit(u, Restarted(7), h, kT0).failure, FailureKind::none);
  EXPECT_TRUE(h.restarts.empty());
  EXPECT_EQ(judge_unit(u, Restarted(8), h, kT0 + seconds(1)).failure, FailureKind::none);
}

TEST(JudgeUnit, RestartsSlowerThanTheWindowAreNoLoop) {
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  for (std::uint32_t n = 1; n <= 10; ++n) {
    const UnitVerdict v = judge_unit(u, Restarted(n), h, kT0 + n * seconds(40));
    EXPECT_EQ(v.failure, FailureKind::none) << "restart " << n << ": " << v.summary;
    EXPECT_LE(h.restarts.size(), 2u) << "restart " << n;
  }
}

TEST(JudgeUnit, RestartLoopClearsOnceTheWindowPassesWithoutRestarts) {
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  judge_unit(u, Restarted(1), h, kT0 + seconds(1));
  judge_unit(u, Restarted(2), h, kT0 + seconds(2));
  ASSERT_EQ(judge_unit(u, Restarted(3), h, kT0 + seconds(3)).failure, FailureKind::restart_loop);
  // Still a loop while the restarts are within the last minute.
  EXPECT_EQ(judge_unit(u, Restarted(3), h, kT0 + seconds(30)).failure, FailureKind::restart_loop);
  // The first restart leaves the window: two left, below the count.
  EXPECT_EQ(judge_unit(u, Restarted(3), h, kT0 + seconds(62)).failure, FailureKind::none);
  // A minute after the last restart: none left.
  const UnitVerdict v = judge_unit(u, Restarted(3), h, kT0 + seconds(64));
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
  EXPECT_TRUE(h.restarts.empty());
}

TEST(JudgeUnit, RestartLoopCountAndWindowComeFromTheSettings) {
  UnitSettings u;
  u.restart_loop_count = 5;
  u.restart_loop_window = minutes(10);
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  for (std::uint32_t n = 1; n <= 4; ++n) {
    EXPECT_EQ(judge_unit(u, Restarted(n), h, kT0 + n * minutes(2)).failure, FailureKind::none)
        << "restart " << n;
  }
  const UnitVerdict v = judge_unit(u, Restarted(5), h, kT0 + minutes(9));
  EXPECT_EQ(v.failure, FailureKind::restart_loop) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("5 restarts within 10m"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, NRestartsGoingDownIsNotARestart) {
  // A daemon-reload or a manual restart may reset NRestarts to 0; that must not count.
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(2), h, kT0);
  judge_unit(u, Restarted(0), h, kT0 + seconds(1));
  EXPECT_TRUE(h.restarts.empty());
  EXPECT_EQ(h.last_restarts, 0u);
  judge_unit(u, Restarted(1), h, kT0 + seconds(2));
  EXPECT_EQ(h.restarts.size(), 1u);
}

TEST(JudgeUnit, StartLimitWinsOverRestartLoop) {
  // The loop ended with systemd giving up: the more precise verdict is reported.
  const UnitSettings u;
  UnitHistory h;
  judge_unit(u, Restarted(0), h, kT0);
  judge_unit(u, Restarted(1), h, kT0 + seconds(1));
  judge_unit(u, Restarted(2), h, kT0 + seconds(2));
  sys::UnitState gave_up = State("failed", "failed", "exit-code");
  gave_up.restart = "on-failure";
  gave_up.n_restarts = 3;
  EXPECT_EQ(judge_unit(u, gave_up, h, kT0 + seconds(3)).failure, FailureKind::start_limit);
}

// ---------------------------------------------------------------------------------------------
// Expect inactive

TEST(JudgeUnit, ExpectInactiveActiveIsUnitInactive) {
  UnitSettings u;
  u.expect = UnitExpect::inactive;
  const UnitVerdict v = JudgeOnce(State("active", "running"), u);
  EXPECT_EQ(v.failure, FailureKind::unit_inactive) << Name(v.failure) << ": " << v.summary;
  EXPECT_NE(v.summary.find("expected inactive"), std::string::npos) << v.summary;
}

TEST(JudgeUnit, ExpectInactiveActivatingIsUnitInactive) {
  UnitSettings u;
  u.expect = UnitExpect::inactive;
  EXPECT_EQ(JudgeOnce(State("activating", "start"), u).failure, FailureKind::unit_inactive);
}

TEST(JudgeUnit, ExpectInactiveInactiveIsHealthy) {
  UnitSettings u;
  u.expect = UnitExpect::inactive;
  const UnitVerdict v = JudgeOnce(State("inactive", "dead"), u);
  EXPECT_EQ(v.failure, FailureKind::none) << Name(v.failure) << ": " << v.summary;
}

// ---------------------------------------------------------------------------------------------
// describe(): as `systemctl status` shows it

TEST(DescribeUnit, ActiveRunning) {
  EXPECT_EQ(sys::describe(State("active", "running")), "active (running)");
}

TEST(DescribeUnit, FailedWithExitStatus) {
  sys::UnitState s = State("failed", "failed", "exit-code");
  s.exec_main_code = 1;  // CLD_EXITED
  s.exec_main_status = 3;
  const std::string d = sys::describe(s);
  EXPECT_EQ(d.rfind("failed", 0), 0u) << d;
  EXPECT_NE(d.find("Result: exit-code"), std::string::npos) << d;
  EXPECT_NE(d.find("status=3"), std::string::npos) << d;
  EXPECT_EQ(d.find("signal="), std::string::npos) << d;
}

TEST(DescribeUnit, CleanExitShowsNoStatus) {
  sys::UnitState s = State("inactive", "dead");
  s.exec_main_code = 1;
  s.exec_main_status = 0;
  EXPECT_EQ(sys::describe(s), "inactive (dead)");
}

TEST(DescribeUnit, KilledBySignalShowsTheSignalName) {
  sys::UnitState s = State("failed", "failed", "signal");
  s.exec_main_code = 2;  // CLD_KILLED
  s.exec_main_status = 9;
  const std::string d = sys::describe(s);
  EXPECT_NE(d.find("signal=KILL"), std::string::npos) << d;
  EXPECT_NE(d.find("Result: signal"), std::string::npos) << d;
  EXPECT_EQ(d.find("status="), std::string::npos) << d;
}

TEST(DescribeUnit, DumpedCoreShowsTheSignalName) {
  sys::UnitState s = State("failed", "failed", "core-dump");
  s.exec_main_code = 3;  // CLD_DUMPED
  s.exec_main_status = 11;
  const std::string d = sys::describe(s);
  EXPECT_NE(d.find("signal=SEGV"), std::string::npos) << d;
}

TEST(DescribeUnit, UnknownSignalNumberIsAQuestionMark) {
  sys::UnitState s = State("failed", "failed", "signal");
  s.exec_main_code = 2;
  s.exec_main_status = 999;
  EXPECT_NE(sys::describe(s).find("signal=?"), std::string::npos) << sys::describe(s);
}

TEST(DescribeUnit, RestartsAreShown) {
  const std::string d = sys::describe(Restarted(4));
  EXPECT_EQ(d, "active (running), restarts=4");
}

TEST(DescribeUnit, NotFound) {
  sys::UnitState s = State("inactive", "dead");
  s.load_state = "not-found";
  EXPECT_NE(sys::describe(s).find("not found"), std::string::npos) << sys::describe(s);
}

TEST(DescribeUnit, LoadStateOtherThanLoadedIsShown) {
  sys::UnitState s = State("inactive", "dead");
  s.load_state = "masked";
  EXPECT_NE(sys::describe(s).find("masked"), std::string::npos) << sys::describe(s);
}

TEST(DescribeUnit, UnknownStateSaysWhy) {
  sys::UnitState s;
  s.unit = "app.service";
  EXPECT_EQ(sys::describe(s), "state unknown");
  s.error = "Access denied";
  EXPECT_EQ(sys::describe(s), "state unknown: Access denied");
}

}  // namespace
}  // namespace vigil
