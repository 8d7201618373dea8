// The rollback action on real files and symlinks in a temporary directory: known-good history,
// reading `current`, planning, the atomic switch (a concurrent reader never sees it missing) and
// every refusal.
#include "actions/rollback.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace vigil {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

TimePoint at(int seconds) {
  using namespace std::chrono;
  return sys_days{year{2026} / 11 / 27} + 1h + std::chrono::seconds{seconds};
}

class RollbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-rollback-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    root_ = tmpl;
    dir_ = root_ + "/app";
    fs::create_directories(dir_ + "/releases/A");
    fs::create_directories(dir_ + "/releases/B");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  void link_current(const std::string& target) {
    std::error_code ec;
    fs::remove(dir_ + "/current", ec);
    ASSERT_EQ(::symlink(target.c_str(), (dir_ + "/current").c_str()), 0) << std::strerror(errno);
  }
  std::string read_current() const {
    std::error_code ec;
    return fs::read_symlink(dir_ + "/current", ec).string();
  }
  // Everything in DIR but `current` and `releases`: a leftover temporary link would show here.
  std::vector<std::string> strays() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name != "current" && name != "releases") out.push_back(name);
    }
    return out;
  }
  ReleaseHistory history(std::initializer_list<const char*> oldest_first) const {
    ReleaseHistory h;
    int t = 0;
    for (const char* r : oldest_first) EXPECT_TRUE(h.mark_good(r, at(t += 10)));
    return h;
  }

  std::string root_;
  std::string dir_;
};

// --- the happy path -----------------------------------------------------------------------

TEST_F(RollbackTest, DeployThenRollBackToThePreviousKnownGoodRelease) {
  link_current("releases/A");
  ReleaseHistory h;
  ASSERT_EQ(*current_release(dir_), "A");
  ASSERT_TRUE(h.mark_good(*current_release(dir_), at(0)));

  // Deploy B; it passes health for a while, then goes bad.
  Result<ReleaseSwitch> deploy = switch_release(dir_, "B");
  ASSERT_TRUE(deploy) << deploy.error().message;
  EXPECT_EQ(deploy->from, "A");
  EXPECT_EQ(deploy->to, "B");
  EXPECT_EQ(deploy->warning, "");
  ASSERT_TRUE(h.mark_good(*current_release(dir_), at(60)));

  Result<RollbackPlan> plan = plan_rollback(dir_, h);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->from, "B");
  EXPECT_EQ(plan->to, "A");
  EXPECT_TRUE(plan->skipped.empty());

  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::no}, h);
  EXPECT_TRUE(out.ok) << out.message;
  EXPECT_EQ(out.action, "rollback");
  EXPECT_EQ(out.target, "myapp");
  EXPECT_EQ(out.from, "B");
  EXPECT_EQ(out.to, "A");
  EXPECT_NE(out.message.find("switched B -> A"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("roll forward"), std::string::npos) << out.message;
  EXPECT_EQ(read_current(), "releases/A");
  EXPECT_EQ(*current_release(dir_), "A");
  EXPECT_TRUE(strays().empty());
}

TEST_F(RollbackTest, UnhealthyDeployIsNeverARollbackTarget) {
  // A and B passed health; C was deployed and never did. Rolling back from C goes to B, and
  // from B (C is not known good) to A.
  fs::create_directories(dir_ + "/releases/C");
  link_current("releases/C");
  const ReleaseHistory h = history({"A", "B"});
  EXPECT_EQ(plan_rollback(dir_, h)->to, "B");
  link_current("releases/B");
  EXPECT_EQ(plan_rollback(dir_, h)->to, "A");
}

TEST_F(RollbackTest, DryRunChangesNothing) {
  link_current("releases/B");
  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::yes}, history({"A", "B"}));
  EXPECT_TRUE(out.ok) << out.message;
  EXPECT_EQ(out.dry_run, DryRun::yes);
  EXPECT_EQ(out.from, "B");
  EXPECT_EQ(out.to, "A");
  EXPECT_NE(out.message.find("would switch B -> A"), std::string::npos) << out.message;
  EXPECT_EQ(read_current(), "releases/B");
  EXPECT_TRUE(strays().empty());
}

// --- the switch made by another process (as DIR's owner) -----------------------------------

