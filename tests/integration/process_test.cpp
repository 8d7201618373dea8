// The command runner with real programs: exit codes and signals, output capture and its bound,
// timeouts that kill the whole process group, refusals, literal argv, a clean environment and
// fds, no zombies; and CommandRunner's delivery on the io_context, in order, never after stop().
#include "agent/sys/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace vigil {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

// Our child processes that are zombies (exited, not reaped), by scanning /proc.
std::vector<int> zombie_children() {
  std::vector<int> out;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return out;
  while (const dirent* e = ::readdir(dir)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    int ppid = 0;
    rest >> state >> ppid;
    if (state == 'Z' && ppid == ::getpid()) out.push_back(pid);
  }
  ::closedir(dir);
  return out;
}

// True when `pid` no longer runs (gone, or a zombie waiting for whoever adopted it).
bool process_gone(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return true;
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
}

Duration elapsed_since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<Duration>(SteadyClock::now() - start);
}

TEST(CommandRun, ExitCodes) {
  sys::CommandResult t = sys::run_command({"/bin/true"}, 5s);
  EXPECT_TRUE(t.ok()) << t.describe();
  EXPECT_EQ(t.exit_code, 0);
  EXPECT_EQ(t.signal, 0);
  EXPECT_EQ(t.describe(), "exit 0");

  sys::CommandResult f = sys::run_command({"/bin/false"}, 5s);
  EXPECT_FALSE(f.ok());
  EXPECT_EQ(f.exit_code, 1);
  EXPECT_EQ(f.describe(), "exit 1");

  sys::CommandResult n = sys::run_command({"/bin/sh", "-c", "exit 42"}, 5s);
  EXPECT_EQ(n.exit_code, 42);
  EXPECT_TRUE(zombie_children().empty());
}

TEST(CommandRun, CapturesStdoutAndStderr) {
  sys::CommandResult r = sys::run_command(
      {"/bin/sh", "-c",
       "echo out; echo line two; printf '\\n  ERROR: it broke\\nmore\\n' >&2; exit 3"},
      5s);
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\nline two\n");
  EXPECT_EQ(r.err, "\n  ERROR: it broke\nmore\n");
  EXPECT_FALSE(r.out_truncated);
  EXPECT_EQ(r.describe(), "exit 3: ERROR: it broke");

  // No stderr: the first line of stdout explains the failure.
  sys::CommandResult o = sys::run_command({"/bin/sh", "-c", "echo 'Could not do it'; exit 1"}, 5s);
  EXPECT_EQ(o.describe(), "exit 1: Could not do it");
  // Control bytes never reach a log line raw.
  sys::CommandResult c =
      sys::run_command({"/bin/sh", "-c", "printf 'bad\\033[31m\\n' >&2; exit 2"}, 5s);
  EXPECT_EQ(c.describe(), "exit 2: bad\\x1b[31m");
}

TEST(CommandRun, OutputIsBoundedAndTheRestDrained) {
  const auto start = SteadyClock::now();
  // 1 MiB on stdout and 200 kB on stderr: more than a pipe holds, so the program only finishes
  // if the rest is read and dropped.
  sys::CommandResult r =
      sys::run_command({"/bin/sh", "-c",
                        "head -c 1048576 /dev/zero | tr '\\0' a; "
                        "head -c 200000 /dev/zero | tr '\\0' b >&2; echo done >&2"},
                       10s);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.size(), sys::kMaxCommandOutput);
  EXPECT_EQ(r.out, std::string(sys::kMaxCommandOutput, 'a'));
  EXPECT_TRUE(r.out_truncated);
  EXPECT_EQ(r.err.size(), sys::kMaxCommandOutput);
  EXPECT_TRUE(r.err_truncated);
  EXPECT_LT(elapsed_since(start), 2s);
}

TEST(CommandRun, OutputLimitCanBeRaised) {
  sys::CommandResult r =
      sys::run_command({"/bin/sh", "-c", "head -c 300000 /dev/zero | tr '\\0' a"}, 5s, 1 << 20);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out.size(), 300000u);
  EXPECT_FALSE(r.out_truncated);
  sys::CommandResult small = sys::run_command({"/bin/echo", "hello world"}, 5s, 5);
  EXPECT_EQ(small.out, "hello");
  EXPECT_TRUE(small.out_truncated);
}

TEST(CommandRun, TimeoutKillsQuickly) {
  const auto start = SteadyClock::now();
  sys::CommandResult r = sys::run_command({"/bin/sleep", "30"}, 200ms);
  const Duration took = elapsed_since(start);
  EXPECT_TRUE(r.timed_out);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.signal, SIGTERM);
  EXPECT_EQ(r.describe(), "timed out after 200ms");
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1s);
  EXPECT_TRUE(zombie_children().empty());
}

