// sys/files: the durable append and the symlink swap every state file and rollback goes through.
#include "agent/sys/files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace vigil::sys {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::string read(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string root_;
};

TEST_F(FilesTest, AppendCreatesFileAndDirectoryWithTheModeOnlyWhenAsked) {
  const std::string path = root_ + "/a/b/log.jsonl";
  Result<Appended> missing = append_lines(path, "x\n", IfMissing::fail, 0600);
  ASSERT_TRUE(missing) << missing.error().message;
  EXPECT_EQ(*missing, Appended::missing);
  EXPECT_FALSE(fs::exists(root_ + "/a"));

  Result<Appended> created = append_lines(path, "one\n", IfMissing::create, 0640);
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(*created, Appended::appended);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  ASSERT_TRUE(append_lines(path, "two\n", IfMissing::fail, 0600));
  EXPECT_EQ(read(path), "one\ntwo\n");
}

TEST_F(FilesTest, AppendClosesATornLastLineSoNewRecordsStandAlone) {
  const std::string path = root_ + "/log.jsonl";
  std::ofstream(path, std::ios::binary) << "whole\n{\"torn";
  ASSERT_TRUE(append_lines(path, "next\n", IfMissing::fail, 0600));
  EXPECT_EQ(read(path), "whole\n{\"torn\nnext\n");
}

TEST_F(FilesTest, AppendRefusesASymlinkAndANonRegularFile) {
  const std::string target = root_ + "/elsewhere";
  std::ofstream(target) << "keep\n";
  const std::string link = root_ + "/log.jsonl";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_FALSE(append_lines(link, "x\n", IfMissing::create, 0600));
  EXPECT_EQ(read(target), "keep\n");
  Result<Appended> dir = append_lines(root_, "x\n", IfMissing::create, 0600);
  ASSERT_FALSE(dir);
}

TEST_F(FilesTest, ReplaceSymlinkSwapsInOneStepAndLeavesNoTemporaryName) {
  fs::create_directories(root_ + "/releases/A");
  fs::create_directories(root_ + "/releases/B");
  const std::string current = root_ + "/current";
  ASSERT_EQ(::symlink("releases/A", current.c_str()), 0);
  Result<std::string> swapped = replace_symlink("releases/B", current);
  ASSERT_TRUE(swapped) << swapped.error().message;
  EXPECT_EQ(*swapped, "");  // synced
  EXPECT_EQ(fs::read_symlink(current), "releases/B");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_)) ++entries;
  EXPECT_EQ(entries, 2u);  // releases/ and current: no ".current.vigil-*" left behind
}

TEST_F(FilesTest, ReplaceSymlinkInAMissingDirectorySaysWhatItCouldNotCreate) {
  Result<std::string> swapped = replace_symlink("releases/B", root_ + "/gone/current");
  ASSERT_FALSE(swapped);
  EXPECT_NE(swapped.error().message.find("cannot create " + root_ + "/gone/.current.vigil-"),
            std::string::npos)
      << swapped.error().message;
}

TEST_F(FilesTest, WriteFileAtomicReplacesTheWholeFileAndCleansUp) {
  const std::string path = root_ + "/state/blocks.json";
  ASSERT_TRUE(write_file_atomic(path, "{\"v\":1}\n"));
  ASSERT_TRUE(write_file_atomic(path, "{\"v\":2}\n"));
  EXPECT_EQ(read(path), "{\"v\":2}\n");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

}  // namespace
}  // namespace vigil::sys