TEST_F(RollbackTest, BeginPlansWithoutTouchingAndEndReportsWhoSwitched) {
  link_current("releases/B");
  const ReleaseHistory h = history({"A", "B"});
  const RollbackRequest req{"myapp", dir_, DryRun::no};
  const PlannedRollback p = begin_rollback(req, h);
  ASSERT_TRUE(p.switch_pending) << p.outcome.message;
  EXPECT_EQ(p.outcome.from, "B");
  EXPECT_EQ(p.outcome.to, "A");
  EXPECT_EQ(read_current(), "releases/B");  // planning switches nothing

  // The helper switched it (here: this process, standing in for the owner's).
  const RollbackOutcome out =
      end_rollback(req, p, switch_release(dir_, p.outcome.to), "as www-data (uid 33)");
  EXPECT_TRUE(out.ok) << out.message;
  EXPECT_NE(out.message.find("switched B -> A as www-data (uid 33); to roll forward"),
            std::string::npos)
      << out.message;
  EXPECT_EQ(read_current(), "releases/A");
}

TEST_F(RollbackTest, EndWithTheHelpersErrorIsAFailedRollbackThatKeepsFromAndTo) {
  link_current("releases/B");
  const RollbackRequest req{"myapp", dir_, DryRun::no};
  const PlannedRollback p = begin_rollback(req, history({"A", "B"}));
  ASSERT_TRUE(p.switch_pending);
  const RollbackOutcome out =
      end_rollback(req, p, make_error("the switch as www-data (uid 33) failed (job failed)"),
                   "as www-data (uid 33)");
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.from, "B");
  EXPECT_EQ(out.to, "A");
  EXPECT_EQ(out.message, "rollback myapp: the switch as www-data (uid 33) failed (job failed)");
}

TEST_F(RollbackTest, BeginIsFinalForARefusalAndForDryRun) {
  link_current("releases/B");
  const PlannedRollback refused = begin_rollback({"myapp", dir_, DryRun::no}, history({"B"}));
  EXPECT_FALSE(refused.switch_pending);
  EXPECT_FALSE(refused.outcome.ok);
  EXPECT_NE(refused.outcome.message.find("no known-good release other than the current one"),
            std::string::npos);
  const PlannedRollback dry = begin_rollback({"myapp", dir_, DryRun::yes}, history({"A", "B"}));
  EXPECT_FALSE(dry.switch_pending);
  EXPECT_TRUE(dry.outcome.ok);
  EXPECT_NE(dry.outcome.message.find("would switch B -> A"), std::string::npos);
  EXPECT_EQ(read_current(), "releases/B");
}

TEST_F(RollbackTest, DeployOwnerIsTheOwnerOfTheDeployDirectory) {
  Result<DeployOwner> o = deploy_owner(dir_);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->uid, ::getuid());
  EXPECT_EQ(o->gid, ::getgid());
  Result<DeployOwner> missing = deploy_owner(root_ + "/nothing-here");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot stat " + root_ + "/nothing-here"),
            std::string::npos)
      << missing.error().message;
  std::ofstream(root_ + "/file") << "x";
  EXPECT_FALSE(deploy_owner(root_ + "/file"));
}

// --- link styles --------------------------------------------------------------------------

TEST_F(RollbackTest, RelativeLinkStaysRelative) {
  link_current("releases/A");
  ASSERT_TRUE(switch_release(dir_, "B"));
  EXPECT_EQ(read_current(), "releases/B");

  link_current("./releases/A/");  // other spellings keep theirs, trailing slash dropped
  EXPECT_EQ(*current_release(dir_), "A");
  ASSERT_TRUE(switch_release(dir_, "B"));
  EXPECT_EQ(read_current(), "./releases/B");
  EXPECT_EQ(*current_release(dir_), "B");
}

TEST_F(RollbackTest, AbsoluteLinkStaysAbsolute) {
  link_current(dir_ + "/releases/A");
  EXPECT_EQ(*current_release(dir_), "A");
  Result<ReleaseSwitch> s = switch_release(dir_, "B");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(read_current(), dir_ + "/releases/B");
  EXPECT_EQ(*current_release(dir_), "B");
}

