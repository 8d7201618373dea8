// The restart action without a running system: when a restart helps or fights systemd (a table
// of unit states), the timeline line for each kind of outcome, and the pairing of RestartUnit
// replies with JobRemoved signals in either order.
#include "actions/restart.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/sys/units.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;

sys::UnitState state(const std::string& active, const std::string& sub,
                     const std::string& result = "success", std::uint32_t n_restarts = 0) {
  sys::UnitState s;
  s.unit = "app.service";
  s.known = true;
  s.load_state = "loaded";
  s.active_state = active;
  s.sub_state = sub;
  s.result = result;
  s.n_restarts = n_restarts;
  s.restart = "on-failure";
  return s;
}

struct Row {
  const char* name;
  sys::UnitState s;
  bool reset_failed;  // RestartSettings::reset_failed
  bool go;
  bool reset_first;
  const char* reason_has;  // a part of the reason that must be there
};

TEST(RestartDecide, Table) {
  sys::UnitState unknown;
  unknown.unit = "app.service";
  unknown.error = "Connection terminated";
  sys::UnitState not_found = state("inactive", "dead");
  not_found.load_state = "not-found";
  sys::UnitState masked = state("inactive", "dead");
  masked.load_state = "masked";
  sys::UnitState bad = state("inactive", "dead");
  bad.load_state = "bad-setting";
  sys::UnitState exit1 = state("failed", "failed", "exit-code");
  exit1.exec_main_code = 1;
  exit1.exec_main_status = 1;
  sys::UnitState limit_manual = state("failed", "failed", "start-limit-hit", 0);
  // What systemd 252 shows for a crash loop stopped by StartLimitBurst=: Result stays exit-code.
  sys::UnitState crash_loop = state("failed", "failed", "exit-code", 3);
  crash_loop.restart = "always";
  sys::UnitState abnormal_only = state("failed", "failed", "exit-code", 2);
  abnormal_only.restart = "on-abnormal";  // does not restart after an exit code
  sys::UnitState no_policy = state("failed", "failed", "exit-code", 0);
  no_policy.restart = "no";
  sys::UnitState timer = state("activating", "waiting");
  timer.restart.clear();  // not a service: no Restart= policy

  const std::vector<Row> rows = {
      {"unknown", unknown, false, false, false, "state unknown: Connection terminated"},
      {"not-found", not_found, false, false, false, "no such unit"},
      {"masked", masked, true, false, false, "masked"},
      {"bad-setting", bad, false, false, false, "not loaded (bad-setting)"},
      {"auto-restart", state("activating", "auto-restart", "exit-code", 2), false, false, false,
       "systemd is already restarting it (Restart=on-failure, 2 restarts so far)"},
      {"auto-restart even with reset", state("activating", "auto-restart", "exit-code", 1), true,
       false, false, "(Restart=on-failure, 1 restart so far)"},
      {"start-pre", state("activating", "start-pre"), false, false, false,
       "systemd is already starting it, activating (start-pre); Restart=on-failure"},
      {"deactivating", state("deactivating", "stop-sigterm"), false, false, false,
       "already stopping it"},
      {"reloading", state("reloading", "reload"), false, false, false, "already reloading it"},
      {"no policy", timer, false, false, false, "already starting it, activating (waiting)"},
      {"start-limit-hit", state("failed", "failed", "start-limit-hit", 5), false, false, false,
       "start-limit-hit: systemd gave up on app.service after 5 restarts; a restart now would "
       "only hit the limit again"},
      {"start-limit-hit, reset", state("failed", "failed", "start-limit-hit", 5), true, true, true,
       "resetting its failed state, then restarting it"},
      {"start-limit-hit by hand", limit_manual, false, false, false,
       "started too often within StartLimitIntervalSec="},
      {"crash loop stopped by the limit", crash_loop, false, false, false,
       "systemd gave up on app.service after 3 restarts (Restart=always, Result: exit-code; its "
       "start limit, most likely); a restart now would only hit the limit again"},
      {"crash loop, reset", crash_loop, true, true, true, "resetting its failed state, then"},
      {"policy does not cover the result", abnormal_only, false, true, false, "restarting it"},
      {"Restart=no", no_policy, false, true, false, "restarting it"},
      {"failed", exit1, false, true, false, "failed (failed), Result: exit-code, status=1"},
      {"failed, reset", exit1, true, true, true, "resetting its failed state first"},
      {"active", state("active", "running"), false, true, false, "active (running) but unhealthy"},
      {"active, reset asked", state("active", "running"), true, true, false, "restarting it"},
      {"inactive", state("inactive", "dead"), false, true, false, "restarting starts it"},
      {"maintenance", state("maintenance", "cleaning"), false, false, false,
       "a state vigil does not restart from"},
  };
  for (const Row& row : rows) {
    SCOPED_TRACE(row.name);
    const RestartDecision d = decide_restart(row.s, {"app.service", row.reset_failed, 90s});
    EXPECT_EQ(d.go, row.go) << d.reason;
    EXPECT_EQ(d.reset_failed_first, row.reset_first) << d.reason;
    EXPECT_NE(d.reason.find(row.reason_has), std::string::npos) << d.reason;
    EXPECT_NE(d.reason.find("app.service"), std::string::npos) << d.reason;
  }
}

TEST(RestartDecide, DefaultDeadlineIsSystemdsStartTimeout) {
  EXPECT_EQ(RestartSettings{}.deadline, 90s);
  EXPECT_FALSE(RestartSettings{}.reset_failed);
}

