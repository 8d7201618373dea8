// The `vigil` command line: usage, arguments, dispatch, and the commands that work on this host
// without the agent (run, check-config, test-check, replay, switch-release). The commands that ask
// the running agent are in cli_remote.cpp.
#include "agent/cli.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <string>
#include <unordered_map>
#include <vector>

#include "actions/rollback.h"
#include "agent/cli_commands.h"
#include "agent/config/config.h"
#include "agent/core/terminal.h"
#include "agent/daemon.h"
#include "agent/detect/classifier.h"
#include "agent/detect/string_index.h"
#include "agent/incidents/report.h"
#include "agent/load_config.h"
#include "agent/sys/http.h"
#include "agent/sys/journal.h"
#include "agent/sys/log.h"
#include "probes/journal.h"
#include "probes/register.h"

namespace vigil {
namespace {

using cli::Args;
using cli::usage_error;

constexpr const char* kUsage = R"(vigil - host-side monitoring agent with guarded auto-mitigation

Usage:
  vigil run [--config FILE] [--dry-run] [--verbose]
  vigil check-config [FILE]
  vigil test-check NAME [--config FILE]
  vigil replay [--directory DIR | --file FILE...] [--since TIME] [CHECK...] [--config FILE]
  vigil status [--json]
  vigil incidents [--open] [--since DURATION] [--json]
  vigil incident show ID [--json]
  vigil postmortem ID
  vigil maintain --for DURATION [--reason TEXT] [CHECK...]
  vigil ack ID
  vigil switch-release DIR RELEASE
  vigil --version
  vigil --help

Commands:
  run            Run the agent in the foreground (systemd runs it as vigil.service).
                 SIGHUP reloads the config; an invalid new config is refused and the
                 running one is kept. SIGTERM/SIGINT stop cleanly.
  check-config   Validate a config file. Prints every error as FILE:LINE:COL: message
                 and exits 1, or one summary line per check and exits 0.
  test-check     Run one check once, now (with its confirmation re-probes), and print
                 the observation and the finding it would give. No actions are taken.
                 Exit 0 healthy, 1 failing, 2 error.

  replay         Run the journal checks over existing entries without acting, and print
                 per check the matches per captured key and the findings they would give
                 (vigil's counterpart of fail2ban-regex, for tuning rules on history).
                 --since takes a duration back from now ("24h") or "YYYY-MM-DD HH:MM:SS";
                 default: the whole journal.

  status         The running agent: its checks and their states, open incidents with
                 their severity and age, maintenance windows (like `systemctl status`).
                 Exit 0: running, no incident open; 1: incidents open; 3: not running;
                 2: any other error (permission denied, no answer).
  incidents      Incidents, newest last; --open only open ones, --since 24h only those
                 detected within the last 24 hours (and every one still open).
  incident show  One incident: severity, state, members, evidence and its timeline.
  postmortem     A Markdown draft of a blameless postmortem of one incident, from its
                 timeline: summary, impact, detection, timeline, mitigations, MTTD/MTTR,
                 and empty root-cause and action-item sections for humans to fill.
  maintain       A maintenance window for the given checks (default: all): vigil keeps
                 observing and recording, but pages nobody and runs no mitigation. It
                 ends by itself.
  ack            Acknowledge an open incident (recorded in its timeline).
  switch-release Point DIR/current at DIR/releases/RELEASE atomically, as a rollback does
                 (symlink to a temporary name, rename over current): readers see the old
                 release or the new one, never none. For rolling forward by hand. The agent
                 runs it as DIR's owner when root does not own DIR.

  The commands above ask the running agent over its control socket (root or members
  of the 'vigil' group). incidents, incident show and postmortem also work while the
  agent is stopped, from the timelines in the state directory (as root).

Options:
  --config FILE  Config file (default /etc/vigil/vigil.toml).
  --socket PATH  Control socket (default: agent.control_socket, /run/vigil/control.sock).
  --json         Machine-readable output.
  --dry-run      Observe and record, never act (overrides the file's agent.dry_run).
  --verbose      Also log every observation (debug level).

Examples:
  vigil check-config /etc/vigil/vigil.toml
  vigil test-check app
  vigil run --config ./etc/vigil.toml --dry-run
  vigil replay --since 24h ssh-bruteforce
)";

// Returns an error message, or empty on success.
std::string parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--config" || arg == "-c") {
      if (i + 1 >= argc) return "option " + arg + " needs a file";
      a.config = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      a.config = arg.substr(9);
    } else if (arg == "--directory" || arg == "-D") {
      if (i + 1 >= argc) return "option " + arg + " needs a directory";
      a.directory = argv[++i];
    } else if (arg == "--file") {
      if (i + 1 >= argc) return "option " + arg + " needs a file";
      a.files.push_back(argv[++i]);
    } else if (arg == "--since") {
      if (i + 1 >= argc) return "option " + arg + " needs a time";
      a.since = argv[++i];
    } else if (arg == "--socket") {
      if (i + 1 >= argc) return "option " + arg + " needs a path";
      a.socket = argv[++i];
    } else if (arg == "--for") {
      if (i + 1 >= argc) return "option " + arg + " needs a duration";
      a.for_ = argv[++i];
    } else if (arg == "--reason") {
      if (i + 1 >= argc) return "option " + arg + " needs a text";
      a.reason = argv[++i];
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "--open") {
      a.open_only = true;
    } else if (arg == "--dry-run") {
      a.dry_run = true;
    } else if (arg == "--verbose" || arg == "-v") {
      a.verbose = true;
    } else if (arg == "--") {  // the rest is positional, even what starts with '-'
      for (++i; i < argc; ++i) {
        if (a.command.empty()) {
          a.command = argv[i];
        } else {
          a.positional.push_back(argv[i]);
        }
      }
    } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
      return "unknown option '" + arg + "'";
    } else if (a.command.empty()) {
      a.command = arg;
    } else {
      a.positional.push_back(arg);
    }
  }
  return {};
}

