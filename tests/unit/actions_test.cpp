// The action plugins (actions/action.h, register.cpp): one per kind, what each locks, what a dry
// run of each says, and the refusals a run makes before it touches anything. The runs that reach
// ufw or systemd are covered end to end (tests/testbed/e2e.sh mitigate_*).
#include "actions/register.h"

#include "actions/block.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <optional>
#include <string>

namespace vigil {
namespace {

using namespace std::chrono_literals;

struct Fixture {
  Fixture() {
    std::string tmpl = ::testing::TempDir() + "vigil-actions-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    config.agent.state_dir = tmpl;
  }
  ~Fixture() { std::filesystem::remove_all(config.agent.state_dir); }

  boost::asio::io_context io;
  sys::UnitWatcher units{io};  // connects to the bus only when used
  sys::CommandRunner commands{io};
  Config config;
  std::vector<std::string> notes;
  std::map<ActionKind, std::unique_ptr<Action>> actions = make_actions(ActionContext{
      io, units, commands, config, [] { return false; },
      [this](const std::string& incident, const std::string& text,
             std::map<std::string, std::string>) { notes.push_back(incident + ": " + text); },
      [this](const std::string& incident, const std::string& text) {
        notes.push_back(incident + ": " + text);
      },
      [](const std::string&) { return std::optional<sys::UnitState>(); }});

  Action& of(ActionKind k) { return *actions.at(k); }
  std::string blocks_file() const { return config.agent.state_dir + "/blocks.json"; }
};

ActionConfig action(ActionKind kind, std::string name, std::string unit = "") {
  ActionConfig a;
  a.kind = kind;
  a.name = std::move(name);
  a.unit = std::move(unit);
  return a;
}

// What run() reported, when it reported before returning.
struct Reported {
  std::optional<ActionResult> result;
  std::string text;
  Action::Done done() {
    return [this](ActionResult r, std::string t) {
      result = r;
      text = std::move(t);
    };
  }
};

TEST(Actions, OneForEveryKind) {
  Fixture f;
  EXPECT_EQ(f.actions.size(), 3u);
  for (ActionKind k : {ActionKind::restart, ActionKind::rollback, ActionKind::block}) {
    EXPECT_NE(f.actions.count(k), 0u) << to_string(k);
  }
}

TEST(Actions, LockKeysShareAUnitBetweenRestartAndRollback) {
  Fixture f;
  const ActionConfig restart = action(ActionKind::restart, "app", "app.service");
  const ActionConfig rollback = action(ActionKind::rollback, "app", "app.service");
  const ActionConfig rollback_only = action(ActionKind::rollback, "site");
  const ActionConfig block = action(ActionKind::block, "ssh");
  EXPECT_EQ(f.of(ActionKind::restart).lock_key(restart, "app.service"), "unit app.service");
  EXPECT_EQ(f.of(ActionKind::rollback).lock_key(rollback, "app"), "unit app.service");
  EXPECT_EQ(f.of(ActionKind::rollback).lock_key(rollback_only, "site"), "app site");
  EXPECT_EQ(f.of(ActionKind::block).lock_key(block, "203.0.113.9"), "address 203.0.113.9");
}

TEST(Actions, DryRunSaysWhatWouldBeDoneAndABlockDoublesForARepeatOffender) {
  Fixture f;
  const TimePoint now = Clock::now();
  EXPECT_EQ(f.of(ActionKind::restart)
                .would(action(ActionKind::restart, "app", "app.service"), "app.service", now),
            "would restart app.service");
  ActionConfig block = action(ActionKind::block, "ssh");
  block.block_for = 10min;
  block.max_block_for = 1h;
  EXPECT_EQ(f.of(ActionKind::block).would(block, "203.0.113.9", now),
            "would block 203.0.113.9 for 10m (ufw prepend deny from 203.0.113.9)");
  BlockEntry earlier;
  earlier.ip = *parse_ip("203.0.113.9");
  earlier.incident = "20261203-010000-ssh-203-0-113-9";
  earlier.since = now - 2h;
  earlier.until = now - 1h;
  earlier.offence = 1;
  // The block action's own list, read back at start. Its reconcile would run `ufw status`: the
  // runner is stopped first, so nothing runs on this host.
  BlockList saved;
  ASSERT_TRUE(saved.add(earlier));
  ASSERT_TRUE(saved.save(f.blocks_file()));
  f.commands.stop();
  f.of(ActionKind::block).start();
  EXPECT_TRUE(f.of(ActionKind::block).not_ready().has_value());
  EXPECT_EQ(f.of(ActionKind::block).would(block, "203.0.113.9", now),
            "would block 203.0.113.9 for 20m (ufw prepend deny from 203.0.113.9)");
}

TEST(Actions, BlockRefusesBeforeUfwWhenTheTargetIsNoAddressOrTheListIsNotReconciled) {
  Fixture f;
  const ActionConfig block = action(ActionKind::block, "ssh");
  Reported bad;
  f.of(ActionKind::block).run("inc-1", block, "10.0.0.5 port 22", bad.done());
  ASSERT_EQ(bad.result, ActionResult::failed);
  EXPECT_EQ(bad.text.rfind("not blocked: ", 0), 0u) << bad.text;

  // Before start() has reconciled the list with ufw.
  EXPECT_EQ(f.of(ActionKind::block).not_ready(),
            "waiting until vigil's block list is reconciled with ufw");
  Reported early;
  f.of(ActionKind::block).run("inc-1", block, "203.0.113.9", early.done());
  ASSERT_EQ(early.result, ActionResult::failed);
  EXPECT_NE(early.text.find("not reconciled yet"), std::string::npos) << early.text;
  EXPECT_EQ(f.commands.pending(), 0u) << "nothing may reach ufw";
  EXPECT_FALSE(std::filesystem::exists(f.blocks_file())) << "the list is not written";
}

TEST(Actions, RollbackWithoutAKnownGoodReleaseFailsWithoutSwitching) {
  Fixture f;
  ActionConfig rollback = action(ActionKind::rollback, "app", "app.service");
  rollback.dir = "/nonexistent/vigil-actions-test";
  Reported r;
  f.of(ActionKind::rollback).run("inc-2", rollback, "app", r.done());
  ASSERT_EQ(r.result, ActionResult::failed);
  EXPECT_FALSE(r.text.empty());
  EXPECT_TRUE(f.notes.empty()) << "no switch, so no note";
}

}  // namespace
}  // namespace vigil
