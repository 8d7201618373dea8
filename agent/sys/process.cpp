// Running a program by argv: posix_spawn with a clean environment and fds, bounded output
// capture, a timeout that kills the whole process group, and a serial runner thread that posts
// results back to the loop.
#include "agent/sys/process.h"
#include "agent/sys/errors.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string_view>

namespace vigil::sys {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Between SIGTERM and SIGKILL after a timeout. Why 500 ms: ufw and ss die on SIGTERM at once
// (Python's and C's default action); a program that traps it had its chance with the timeout
// itself, and a longer grace would only hold the runner (and every queued block) back.
constexpr Duration kTermGrace{500};
// Without a pidfd (kernel < 5.3, or a seccomp filter refusing it) the child's exit is checked
// this often while its pipes are quiet: short enough not to slow a command down noticeably.
constexpr int kPollSliceMs = 10;
// One read per ready pipe per round, so a program that writes without pause cannot keep us
// from checking the clock.
constexpr std::size_t kReadChunk = 16 * 1024;
// After argv[0] exited, what its leftovers may still have queued in the pipes is read up to
// this many chunks, then dropped: the pipes are closed and the group killed anyway.
constexpr int kMaxFinalReads = 8;
// describe()'s excerpt of the program's own message.
constexpr std::size_t kMaxDescribedLine = 200;

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

CommandResult refused(Duration timeout, std::string why) {
  CommandResult r;
  r.timeout = timeout;
  r.error = std::move(why);
  return r;
}

// A pipe whose ends are both above 0-2, so the child's dup2() onto stdout and stderr can never
// overwrite the other pipe (possible only if our own stdio was closed, but then it would be).
bool make_pipe(Fd& read_end, Fd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  Fd ends[2] = {Fd(fds[0]), Fd(fds[1])};
  for (Fd& end : ends) {
    if (end.get() > STDERR_FILENO) continue;
    Fd moved(::fcntl(end.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1));
    if (!moved.valid()) return false;
    end = std::move(moved);
  }
  // Non-blocking on our side only: the flag belongs to the open file description, and the
  // child's stdout must stay blocking.
  const int flags = ::fcntl(ends[0].get(), F_GETFL);
  if (flags < 0 || ::fcntl(ends[0].get(), F_SETFL, flags | O_NONBLOCK) != 0) return false;
  read_end = std::move(ends[0]);
  write_end = std::move(ends[1]);
  return true;
}

// One captured stream: the first `limit` bytes kept, the rest read and dropped.
struct Capture {
  Fd fd;
  std::string* text = nullptr;
  bool* truncated = nullptr;
  std::size_t limit = kMaxCommandOutput;

  // Reads once: the bytes read, 0 when nothing is there now, -1 once the stream is finished
  // (EOF or an error; the fd is closed then).
  ssize_t read_once() {
    char chunk[kReadChunk];
    for (;;) {
      const ssize_t n = ::read(fd.get(), chunk, sizeof chunk);
      if (n > 0) {
        const std::size_t room = limit - std::min(limit, text->size());
        const auto got = static_cast<std::size_t>(n);
        text->append(chunk, std::min(room, got));
        if (got > room) *truncated = true;
        return n;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
      fd.reset();
      return -1;
    }
  }
};

// True once `pid` has exited, without reaping it: until waitpid() the pid, and so the process
// group id the timeout signals, cannot be reused by an unrelated process.
bool has_exited(pid_t pid) {
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      return info.si_pid == pid;
    }
    if (errno != EINTR) return true;  // ECHILD: nothing left to wait for
  }
}

// Without a pidfd the child's exit is noticed only by polling waitpid between slices.
enum class ExitNotice { pidfd, polling };

int poll_timeout_ms(SteadyClock::time_point now, SteadyClock::time_point deadline,
                    ExitNotice exit_notice) {
  int ms = -1;
  if (deadline != SteadyClock::time_point::max()) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    ms = static_cast<int>(std::clamp<long long>(left, 0, INT_MAX));
  }
  if (exit_notice == ExitNotice::polling) ms = ms < 0 ? kPollSliceMs : std::min(ms, kPollSliceMs);
  return ms;
}