TEST_F(RollbackTest, AbsoluteLinkThroughASymlinkedDeployDirectory) {
  // /srv/app -> /data/app: the deploy tool wrote the link through one name, vigil is
  // configured with the other.
  ASSERT_EQ(::symlink(dir_.c_str(), (root_ + "/alias").c_str()), 0);
  link_current(root_ + "/alias/releases/A");
  EXPECT_EQ(*current_release(dir_), "A");
  EXPECT_EQ(*current_release(root_ + "/alias"), "A");
  ASSERT_TRUE(switch_release(dir_, "B"));
  EXPECT_EQ(read_current(), root_ + "/alias/releases/B");
}

TEST_F(RollbackTest, TrailingSlashOnTheDeployDirectory) {
  link_current("releases/A");
  EXPECT_EQ(*current_release(dir_ + "/"), "A");
  ASSERT_TRUE(switch_release(dir_ + "/", "B"));
  EXPECT_EQ(read_current(), "releases/B");
}

// --- refusals -----------------------------------------------------------------------------

void expect_error(const Result<RollbackPlan>& r, const std::string& part) {
  ASSERT_FALSE(r) << "planned " << r->from << " -> " << r->to;
  EXPECT_NE(r.error().message.find(part), std::string::npos) << r.error().message;
}

TEST_F(RollbackTest, RefusesWithoutAKnownGoodRelease) {
  link_current("releases/B");
  expect_error(plan_rollback(dir_, ReleaseHistory{}),
               "no known-good release other than the current one (B)");
  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::no}, ReleaseHistory{});
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.from, "B");
  EXPECT_EQ(out.to, "");
  EXPECT_NE(out.message.find("no known-good release"), std::string::npos) << out.message;
  EXPECT_EQ(read_current(), "releases/B");
}

TEST_F(RollbackTest, RefusesWhenOnlyTheCurrentReleaseIsKnownGood) {
  link_current("releases/B");
  expect_error(plan_rollback(dir_, history({"B"})),
               "no known-good release other than the current one");
  EXPECT_EQ(read_current(), "releases/B");
}

TEST_F(RollbackTest, RefusesWhenCurrentIsARegularDirectory) {
  fs::create_directories(dir_ + "/current/www");
  const ReleaseHistory h = history({"A", "B"});
  expect_error(plan_rollback(dir_, h), "current is not a symlink");
  const Result<ReleaseSwitch> s = switch_release(dir_, "A");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("not a symlink"), std::string::npos) << s.error().message;
  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::no}, h);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.from, "");
  EXPECT_TRUE(fs::is_directory(dir_ + "/current/www"));  // untouched
  EXPECT_TRUE(strays().empty());
}

TEST_F(RollbackTest, RefusesWhenCurrentIsMissing) {
  expect_error(plan_rollback(dir_, history({"A", "B"})), "current is missing");
  EXPECT_FALSE(switch_release(dir_, "A"));
  EXPECT_FALSE(fs::exists(dir_ + "/current"));
}

TEST_F(RollbackTest, RefusesADanglingCurrent) {
  link_current("releases/C");
  expect_error(plan_rollback(dir_, history({"A", "B"})), "release C is gone");
  expect_error(plan_rollback(dir_, history({"A", "B"})), "dangling");
  EXPECT_FALSE(switch_release(dir_, "A"));
  EXPECT_EQ(read_current(), "releases/C");
}

TEST_F(RollbackTest, RefusesACurrentPointingOutsideReleases) {
  fs::create_directories(root_ + "/elsewhere/releases/A");
  fs::create_directories(dir_ + "/A");
  const std::vector<std::string> targets = {"A",
                                            "releases",
                                            "releases/..",
                                            "releases/.",
                                            "../elsewhere/releases/A",
                                            root_ + "/elsewhere/releases/A",
                                            "releases/../A",
                                            "/",
                                            ".."};
  for (const std::string& target : targets) {
    link_current(target);
    const Result<std::string> r = current_release(dir_);
    ASSERT_FALSE(r) << target << " read as " << *r;
    EXPECT_NE(r.error().message.find("points outside"), std::string::npos)
        << target << ": " << r.error().message;
    EXPECT_FALSE(switch_release(dir_, "B")) << target;
    EXPECT_EQ(read_current(), target);
  }
}

