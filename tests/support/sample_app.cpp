// vigil-sample-app: the small web service the demo breaks and the benchmark probes.
// Usage: vigil-sample-app [--address IP] [--port N] [--mode ok|fail|slow] [--slow-ms N]
// Switch its /health behaviour at run time with: curl http://127.0.0.1:PORT/_mode/fail
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "tests/support/http_server.h"

int main(int argc, char** argv) {
  std::uint16_t port = 8080;
  std::string address = "127.0.0.1";
  vigil::testing::Mode mode = vigil::testing::Mode::ok;
  int slow_ms = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--address" && i + 1 < argc) {
      address = argv[++i];
    } else if (a == "--port" && i + 1 < argc) {
      port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
    } else if (a == "--slow-ms" && i + 1 < argc) {
      slow_ms = std::atoi(argv[++i]);
    } else if (a == "--mode" && i + 1 < argc) {
      const std::string m = argv[++i];
      if (m == "fail")
        mode = vigil::testing::Mode::fail;
      else if (m == "slow")
        mode = vigil::testing::Mode::slow;
    } else {
      std::cerr << "usage: vigil-sample-app [--address IP] [--port N] [--mode ok|fail|slow] "
                   "[--slow-ms N]\n";
      return 2;
    }
  }
  try {
    vigil::testing::HttpServer server(port, address);
    server.set_mode(mode);
    server.set_slow_ms(slow_ms);
    server.set_log_errors(true);
    std::cerr << "vigil-sample-app listening on http://" << address << ":" << server.port()
              << "/health\n";
    server.run_until_signal();
  } catch (const std::exception& e) {
    std::cerr << "vigil-sample-app: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