TEST(CommandRun, TimeoutKillsTheWholeGroup) {
  // The shell starts a grandchild and waits for it; both must die.
  sys::CommandResult r =
      sys::run_command({"/bin/sh", "-c", "/bin/sleep 30 & echo $!; wait; echo never"}, 300ms);
  EXPECT_TRUE(r.timed_out);
  const int grandchild = std::atoi(r.out.c_str());
  ASSERT_GT(grandchild, 0) << r.out;
  EXPECT_EQ(r.out.find("never"), std::string::npos);
  const auto deadline = SteadyClock::now() + 1s;
  while (!process_gone(grandchild) && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(process_gone(grandchild)) << "pid " << grandchild;
}

TEST(CommandRun, SigtermIgnoredMeansSigkillAfterTheGrace) {
  const auto start = SteadyClock::now();
  // An ignored SIGTERM is inherited by the sleep too.
  sys::CommandResult r = sys::run_command({"/bin/sh", "-c", "trap '' TERM; /bin/sleep 30"}, 100ms);
  const Duration took = elapsed_since(start);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(took, 500ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_EQ(r.describe(), "timed out after 100ms");
}

TEST(CommandRun, KilledBySignal) {
  sys::CommandResult r = sys::run_command({"/bin/sh", "-c", "kill -9 $$"}, 5s);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.signal, 9);
  EXPECT_EQ(r.exit_code, -1);
  EXPECT_EQ(r.describe(), "killed by signal 9 (SIGKILL)");
}

TEST(CommandRun, LeftoversInTheGroupDoNotHoldItUp) {
  // The shell exits at once, leaving a sleep that holds the pipes open.
  const auto start = SteadyClock::now();
  sys::CommandResult r =
      sys::run_command({"/bin/sh", "-c", "/bin/sleep 30 & echo $!; echo started"}, 5s);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_LT(elapsed_since(start), 1s);
  EXPECT_NE(r.out.find("started"), std::string::npos);
  const int leftover = std::atoi(r.out.c_str());
  ASSERT_GT(leftover, 0);
  const auto deadline = SteadyClock::now() + 1s;
  while (!process_gone(leftover) && SteadyClock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(process_gone(leftover));
}

TEST(CommandRun, RefusesRelativeOrEmptyCommands) {
  for (const std::vector<std::string>& argv :
       std::vector<std::vector<std::string>>{{"echo", "hi"}, {"./echo"}, {"bin/true"}, {""}}) {
    sys::CommandResult r = sys::run_command(argv, 1s);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("not an absolute path"), std::string::npos) << r.error;
    EXPECT_EQ(r.describe(), r.error);
  }
  sys::CommandResult empty = sys::run_command({}, 1s);
  EXPECT_FALSE(empty.ok());
  EXPECT_FALSE(empty.error.empty());
  sys::CommandResult nul = sys::run_command({"/bin/echo", std::string("a\0b", 3)}, 1s);
  EXPECT_NE(nul.error.find("NUL"), std::string::npos) << nul.error;
}

TEST(CommandRun, MissingOrNonExecutableBinary) {
  sys::CommandResult r = sys::run_command({"/nonexistent/usr/sbin/ufw", "status"}, 1s);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error, "cannot run /nonexistent/usr/sbin/ufw: No such file or directory");
  EXPECT_EQ(r.describe(), r.error);

  char path[] = "/tmp/vigil-noexec-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  sys::CommandResult p = sys::run_command({path}, 1s);
  ::unlink(path);
  EXPECT_EQ(p.error, std::string("cannot run ") + path + ": Permission denied");
  EXPECT_TRUE(zombie_children().empty());
}

TEST(CommandRun, ShellMetacharactersArePassedLiterally) {
  sys::CommandResult r = sys::run_command(
      {"/bin/echo", "1.2.3.4; reboot", "$(id)", "`id`", "a && b", "*", "'\"'"}, 5s);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "1.2.3.4; reboot $(id) `id` a && b * '\"'\n");
}

TEST(CommandRun, EnvironmentIsClean) {
  ::setenv("VIGIL_TEST_SECRET", "leak", 1);
  sys::CommandResult r = sys::run_command({"/usr/bin/env"}, 5s);
  ::unsetenv("VIGIL_TEST_SECRET");
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLC_ALL=C\nLANG=C\n");
}

TEST(CommandRun, NoInheritedFdsAndStdinIsDevNull) {
  // A descriptor opened without O_CLOEXEC, as a careless library might.
  const int leaked = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaked, 0);
  // `[ -e ]` only stats: listing /proc/$$/fd would show the listing's own directory fd.
  sys::CommandResult r =
      sys::run_command({"/bin/sh", "-c",
                        "n=3; while [ $n -lt 1024 ]; do [ -e /proc/$$/fd/$n ] && echo "
                        "$n; n=$((n+1)); done; readlink /proc/$$/fd/0"},
                       5s);
  ::close(leaked);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, "/dev/null\n");

  // stdin is at EOF: cat finishes at once.
  sys::CommandResult cat = sys::run_command({"/bin/cat"}, 5s);
  EXPECT_TRUE(cat.ok());
  EXPECT_EQ(cat.out, "");
}

