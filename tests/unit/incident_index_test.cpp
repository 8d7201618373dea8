// The incident index: a cache of resolved incidents' summaries, trusted only for the version of
// the timeline it names; damaged lines are skipped, never fatal; compaction keeps what is asked.
#include "agent/incidents/incident_index.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil {
namespace {

class IncidentIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-index-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    path_ = dir_ + "/incident-index.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string text() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static IncidentIndex::Entry entry(std::uintmax_t size, std::int64_t mtime, const char* title,
                                    bool owed = false) {
    return {{size, mtime}, owed, nlohmann::json{{"title", title}, {"state", "resolved"}}};
  }

  std::string dir_, path_;
};

TEST_F(IncidentIndexTest, AnEntryCountsOnlyForTheVersionItNames) {
  IncidentIndex index(path_);
  ASSERT_TRUE(index.load());  // missing: empty
  EXPECT_EQ(index.size(), 0u);
  ASSERT_TRUE(index.put("20261203-120000-app", entry(100, 7, "first")));
  ASSERT_TRUE(index.put("20261203-120000-app", entry(180, 9, "second")));  // the file grew
  ASSERT_TRUE(index.put("20261203-130000-db", entry(50, 3, "db", true)));

  IncidentIndex again(path_);
  Result<IncidentIndex::LoadReport> r = again.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 2u);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(again.find("20261203-120000-app", {100, 7}), nullptr);  // an older version
  const IncidentIndex::Entry* app = again.find("20261203-120000-app", {180, 9});
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->summary["title"], "second");
  EXPECT_FALSE(app->owed);
  EXPECT_EQ(again.find("20261203-120000-app", {180, 10}), nullptr);  // touched since
  const IncidentIndex::Entry* db = again.find("20261203-130000-db", {50, 3});
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(db->owed);
  EXPECT_EQ(again.find("20261203-140000-none", {1, 1}), nullptr);
}

TEST_F(IncidentIndexTest, DamagedLinesAreSkippedAndCounted) {
  IncidentIndex index(path_);
  ASSERT_TRUE(index.put("20261203-120000-app", entry(100, 7, "ok")));
  {
    std::ofstream out(path_, std::ios::app);
    out << "garbage\n";
    out << R"({"v":1,"id":"../../etc/passwd","size":1,"mtime":1,"owed":false,"summary":{}})"
           "\n";
    out << R"({"v":2,"id":"20261203-120001-x","size":1,"mtime":1,"owed":false,"summary":{}})"
           "\n";
    out << R"({"v":1,"id":"20261203-120002-x","size":-1,"mtime":1,"owed":false,"summary":{}})"
           "\n";
    out << R"({"v":1,"id":"20261203-120003-x","size":1,"mtime":1,"owed":"no","summary":{}})"
           "\n";
    out << R"({"v":1,"id":"20261203-120004-x","size":1,"mtime":1,"owed":false,"summary":[]})"
           "\n";
    out << R"({"v":1,"id":"20261203-120005-x","size":1,"mtime":1,"ow)";  // torn
  }
  IncidentIndex again(path_);
  Result<IncidentIndex::LoadReport> r = again.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->entries, 1u);
  EXPECT_EQ(r->skipped, 7);
  EXPECT_NE(again.find("20261203-120000-app", {100, 7}), nullptr);
}

TEST_F(IncidentIndexTest, CompactKeepsOneLinePerKeptIncident) {
  IncidentIndex index(path_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(index.put("20261203-120000-app", entry(100 + i, i, "app")));
  }
  ASSERT_TRUE(index.put("20261203-130000-gone", entry(1, 1, "deleted since")));
  ASSERT_TRUE(index.compact({"20261203-120000-app"}));
  EXPECT_EQ(index.size(), 1u);
  const std::string t = text();
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 1) << t;
  IncidentIndex again(path_);
  ASSERT_TRUE(again.load());
  EXPECT_NE(again.find("20261203-120000-app", {104, 4}), nullptr);
  EXPECT_EQ(again.find("20261203-130000-gone", {1, 1}), nullptr);
}

TEST_F(IncidentIndexTest, AnUnreadableOrOversizedIndexIsAnErrorAndEmpty) {
  std::filesystem::create_directory(path_);  // not a file
  IncidentIndex index(path_);
  EXPECT_FALSE(index.load());
  EXPECT_EQ(index.size(), 0u);
  EXPECT_FALSE(index.put("20261203-120000-app", entry(1, 1, "x")));
}

}  // namespace
}  // namespace vigil