TEST_F(RollbackTest, RefusesWhenTheTargetDirectoryWasRemoved) {
  link_current("releases/B");
  const ReleaseHistory h = history({"A", "B"});
  fs::remove_all(dir_ + "/releases/A");
  expect_error(plan_rollback(dir_, h), "release A is gone");
  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::no}, h);
  EXPECT_FALSE(out.ok);
  EXPECT_EQ(out.from, "B");
  EXPECT_EQ(out.to, "");
  EXPECT_NE(out.message.find("release A is gone"), std::string::npos) << out.message;
  EXPECT_EQ(read_current(), "releases/B");

  const Result<ReleaseSwitch> s = switch_release(dir_, "A");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("release A is gone"), std::string::npos) << s.error().message;
  EXPECT_EQ(read_current(), "releases/B");
  EXPECT_TRUE(strays().empty());
}

TEST_F(RollbackTest, SkipsAGoneReleaseForAnOlderKnownGoodOne) {
  fs::create_directories(dir_ + "/releases/C");
  link_current("releases/C");
  const ReleaseHistory h = history({"A", "B", "C"});
  fs::remove_all(dir_ + "/releases/B");
  Result<RollbackPlan> plan = plan_rollback(dir_, h);
  ASSERT_TRUE(plan) << plan.error().message;
  EXPECT_EQ(plan->to, "A");
  EXPECT_EQ(plan->skipped, std::vector<std::string>{"B"});
  const RollbackOutcome out = rollback({"myapp", dir_, DryRun::no}, h);
  EXPECT_TRUE(out.ok) << out.message;
  EXPECT_NE(out.message.find("skipped"), std::string::npos) << out.message;
  EXPECT_EQ(read_current(), "releases/A");
}

TEST_F(RollbackTest, RefusesHostileReleaseNames) {
  link_current("releases/A");
  fs::create_directories(root_ + "/x");
  fs::create_directories(dir_ + "/releases/a/b");
  const std::vector<std::string> names = {
      std::string("../x"), std::string("a/b"),     std::string(".."),
      std::string("."),    std::string(""),        std::string("/tmp"),
      std::string("B/"),   std::string("B\0x", 3), std::string(300, 'n')};
  for (const std::string& name : names) {
    const Result<ReleaseSwitch> s = switch_release(dir_, name);
    ASSERT_FALSE(s) << "switched to \"" << name << "\"";
    EXPECT_NE(s.error().message.find("invalid release name"), std::string::npos)
        << s.error().message;
    EXPECT_FALSE(valid_release_name(name)) << name;
    ReleaseHistory h;
    EXPECT_FALSE(h.mark_good(name, at(0))) << name;
    EXPECT_TRUE(h.releases().empty());
  }
  EXPECT_EQ(read_current(), "releases/A");
  EXPECT_TRUE(strays().empty());
  EXPECT_TRUE(valid_release_name("20261127014207"));
  EXPECT_TRUE(valid_release_name("v1.2.3-rc1"));
}

// --- atomicity ----------------------------------------------------------------------------