sys::JobOutcome outcome(const std::string& result, Duration took) {
  sys::JobOutcome o;
  o.unit = "app.service";
  o.job = "/org/freedesktop/systemd1/job/42";
  o.result = result;
  o.took = took;
  return o;
}

TEST(RestartDescribe, Done) {
  sys::JobOutcome o = outcome("done", 1234ms);
  o.after = state("active", "running", "success", 0);
  EXPECT_TRUE(o.ok());
  EXPECT_EQ(describe_outcome(o), "restarted app.service: done in 1.2s, now active (running)");
}

TEST(RestartDescribe, JobFailed) {
  sys::JobOutcome o = outcome("failed", 400ms);
  o.after = state("failed", "failed", "exit-code", 0);
  o.after.exec_main_code = 1;
  o.after.exec_main_status = 1;
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(describe_outcome(o),
            "restart of app.service failed: job result 'failed' after 400ms, now failed (failed), "
            "Result: exit-code, status=1");
}

TEST(RestartDescribe, OtherJobResultsAreExplained) {
  sys::JobOutcome o = outcome("canceled", 95s);
  o.after = state("inactive", "dead");
  EXPECT_EQ(describe_outcome(o),
            "restart of app.service failed: job result 'canceled' (replaced by a conflicting "
            "job) after 1m35s, now inactive (dead)");
  o.result = "dependency";
  EXPECT_NE(describe_outcome(o).find("(a unit it requires failed)"), std::string::npos);
}

TEST(RestartDescribe, StateNotRead) {
  sys::JobOutcome o = outcome("done", 25ms);
  o.after.unit = "app.service";
  o.after.error = "not read within 1m30s";
  EXPECT_EQ(describe_outcome(o),
            "restarted app.service: done in 25ms, now state unknown: not read within 1m30s");
}

TEST(RestartDescribe, CallError) {
  sys::JobOutcome o;
  o.unit = "app.service";
  o.error = "RestartUnit app.service: Access denied";
  EXPECT_FALSE(o.ok());
  EXPECT_EQ(describe_outcome(o),
            "restart of app.service failed: RestartUnit app.service: Access denied");
}

TEST(RestartDescribe, QueuedButNotSeenIsNotConfirmed) {
  sys::JobOutcome o;
  o.unit = "app.service";
  o.job = "/org/freedesktop/systemd1/job/7";
  o.error = "no result within 1m30s from job /org/freedesktop/systemd1/job/7";
  EXPECT_EQ(describe_outcome(o),
            "restart of app.service not confirmed: no result within 1m30s from job "
            "/org/freedesktop/systemd1/job/7");
}

TEST(RestartJobTracker, ReplyThenRemoval) {
  sys::JobTracker t;
  t.expect_reply(1);
  EXPECT_EQ(t.replied(1, "/job/10"), std::nullopt);
  EXPECT_EQ(t.kept(), 0U);
  EXPECT_TRUE(t.removed("/job/9", "done").empty());  // someone else's job
  EXPECT_EQ(t.removed("/job/10", "failed"), std::vector<sys::JobTracker::Id>{1});
  EXPECT_TRUE(t.removed("/job/10", "failed").empty());  // told once
}

TEST(RestartJobTracker, RemovalBeforeReply) {
  sys::JobTracker t;
  t.expect_reply(1);
  EXPECT_TRUE(t.removed("/job/10", "done").empty());
  EXPECT_EQ(t.kept(), 1U);
  EXPECT_EQ(t.replied(1, "/job/10"), std::optional<std::string>("done"));
  EXPECT_EQ(t.kept(), 0U);  // no reply outstanding: nothing kept
  EXPECT_TRUE(t.removed("/job/10", "done").empty());
}

TEST(RestartJobTracker, MergedJobServesBothCallers) {
  sys::JobTracker t;
  t.expect_reply(1);
  t.expect_reply(2);
  EXPECT_TRUE(t.removed("/job/10", "done").empty());
  EXPECT_EQ(t.replied(1, "/job/10"), std::optional<std::string>("done"));
  EXPECT_EQ(t.replied(2, "/job/10"), std::optional<std::string>("done"));

  t.expect_reply(3);
  t.expect_reply(4);
  EXPECT_EQ(t.replied(3, "/job/11"), std::nullopt);
  EXPECT_EQ(t.replied(4, "/job/11"), std::nullopt);
  EXPECT_EQ(t.removed("/job/11", "canceled"), (std::vector<sys::JobTracker::Id>{3, 4}));
}

TEST(RestartJobTracker, KeepsOnlyWhileAReplyIsOutstanding) {
  sys::JobTracker t;
  EXPECT_TRUE(t.removed("/job/1", "done").empty());
  EXPECT_EQ(t.kept(), 0U);
  t.expect_reply(1);
  for (int i = 0; i < 1000; ++i) t.removed("/job/x" + std::to_string(i), "done");
  EXPECT_EQ(t.kept(), sys::JobTracker::kKeepRemoved);
  t.forget(1);
  EXPECT_EQ(t.kept(), 0U);
}

TEST(RestartJobTracker, ForgottenCallerIsNotTold) {
  sys::JobTracker t;
  t.expect_reply(1);
  EXPECT_EQ(t.replied(1, "/job/10"), std::nullopt);
  t.forget(1);  // its deadline passed
  EXPECT_TRUE(t.removed("/job/10", "done").empty());
  t.expect_reply(2);
  t.clear();  // the bus went away
  EXPECT_TRUE(t.removed("/job/12", "done").empty());
  EXPECT_EQ(t.kept(), 0U);
}

}  // namespace
}  // namespace vigil