bool print_errors(const LoadResult& loaded) {
  for (const ConfigError& e : loaded.errors) std::cerr << e.to_string() << "\n";
  return !loaded.errors.empty();
}

int cmd_check_config(const Args& a) {
  if (a.positional.size() > 1) return usage_error("check-config takes at most one FILE");
  const std::string path = a.positional.empty() ? a.config : a.positional[0];
  LoadResult loaded = load_config_file(path);
  if (print_errors(loaded)) {
    std::cerr << path << ": " << loaded.errors.size() << " error(s); config refused\n";
    return 1;
  }
  for (const CheckConfig& c : loaded.config->checks) std::cout << describe_check(c) << "\n";
  std::cout << path << ": OK, " << loaded.config->checks.size() << " check(s)"
            << (loaded.config->agent.dry_run == DryRun::yes ? ", dry-run" : "") << "\n";
  return 0;
}

int cmd_run(const Args& a) {
  if (!a.positional.empty()) return usage_error("run takes no arguments besides options");
  sys::init_logging(a.verbose ? sys::Verbosity::debug : sys::Verbosity::normal);
  LoadResult loaded = load_config_file(a.config);
  if (!loaded.config) {
    for (const ConfigError& e : loaded.errors) sys::log_error(e.to_string());
    sys::log_error("config " + a.config + " refused with " + std::to_string(loaded.errors.size()) +
                   " error(s); not starting");
    return 1;
  }
  boost::asio::io_context io(1);
  Daemon daemon(io, DaemonOptions{a.config, a.dry_run ? DryRun::yes : DryRun::no},
                std::move(*loaded.config));
  daemon.start();
  io.run();
  sys::log_info("stopped");
  return 0;
}

int cmd_test_check(const Args& a) {
  if (a.positional.size() != 1) return usage_error("test-check needs exactly one check NAME");
  LoadResult loaded = load_config_file(a.config);
  if (print_errors(loaded)) return 2;
  const CheckConfig* check = loaded.config->find_check(a.positional[0]);
  if (check == nullptr) {
    std::cerr << "vigil: no check named '" << a.positional[0] << "' in " << a.config << "\n";
    return 2;
  }
  boost::asio::io_context io(1);
  sys::HttpClient http(io);
  sys::UnitWatcher units(io);
  std::shared_ptr<Probe> probe =
      make_probe(ProbeContext{io, http, units, loaded.config->agent.state_dir}, *check);
  if (!probe) {
    std::cerr << "vigil: check '" << check->name << "' has no runnable probe\n";
    return 2;
  }
  std::optional<Observation> result;
  probe->run([&](Observation obs) {
    result = std::move(obs);
    io.stop();  // event-driven probes keep watches open; one answer is all we need
  });
  // A bound for probes that wait on something that never answers (a bus that is down).
  boost::asio::steady_timer deadline(io, std::chrono::seconds(30));
  deadline.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) io.stop();
  });
  io.run();
  if (!result) {
    std::cerr << "vigil: the probe finished without an observation\n";
    return 2;
  }
  std::cout << format_observation(*result);
  const std::optional<Severity> sev = rate(*check, *result);
  if (sev) {
    std::cout << "finding:  " << to_string(*sev) << " firing";
    if (check->fail_after > 1) {
      std::cout << " (once " << check->fail_after << " runs in a row look like this)";
    }
    std::cout << "\n";
    return 1;
  }
  std::cout << "finding:  none (healthy)\n";
  return 0;
}

