// vigil's entry point: only main. Everything else lives in libraries.
#include <exception>
#include <iostream>

#include "agent/cli.h"

int main(int argc, char** argv) {
  try {
    return vigil::run_cli(argc, argv);
  } catch (const std::exception& e) {
    // Last resort: exit non-zero so systemd's Restart=on-failure brings us back.
    std::cerr << "vigil: fatal: " << e.what() << "\n";
    return 2;
  } catch (...) {
    std::cerr << "vigil: fatal: unknown exception\n";
    return 2;
  }
}
