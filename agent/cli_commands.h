// The `vigil` subcommands, shared by cli.cpp (usage, arguments, dispatch, and the commands that
// work on this host without the agent) and cli_remote.cpp (the commands that ask the running
// agent over its control socket). Internal to the command line: agent/cli.h is its API.
#pragma once

#include <string>
#include <vector>

#include "agent/config/config.h"

namespace vigil::cli {

struct Args {
  std::string command;
  std::string config = kDefaultConfigPath;
  bool dry_run = false;
  bool verbose = false;
  std::string directory;           // replay: a journal directory
  std::vector<std::string> files;  // replay: journal files
  std::string since;               // replay: where to start; incidents: how far back
  std::string socket;              // control socket override
  std::string for_;                // maintain: how long
  std::string reason;              // maintain: why
  bool json = false;
  bool open_only = false;
  std::vector<std::string> positional;
};

// Prints "vigil: MESSAGE" and the hint to --help on stderr; returns 2 (a usage error).
int usage_error(const std::string& message);

// The commands of cli_remote.cpp; each returns the process's exit code.
int cmd_status(const Args& a);
int cmd_incidents(const Args& a);
int cmd_incident_show(const Args& a);
int cmd_postmortem(const Args& a);
int cmd_maintain(const Args& a);
int cmd_ack(const Args& a);

}  // namespace vigil::cli