// The process's private memory: heap and stacks, without the journal files sd-journal maps
// (those pages belong to the page cache and are shared).
long private_memory_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::atol(line.c_str() + 8);
  }
  return 0;
}

std::optional<TimePoint> parse_since(const std::string& text) {
  if (Result<Duration> d = parse_duration(text)) return Clock::now() - *d;
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (end == nullptr || *end != '\0') {
    end = strptime(text.c_str(), "%Y-%m-%d", &tm);
    if (end == nullptr || *end != '\0') return std::nullopt;
  }
  tm.tm_isdst = -1;
  return Clock::from_time_t(std::mktime(&tm));
}

int cmd_replay(const Args& a) {
  LoadResult loaded = load_config_file(a.config);
  if (print_errors(loaded)) return 2;
  std::vector<const CheckConfig*> checks;
  for (const CheckConfig& c : loaded.config->checks) {
    const bool named = a.positional.empty() || std::find(a.positional.begin(), a.positional.end(),
                                                         c.name) != a.positional.end();
    if (c.journal() != nullptr && named) checks.push_back(&c);
  }
  for (const std::string& name : a.positional) {
    const CheckConfig* c = loaded.config->find_check(name);
    if (c == nullptr || c->journal() == nullptr) {
      std::cerr << "vigil: no journal check named '" << name << "' in " << a.config << "\n";
      return 2;
    }
  }
  if (checks.empty()) {
    std::cerr << "vigil: " << a.config << " has no journal checks to replay\n";
    return 2;
  }
  std::optional<TimePoint> since;
  if (!a.since.empty()) {
    since = parse_since(a.since);
    if (!since)
      return usage_error("--since: expected a duration (\"24h\") or a date, not \"" + a.since +
                         "\"");
  }
  const sys::JournalSource source{a.directory, a.files};
  int status = 0;
  for (const CheckConfig* c : checks) {
    const JournalSettings& j = *c->journal();
    auto journal = sys::Journal::open(source, journal_filter(j));
    if (!journal) {
      std::cerr << "vigil: " << c->name << ": " << journal.error().message << "\n";
      status = 2;
      continue;
    }
    if (since) {
      (*journal)->seek_realtime(*since);
    } else {
      (*journal)->seek_head();
    }
    JournalScanner scanner(j);
    // Matches per key: looked up once per matching line, so a flat index rather than a node map.
    std::vector<std::pair<std::string, int>> matches;
    StringIndex by_key;
    std::vector<std::uint32_t> match_of_id;  // the scanner window's record id -> matches
    std::unordered_map<std::string, TimePoint> fired;
    std::uint64_t read = 0, rejected = 0;
    std::string first_rejection;
    const auto t0 = std::chrono::steady_clock::now();
    while (true) {
      const std::size_t n = (*journal)->read(100'000, [&](const sys::JournalEntry& e) {
        const JournalScanner::Result r = scanner.scan(e.message, [&e] { return e.at(); });
        if (!r.rejected.empty()) {
          if (rejected++ == 0) first_rejection = r.rejected;
          return;
        }
        if (!r.matched) return;
        // The key is looked up by name only when the scanner's window has a new record for it.
        if (r.new_key) {
          const std::uint32_t h = StringIndex::hash(r.key);
          std::uint32_t at = by_key.find(
              r.key, h, [&](std::uint32_t i) { return std::string_view(matches[i].first); });
          if (at == StringIndex::npos) {
            at = static_cast<std::uint32_t>(matches.size());
            matches.emplace_back(r.key, 0);
            by_key.insert(h, at);
          }
          if (r.key_id >= match_of_id.size()) match_of_id.resize(r.key_id + 1);
          match_of_id[r.key_id] = at;
        }
        ++matches[match_of_id[r.key_id]].second;
        if (r.crossed) fired.emplace(r.key, e.at());
      });
      read += n;
      if (n < 100'000) break;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::uint64_t total = 0;
    for (const auto& [k, n] : matches) total += static_cast<std::uint64_t>(n);
    std::cout << "check " << c->name << ": " << read << " entries read, " << total << " matched, "
              << matches.size() << " key(s); rule: " << j.count << " within "
              << format_duration(j.window) << "\n";
    std::vector<std::pair<int, std::string>> top;
    for (const auto& [k, n] : matches) top.emplace_back(n, k);
    std::sort(top.begin(), top.end(), [](const auto& x, const auto& y) {
      return x.first != y.first ? x.first > y.first : x.second < y.second;
    });
    constexpr std::size_t kShow = 20;
    std::cout << "  matches per key (top " << std::min(kShow, top.size()) << "):\n";
    for (std::size_t i = 0; i < top.size() && i < kShow; ++i) {
      const std::string& k = top[i].second;
      std::cout << "    " << (k.empty() ? "(whole check)" : visible(k)) << "  " << top[i].first;
      if (auto f = fired.find(k); f != fired.end()) {
        const std::time_t t = Clock::to_time_t(f->second);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
        std::cout << "  -> " << to_string(c->severity.for_failure(FailureKind::journal_match))
                  << " finding at " << buf;
      }
      std::cout << "\n";
    }
    std::cout << "  would fire for " << fired.size() << " key(s)\n";
    if (rejected > 0) {
      std::cout << "  " << rejected
                << " match(es) ignored, key not an IP address (first: " << visible(first_rejection)
                << ")\n";
    }
    std::cerr << c->name << ": " << read << " entries in " << secs << " s = "
              << static_cast<std::uint64_t>(secs > 0 ? static_cast<double>(read) / secs : 0)
              << " entries/s (" << scanner.prefiltered()
              << " skipped by the literal prefilter); private memory (RssAnon) "
              << private_memory_kib() / 1024 << " MiB\n";
  }
  return status;
}

int cmd_switch_release(const Args& a) {
  if (a.positional.size() != 2) return usage_error("usage: vigil switch-release DIR RELEASE");
  const std::string& dir = a.positional[0];
  Result<ReleaseSwitch> s = switch_release(dir, a.positional[1]);
  if (!s) {
    std::cerr << "vigil: switch-release " << visible(dir) << ": " << visible(s.error().message)
              << "\n";
    return 1;
  }
  std::cout << "switched " << visible(dir) << "/current: " << visible(s->from) << " -> "
            << visible(s->to) << "\n";
  if (!s->warning.empty()) std::cerr << "vigil: warning: " << visible(s->warning) << "\n";
  return 0;
}

}  // namespace

