// A child process for integration tests: real fork/execve, stderr captured line by line.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace vigil::testing {

class Child {
 public:
  // Starts argv[0] with argv and the current environment plus `extra_env` ("K=V").
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  int pid() const { return pid_; }
  void signal(int signo) const;
  // Waits until a stderr line contains `needle`; returns it, or nullopt after `deadline`.
  std::optional<std::string> wait_for_line(const std::string& needle,
                                           std::chrono::milliseconds deadline);
  // Every stderr line read so far.
  const std::vector<std::string>& lines() const { return lines_; }
  // Waits for exit; returns the exit status, or nullopt after `deadline` (then kills it).
  std::optional<int> wait_exit(std::chrono::milliseconds deadline);

 private:
  bool read_some(std::chrono::milliseconds wait);

  int pid_ = -1;
  int err_fd_ = -1;
  std::string partial_;
  std::vector<std::string> lines_;
  std::size_t scanned_ = 0;
  bool exited_ = false;
};

// Runs a command to completion; returns {exit status, stdout+stderr}.
std::pair<int, std::string> run_command(const std::vector<std::string>& argv);

}  // namespace vigil::testing
