// A small, real HTTP/1.1 server on 127.0.0.1 for tests, the demo and the benchmark.
// It runs on its own Asio loop (in a thread of its own when embedded in a test) and can misbehave
// on demand: 503s, slow answers, reset connections, garbage status lines.
//
// Paths:
//   /health      answers per the current mode (see Mode)
//   /200 /503    that status, always
//   /slow?ms=N   200 after N milliseconds
//   /reset       closes the connection with an RST before answering
//   /garbage     answers with a line that is not an HTTP status line
//   /body        200 with the body "status: green"
//   /_stats      "requests N": requests served so far (for the benchmark)
//   /_mode/NAME  switches the /health mode (ok, fail, slow, reset, garbage); answers 200
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace vigil::testing {

enum class Mode { ok, fail, slow, reset, garbage };

// A port on 127.0.0.1 that nothing listens on: bound, then closed.
int free_port();

class HttpServer {
 public:
  // Binds address:port (0 = any free port); loopback unless told otherwise. Throws on failure.
  explicit HttpServer(std::uint16_t port = 0, const std::string& address = "127.0.0.1");
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  std::uint16_t port() const;
  std::string url(const std::string& path) const;
  void set_mode(Mode m);
  Mode mode() const;
  // How long "slow" mode waits before answering.
  void set_slow_ms(int ms);
  // Also write "ERROR connection pool exhausted (max=20)" to stderr on each failing /health.
  void set_log_errors(bool on);
  std::uint64_t requests() const;

  // Serves on a background thread until the destructor runs.
  void start_thread();
  // Serves on the calling thread until SIGINT/SIGTERM.
  void run_until_signal();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
};

}  // namespace vigil::testing
