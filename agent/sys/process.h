// Running a program by argv, never through a shell: the building block of mitigations that call
// system tools (`ufw`, `ss`). An address taken from a journal line reaches the tool as one argv
// element, so no quoting, globbing or `;` can ever turn it into a second command.
#pragma once

// With Boost 1.74 and g++ 12, <utility> must come before any Asio header.
#include <utility>

#include <boost/asio/io_context.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/duration.h"

namespace vigil::sys {

// How much of each of stdout and stderr a command result keeps by default. Why 64 KiB: ufw's
// and ss's answers to a change are a line or two, and a runaway tool cannot make us hold
// megabytes. The rest is read and dropped so the program never blocks on a full pipe. A
// listing that must be complete asks for more (see kMaxUfwStatusOutput in block.h).
inline constexpr std::size_t kMaxCommandOutput = 64 * 1024;

// The only environment a command sees. LC_ALL=C: tools print their untranslated messages, which
// is what parse_ufw_status() and the timeline expect; PATH: for the tools' own helpers (ufw runs
// iptables), never for finding argv[0].
inline constexpr const char* kCommandPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";

struct CommandResult {
  int exit_code = -1;          // the exit status, or -1 when it did not exit normally
  int signal = 0;              // the signal that ended it, 0 when it exited
  bool timed_out = false;      // it ran past its timeout and was killed
  std::string out;             // stdout, at most max_output bytes
  std::string err;             // stderr, at most max_output bytes
  bool out_truncated = false;  // more was written than kept
  bool err_truncated = false;
  std::string error;    // why it could not be run at all (spawn failure); empty otherwise
  Duration timeout{0};  // the timeout it ran under, for describe()

  // True when it ran and exited with status 0 in time.
  bool ok() const;
  // One line for a log or a timeline: "exit 0", "exit 1: <first line of stderr>" (of stdout
  // when stderr is empty), "killed by signal 9 (SIGKILL)", "timed out after 5s", or the spawn
  // error ("cannot run /usr/sbin/ufw: No such file or directory"). Control bytes in the quoted
  // line are escaped and it is cut at 200 bytes.
  std::string describe() const;
};

// Runs argv[0] with argv, synchronously, and returns what happened. Never throws, never searches
// PATH: argv[0] must be an absolute path (anything else is refused with `error` set, as is an
// empty argv or an argument holding a NUL byte). The program gets the fixed environment above,
// stdin from /dev/null, stdout and stderr through pipes, no other inherited fd, default signal
// dispositions and an empty signal mask, and its own process group. When argv[0] exits, anything
// it left running in its group is killed (a finished command must not keep running unobserved).
// Past `timeout` the group gets SIGTERM, then SIGKILL after a short grace. The child is always
// reaped before returning. Each of stdout and stderr keeps its first `max_output` bytes. Blocks
// the calling thread: use CommandRunner from the loop.
CommandResult run_command(const std::vector<std::string>& argv, Duration timeout,
                          std::size_t max_output = kMaxCommandOutput);

// Runs commands one at a time on one background thread and posts each result back onto the
// io_context. Serial on purpose: ufw takes a global lock, and two blocks at once would only
// queue on it. Results arrive on the loop thread, in the order the commands were submitted.
// run(), pending(), stop() and the destructor are meant for the loop thread.
class CommandRunner {
 public:
  explicit CommandRunner(boost::asio::io_context& io);
  // stop().
  ~CommandRunner();
  CommandRunner(const CommandRunner&) = delete;
  CommandRunner& operator=(const CommandRunner&) = delete;

  // Queues argv; `done` is called on the io_context with its result, unless stop() came first.
  // After stop() the command is dropped without running and `done` is never called.
  void run(std::vector<std::string> argv, Duration timeout, std::function<void(CommandResult)> done,
           std::size_t max_output = kMaxCommandOutput);
  // Commands submitted whose `done` has not been called yet (queued, running, or finished and
  // waiting for the loop); 0 after stop().
  std::size_t pending() const;
  // Drops the commands not started yet, waits for the one in progress to end (bounded by its
  // timeout: killing ufw in the middle of an update can leave its rules file truncated), and
  // makes sure no `done` is called from now on, even for results already posted. Idempotent.
  void stop();

  struct State;

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<State> state_;
  std::thread worker_;
};

}  // namespace vigil::sys