TEST_F(RollbackTest, ConcurrentReaderNeverSeesAMissingOrDanglingCurrent) {
  link_current("releases/A");
  const std::string current = dir_ + "/current";
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::atomic<long> missing{0};     // readlink failed (ENOENT: the ln -sfn window)
  std::atomic<long> dangling{0};    // stat through the link failed, or not a directory
  std::atomic<long> unexpected{0};  // a link to neither release (e.g. the temporary name)
  std::thread reader([&] {
    char buf[PATH_MAX];
    while (!stop.load()) {
      const ssize_t n = ::readlink(current.c_str(), buf, sizeof buf);
      if (n < 0) {
        ++missing;
      } else {
        const std::string t(buf, static_cast<std::size_t>(n));
        if (t != "releases/A" && t != "releases/B") ++unexpected;
      }
      struct stat st {};
      if (::stat(current.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) ++dangling;
      ++reads;
    }
  });
  // The reader is running before the first switch (no timing assumption beyond that).
  while (reads.load() == 0) std::this_thread::yield();

  constexpr int kSwitches = 2'000;
  int switches = 0;
  int failed = 0;
  int leftovers = 0;
  for (int i = 0; i < kSwitches; ++i) {
    const Result<ReleaseSwitch> s = switch_release(dir_, i % 2 == 0 ? "B" : "A");
    if (!s || s->warning != "") {
      ++failed;
      continue;
    }
    ++switches;
    if (!strays().empty()) ++leftovers;  // the temporary link never survives a switch
  }
  stop = true;
  reader.join();

  EXPECT_EQ(switches, kSwitches);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(leftovers, 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(missing.load(), 0);
  EXPECT_EQ(dangling.load(), 0);
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_EQ(read_current(), "releases/A");  // an even number of switches
  std::cout << "[          ] " << switches << " switches, " << reads.load()
            << " concurrent reads\n";
}

// --- ReleaseHistory -----------------------------------------------------------------------

TEST(ReleaseHistory, MarkGoodKeepsTheMostRecentlyHealthyFirst) {
  ReleaseHistory h;
  EXPECT_EQ(*h.mark_good("A", at(0)), ReleaseHistory::Change::added);
  EXPECT_EQ(*h.mark_good("A", at(5)), ReleaseHistory::Change::refreshed);
  EXPECT_EQ(*h.mark_good("B", at(10)), ReleaseHistory::Change::added);
  EXPECT_EQ(*h.mark_good("A", at(20)), ReleaseHistory::Change::promoted);
  ASSERT_EQ(h.releases().size(), 2U);
  EXPECT_EQ(h.releases()[0].release, "A");
  EXPECT_EQ(h.releases()[0].first_healthy, at(0));
  EXPECT_EQ(h.releases()[0].last_healthy, at(20));
  EXPECT_EQ(h.releases()[1].release, "B");
  EXPECT_EQ(h.find("B")->first_healthy, at(10));
  EXPECT_EQ(h.find("C"), nullptr);
}

TEST(ReleaseHistory, ClockStepsBackNeitherReorderNorRewind) {
  ReleaseHistory h;
  ASSERT_TRUE(h.mark_good("A", at(100)));
  ASSERT_TRUE(h.mark_good("B", at(50)));  // the clock stepped back: B is still the newest
  EXPECT_EQ(h.releases()[0].release, "B");
  ASSERT_TRUE(h.mark_good("B", at(40)));
  EXPECT_EQ(h.releases()[0].last_healthy, at(50));
  EXPECT_EQ(h.releases()[0].first_healthy, at(50));
}

class ReleaseHistoryFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-releases-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    root_ = tmpl;
    path_ = *release_history_path(root_ + "/state", "myapp");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  void write(const std::string& text) {
    fs::create_directories(fs::path(path_).parent_path());
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << text;
  }

  std::string root_;
  std::string path_;
};

TEST_F(ReleaseHistoryFile, PathIsUnderStateReleases) {
  EXPECT_EQ(path_, root_ + "/state/releases/myapp.json");
  EXPECT_FALSE(release_history_path(root_, "../etc/passwd"));
  EXPECT_FALSE(release_history_path(root_, ""));
}

TEST_F(ReleaseHistoryFile, RoundTrip) {
  ReleaseHistory h;
  ASSERT_TRUE(h.mark_good("A", at(0)));
  ASSERT_TRUE(h.mark_good("A", at(30) + 123ms));
  ASSERT_TRUE(h.mark_good("B \"quoted\" ünï", at(60)));
  const Result<bool> saved = h.save(path_);  // creates STATE/releases/
  ASSERT_TRUE(saved) << saved.error().message;

  const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
  EXPECT_EQ(loaded.warning, "");
  const auto& r = loaded.history.releases();
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].release, "B \"quoted\" ünï");
  EXPECT_EQ(r[0].first_healthy, at(60));
  EXPECT_EQ(r[1].release, "A");
  EXPECT_EQ(r[1].first_healthy, at(0));
  EXPECT_EQ(r[1].last_healthy, at(30) + 123ms);
  EXPECT_EQ(loaded.history.to_json(), h.to_json());
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
}

TEST_F(ReleaseHistoryFile, MissingFileIsAnEmptyHistoryWithoutWarning) {
  const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
  EXPECT_EQ(loaded.warning, "");
  EXPECT_TRUE(loaded.history.releases().empty());
}