// The first non-empty line of `text`, trimmed, control and non-ASCII bytes escaped as \xNN,
// cut at kMaxDescribedLine bytes: the program's message, safe for one log line.
std::string first_line(std::string_view text) {
  std::size_t begin = 0;
  for (;;) {
    if (begin >= text.size()) return {};
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(begin, end - begin);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty()) {
      std::string out;
      for (const char c : line) {
        if (out.size() >= kMaxDescribedLine) {
          out += "...";
          break;
        }
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f) {
          out += c;
        } else {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 0x0f];
        }
      }
      return out;
    }
    begin = end + 1;
  }
}

}  // namespace

bool CommandResult::ok() const {
  return error.empty() && !timed_out && signal == 0 && exit_code == 0;
}

std::string CommandResult::describe() const {
  if (!error.empty()) return error;
  if (timed_out) return "timed out after " + format_duration(timeout);
  if (signal != 0) {
    std::string s = "killed by signal " + std::to_string(signal);
    if (const char* name = ::sigabbrev_np(signal)) s += std::string(" (SIG") + name + ")";
    return s;
  }
  std::string s = "exit " + std::to_string(exit_code);
  if (exit_code != 0) {
    std::string line = first_line(err);
    if (line.empty()) line = first_line(out);
    if (!line.empty()) s += ": " + line;
  }
  return s;
}

CommandResult run_command(const std::vector<std::string>& argv, Duration timeout,
                          std::size_t max_output) {
  if (argv.empty()) return refused(timeout, "cannot run an empty command");
  const std::string& program = argv[0];
  if (program.empty() || program.front() != '/') {
    // No PATH search: which binary runs as root must not depend on the environment.
    return refused(timeout, "cannot run \"" + first_line(program) +
                                "\": not an absolute path (no PATH search)");
  }
  for (std::size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos) {
      return refused(timeout, "cannot run " + first_line(program) + ": argument " +
                                  std::to_string(i) + " holds a NUL byte");
    }
  }

  CommandResult r;
  r.timeout = timeout;
  Capture out{Fd(), &r.out, &r.out_truncated, max_output};
  Capture err{Fd(), &r.err, &r.err_truncated, max_output};
  Fd out_write;
  Fd err_write;
  if (!make_pipe(out.fd, out_write) || !make_pipe(err.fd, err_write)) {
    return refused(timeout, "cannot run " + program + ": pipe: " + errno_text(errno));
  }

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, out_write.get(), STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&actions, err_write.get(), STDERR_FILENO);
  // Every fd of ours is O_CLOEXEC, but a library may have opened one without it; closing all
  // above stderr in the child makes "no inherited fd" a fact rather than a hope.
  ::posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  // Its own process group: the timeout signals the group, so a shell's children die too.
  // Default dispositions and an empty mask: our thread blocks every signal (see CommandRunner)
  // and ignored signals would otherwise survive the exec.
  sigset_t none;
  sigset_t all;
  ::sigemptyset(&none);
  ::sigfillset(&all);
  ::posix_spawnattr_setflags(
      &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string env_path = kCommandPath;
  std::string env_lc_all = "LC_ALL=C";
  std::string env_lang = "LANG=C";
  char* env[] = {env_path.data(), env_lc_all.data(), env_lang.data(), nullptr};

  pid_t pid = -1;
  // glibc's posix_spawn reports exec failures (ENOENT, EACCES) as its return value and reaps the
  // failed child itself.
  const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, &attr, args.data(), env);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  out_write.reset();
  err_write.reset();
  if (spawned != 0) return refused(timeout, "cannot run " + program + ": " + errno_text(spawned));

  Fd pidfd;
#ifdef SYS_pidfd_open
  pidfd = Fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