TEST(CommandRun, OwnProcessGroup) {
  sys::CommandResult r = sys::run_command({"/bin/sh", "-c", "cut -d' ' -f1,5 /proc/$$/stat"}, 5s);
  ASSERT_TRUE(r.ok()) << r.describe();
  std::istringstream in(r.out);
  int pid = 0;
  int pgid = 0;
  in >> pid >> pgid;
  EXPECT_GT(pid, 0);
  EXPECT_EQ(pid, pgid);
  EXPECT_NE(pgid, ::getpgrp());
}

// --- CommandRunner ---

// Runs `io` until `done` says so, or 2 s pass.
template <typename Done>
void run_until(boost::asio::io_context& io, Done done) {
  const auto deadline = SteadyClock::now() + 2s;
  while (!done() && SteadyClock::now() < deadline) {
    io.restart();
    io.run_for(10ms);
  }
}

TEST(CommandRunnerTest, DeliversInOrderOnTheLoopThread) {
  boost::asio::io_context io;
  sys::CommandRunner runner(io);
  std::vector<std::string> got;
  std::vector<std::thread::id> threads;
  for (const char* word : {"one", "two", "three"}) {
    runner.run({"/bin/echo", word}, 5s, [&](sys::CommandResult r) {
      got.push_back(r.out);
      threads.push_back(std::this_thread::get_id());
    });
  }
  EXPECT_EQ(runner.pending(), 3u);
  run_until(io, [&] { return got.size() == 3; });
  EXPECT_EQ(got, (std::vector<std::string>{"one\n", "two\n", "three\n"}));
  for (const auto& id : threads) EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(runner.pending(), 0u);
}

TEST(CommandRunnerTest, ChildrenGetAnEmptySignalMaskAndDefaultHandlers) {
  // The worker thread blocks every signal, and a daemon often ignores SIGPIPE; a child must
  // inherit neither. grep reads its own status (a shell's could show the mask dash sets around
  // fork).
  struct sigaction ignore {};
  struct sigaction old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  boost::asio::io_context io;
  sys::CommandRunner runner(io);
  std::string out;
  bool done = false;
  runner.run({"/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}, 5s,
             [&](sys::CommandResult r) {
               out = r.out;
               done = true;
             });
  run_until(io, [&] { return done; });
  ::sigaction(SIGPIPE, &old, nullptr);
  std::istringstream in(out);
  std::string name;
  std::string blocked;
  std::string ignored;
  in >> name >> blocked >> name >> ignored;
  EXPECT_EQ(blocked, "0000000000000000") << out;
  // Bits 0-30 are the standard signals 1-31 (SIGPIPE is bit 12). glibc's posix_spawn leaves its
  // two internal real-time signals, 32 and 33, ignored; glibc programs reinstall them at start.
  ASSERT_FALSE(ignored.empty()) << out;
  EXPECT_EQ(std::stoull(ignored, nullptr, 16) & 0x7fffffffULL, 0u) << out;
}

TEST(CommandRunnerTest, NothingIsDeliveredAfterStop) {
  boost::asio::io_context io;
  sys::CommandRunner runner(io);
  int called = 0;
  // The first finishes before stop() and its result waits in the io_context; the second is
  // queued behind a slow one and never runs.
  runner.run({"/bin/true"}, 5s, [&](sys::CommandResult) { ++called; });
  runner.run({"/bin/sleep", "0.2"}, 5s, [&](sys::CommandResult) { ++called; });
  runner.run({"/bin/echo", "never"}, 5s, [&](sys::CommandResult) { ++called; });
  std::this_thread::sleep_for(50ms);
  runner.stop();
  EXPECT_EQ(runner.pending(), 0u);
  runner.run({"/bin/true"}, 5s, [&](sys::CommandResult) { ++called; });
  EXPECT_EQ(runner.pending(), 0u);
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(called, 0);
  runner.stop();  // idempotent
}

TEST(CommandRunnerTest, NothingIsDeliveredAfterDestruction) {
  boost::asio::io_context io;
  int called = 0;
  {
    sys::CommandRunner runner(io);
    runner.run({"/bin/true"}, 5s, [&](sys::CommandResult) { ++called; });
    runner.run({"/bin/echo", "x"}, 5s, [&](sys::CommandResult) { ++called; });
    std::this_thread::sleep_for(50ms);
  }
  io.restart();
  io.run_for(100ms);
  EXPECT_EQ(called, 0);
  EXPECT_TRUE(zombie_children().empty());
}

TEST(CommandRunnerTest, StopFromInsideACallback) {
  boost::asio::io_context io;
  sys::CommandRunner runner(io);
  int called = 0;
  runner.run({"/bin/true"}, 5s, [&](sys::CommandResult) {
    ++called;
    runner.stop();
  });
  runner.run({"/bin/true"}, 5s, [&](sys::CommandResult) { ++called; });
  run_until(io, [&] { return called > 0 && runner.pending() == 0; });
  io.restart();
  io.run_for(50ms);
  EXPECT_EQ(called, 1);
}

}  // namespace
}  // namespace vigil