TEST_F(ReleaseHistoryFile, CorruptFileIsAnEmptyHistoryWithAClearWarning) {
  const std::string good = R"("first_healthy": "2026-11-27T01:00:00.000Z",
                              "last_healthy": "2026-11-27T01:00:10.000Z")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "bad JSON"},
      {"garbage", "bad JSON"},
      {R"({"version": 1, "releases": [{"release": "A", )", "bad JSON"},  // torn
      {"[]", "not a JSON object"},
      {"{}", "version"},
      {R"({"version": 2, "releases": []})", "unknown version 2"},
      {R"({"version": 1})", "releases"},
      {R"({"version": 1, "releases": ["A"]})", "releases[0] is not an object"},
      {R"({"version": 1, "releases": [{)" + good + "}]}", "no \"release\""},
      {R"({"version": 1, "releases": [{"release": "../x", )" + good + "}]}",
       "invalid release name \"../x\""},
      {R"({"version": 1, "releases": [{"release": "A", )" + good + R"(}, {"release": "A", )" +
           good + "}]}",
       "release A twice"},
      {R"({"version": 1, "releases": [{"release": "A", "first_healthy": "yesterday",
          "last_healthy": "2026-11-27T01:00:10.000Z"}]})",
       "first_healthy"},
      {R"({"version": 1, "releases": [{"release": "A", "first_healthy": "2026-11-27T02:00:00Z",
          "last_healthy": "2026-11-27T01:00:10.000Z"}]})",
       "first_healthy is after last_healthy"},
  };
  for (const auto& [text, why] : cases) {
    write(text);
    const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
    EXPECT_TRUE(loaded.history.releases().empty()) << text;
    EXPECT_NE(loaded.warning.find(path_ + ": corrupt"), std::string::npos) << loaded.warning;
    EXPECT_NE(loaded.warning.find(why), std::string::npos) << text << "\n" << loaded.warning;
  }
  // The good form of the same entry loads, unknown keys included (a newer vigil may add some).
  write(R"({"version": 1, "by": "vigil 9", "releases": [{"release": "A", "note": 1, )" + good +
        "}]}");
  const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
  EXPECT_EQ(loaded.warning, "");
  ASSERT_EQ(loaded.history.releases().size(), 1U);
  EXPECT_EQ(loaded.history.releases()[0].last_healthy, at(10));
}

TEST_F(ReleaseHistoryFile, UnreadableFileIsAnEmptyHistoryWithAWarning) {
  fs::create_directories(path_);  // a directory where the file should be
  const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
  EXPECT_TRUE(loaded.history.releases().empty());
  EXPECT_NE(loaded.warning.find(path_ + ": cannot read"), std::string::npos) << loaded.warning;
}

TEST_F(ReleaseHistoryFile, OversizedFileIsRefused) {
  write(std::string(2 << 20, ' '));
  const ReleaseHistory::Loaded loaded = ReleaseHistory::load(path_);
  EXPECT_TRUE(loaded.history.releases().empty());
  EXPECT_NE(loaded.warning.find("larger than"), std::string::npos) << loaded.warning;
}

TEST_F(ReleaseHistoryFile, SizeIsBounded) {
  ReleaseHistory h;
  EXPECT_EQ(h.limit(), ReleaseHistory::kDefaultLimit);
  for (int i = 0; i < 25; ++i) {
    std::string name = "r";  // appended, not "r" + to_string(): GCC 12 -O3 -Wrestrict misfires
    name += std::to_string(i);
    ASSERT_TRUE(h.mark_good(name, at(i)));
  }
  ASSERT_EQ(h.releases().size(), ReleaseHistory::kDefaultLimit);
  EXPECT_EQ(h.releases().front().release, "r24");
  EXPECT_EQ(h.releases().back().release, "r5");  // r0..r4, the least recently healthy, dropped
  EXPECT_EQ(h.find("r4"), nullptr);
  ASSERT_TRUE(h.save(path_));
  EXPECT_EQ(ReleaseHistory::load(path_).history.releases().size(), ReleaseHistory::kDefaultLimit);

  // A smaller limit on load keeps the most recently healthy ones.
  const ReleaseHistory::Loaded small = ReleaseHistory::load(path_, 3);
  EXPECT_EQ(small.warning, "");
  ASSERT_EQ(small.history.releases().size(), 3U);
  EXPECT_EQ(small.history.releases()[2].release, "r22");

  // A limit below two could never name a rollback target.
  EXPECT_EQ(ReleaseHistory(0).limit(), 2U);
}

}  // namespace
}  // namespace vigil
