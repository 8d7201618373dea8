// The `vigil` command line: run, check-config, test-check, --version, --help.
#pragma once

namespace vigil {

// Exit codes: 0 success; 1 a check failed / the config is invalid; 2 usage or runtime error.
int run_cli(int argc, char** argv);

}  // namespace vigil