int cli::usage_error(const std::string& message) {
  std::cerr << "vigil: " << message << "\nTry 'vigil --help'.\n";
  return 2;
}

int run_cli(int argc, char** argv) {
  Args a;
  if (std::string err = parse_args(argc, argv, a); !err.empty()) {
    // --help / --version are recognised before other options complain.
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::cout << kUsage;
        return 0;
      }
      if (arg == "--version" || arg == "-V") {
        std::cout << "vigil " VIGIL_VERSION "\n";
        return 0;
      }
    }
    return usage_error(err);
  }
  if (a.command.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  if (a.command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (a.command == "version") {
    std::cout << "vigil " VIGIL_VERSION "\n";
    return 0;
  }
  if (a.command == "run") return cmd_run(a);
  if (a.command == "check-config") return cmd_check_config(a);
  if (a.command == "test-check") return cmd_test_check(a);
  if (a.command == "replay") return cmd_replay(a);
  if (a.command == "status") return cli::cmd_status(a);
  if (a.command == "incidents") return cli::cmd_incidents(a);
  if (a.command == "incident") return cli::cmd_incident_show(a);
  if (a.command == "postmortem") return cli::cmd_postmortem(a);
  if (a.command == "maintain") return cli::cmd_maintain(a);
  if (a.command == "ack") return cli::cmd_ack(a);
  if (a.command == "switch-release") return cmd_switch_release(a);
  return usage_error("unknown command '" + a.command + "'");
}

}  // namespace vigil