#endif

  enum class Phase { running, terminating, killing };
  Phase phase = Phase::running;
  auto deadline = SteadyClock::now() + timeout;
  while (!has_exited(pid)) {
    const auto now = SteadyClock::now();
    if (now >= deadline) {
      if (phase == Phase::running) {
        r.timed_out = true;
        ::kill(-pid, SIGTERM);
        phase = Phase::terminating;
        deadline = now + kTermGrace;
      } else if (phase == Phase::terminating) {
        ::kill(-pid, SIGKILL);
        phase = Phase::killing;
        deadline = SteadyClock::time_point::max();
      }
      continue;
    }
    pollfd fds[3];
    nfds_t n = 0;
    Capture* owner[3] = {nullptr, nullptr, nullptr};
    for (Capture* c : {&out, &err}) {
      if (!c->fd.valid()) continue;
      owner[n] = c;
      fds[n++] = pollfd{c->fd.get(), POLLIN, 0};
    }
    if (pidfd.valid()) fds[n++] = pollfd{pidfd.get(), POLLIN, 0};
    const int ready = ::poll(
        fds, n,
        poll_timeout_ms(now, deadline, pidfd.valid() ? ExitNotice::pidfd : ExitNotice::polling));
    if (ready < 0 && errno != EINTR) {
      // Cannot happen with valid fds; do not spin. The timeout still applies.
      ::poll(nullptr, 0, kPollSliceMs);
      continue;
    }
    for (nfds_t i = 0; ready > 0 && i < n; ++i) {
      if (owner[i] != nullptr && fds[i].revents != 0) owner[i]->read_once();
    }
  }

  // It exited: keep what it wrote before exiting, then make sure nothing it started lives on.
  for (Capture* c : {&out, &err}) {
    for (int i = 0; i < kMaxFinalReads && c->fd.valid(); ++i) {
      if (c->read_once() <= 0) break;
    }
    c->fd.reset();
  }
  ::kill(-pid, SIGKILL);

  int status = 0;
  pid_t waited = -1;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  if (waited != pid) {
    // ECHILD: someone set SIGCHLD to SIG_IGN (children are then reaped by the kernel and their
    // status is lost). Never report a success that was not seen.
    r.error = "cannot learn how " + program + " ended: waitpid: " + errno_text(errno);
  } else if (WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
  }
  return r;
}

struct CommandRunner::State {
  struct Job {
    std::vector<std::string> argv;
    Duration timeout;
    std::function<void(CommandResult)> done;
    std::size_t max_output = kMaxCommandOutput;
  };

  std::mutex mu;
  std::condition_variable wake;
  std::deque<Job> queue;  // guarded by mu
  bool stopping = false;  // guarded by mu
  // Read and written on the loop thread only (stop() and the posted handlers); atomic so the
  // worker may look at it too without a race.
  std::atomic<bool> alive{true};
  std::atomic<std::size_t> undelivered{0};
};

namespace {

void work(const std::shared_ptr<CommandRunner::State>& state, boost::asio::io_context& io) {
  for (;;) {
    CommandRunner::State::Job job;
    {
      std::unique_lock lock(state->mu);
      state->wake.wait(lock, [&] { return state->stopping || !state->queue.empty(); });
      if (state->stopping) return;
      job = std::move(state->queue.front());
      state->queue.pop_front();
    }
    CommandResult result = run_command(job.argv, job.timeout, job.max_output);
    boost::asio::post(io,
                      [state, done = std::move(job.done), result = std::move(result)]() mutable {
                        // stop() ran on this thread before us: the caller no longer expects
                        // anything.
                        if (!state->alive) return;
                        state->undelivered.fetch_sub(1);
                        if (done) done(std::move(result));
                      });
  }
}

}  // namespace

CommandRunner::CommandRunner(boost::asio::io_context& io)
    : io_(io), state_(std::make_shared<State>()) {
  // The worker blocks every signal: process-directed ones (SIGTERM, SIGHUP, SIGCHLD) go to the
  // loop thread, where the daemon handles them, and never interrupt a command in progress.
  sigset_t all;
  sigset_t old;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    worker_ = std::thread([state = state_, &io = io_] { work(state, io); });
  } catch (...) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;  // startup only: a process that cannot start a thread cannot run
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

CommandRunner::~CommandRunner() { stop(); }

void CommandRunner::run(std::vector<std::string> argv, Duration timeout,
                        std::function<void(CommandResult)> done, std::size_t max_output) {
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;  // `done` is dropped with this frame, never called
    state_->queue.push_back(State::Job{std::move(argv), timeout, std::move(done), max_output});
    state_->undelivered.fetch_add(1);
  }
  state_->wake.notify_one();
}

std::size_t CommandRunner::pending() const { return state_->undelivered.load(); }

void CommandRunner::stop() {
  std::deque<State::Job> dropped;
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    dropped.swap(state_->queue);
    state_->alive = false;
    state_->undelivered = 0;
  }
  state_->wake.notify_all();
  if (worker_.joinable()) worker_.join();
  // `dropped` (and whatever its callbacks hold) is destroyed here, outside the lock.
}

}  // namespace vigil::sys
