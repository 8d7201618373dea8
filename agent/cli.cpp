#include "agent/cli.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "actions/rollback.h"
#include "agent/config/config.h"
#include "agent/control.h"
#include "agent/core/terminal.h"
#include "agent/daemon.h"
#include "agent/detect/classifier.h"
#include "agent/detect/string_index.h"
#include "agent/incidents/incident.h"
#include "agent/incidents/incident_index.h"
#include "agent/incidents/postmortem.h"
#include "agent/incidents/report.h"
#include "agent/incidents/timeline.h"
#include "agent/sys/http.h"
#include "agent/sys/journal.h"
#include "agent/sys/log.h"
#include "probes/journal.h"
#include "probes/register.h"

namespace vigil {
namespace {

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

int usage_error(const std::string& message) {
  std::cerr << "vigil: " << message << "\nTry 'vigil --help'.\n";
  return 2;
}

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

// Where the agent answers, and where its state lives: from --socket, else the config file
// (when readable), else the defaults.
struct Endpoints {
  std::string socket = "/run/vigil/control.sock";
  std::string state_dir = "/var/lib/vigil";
};

Endpoints endpoints(const Args& a) {
  Endpoints e;
  LoadResult loaded = load_config_file(a.config);
  if (loaded.config) {
    e.socket = loaded.config->agent.control_socket;
    e.state_dir = loaded.config->agent.state_dir;
  }
  if (!a.socket.empty()) e.socket = a.socket;
  return e;
}

std::string age(std::string_view since_text, TimePoint now) {
  const std::optional<TimePoint> since = parse_time(since_text);
  if (!since) return "?";
  return format_duration(std::chrono::duration_cast<Duration>(
      std::chrono::duration_cast<std::chrono::seconds>(now - *since)));
}

// A string field of the agent's answer, made safe for the terminal: titles, summaries, keys
// and reasons carry text from the journal and the network (issue 13).
std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? visible(j[key].get<std::string>()) : std::string();
}

// JSON for a terminal or a pipe: ASCII only (\uXXXX escapes), and never an exception on bytes
// that are not UTF-8 (they become U+FFFD).
std::string json_out(const nlohmann::json& j) {
  return j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace);
}

// Left-aligned column.
std::string col(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

int cmd_status(const Args& a) {
  auto reply = control_request(endpoints(a).socket, {{"cmd", "status"}});
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    // 3 like systemctl status' "not running"; anything else (permission, timeout) is 2.
    return reply.error().message.find("not running") != std::string::npos ? 3 : 2;
  }
  if (!reply->value("ok", false) || !(*reply)["checks"].is_array() ||
      !(*reply)["incidents"].is_array() || !(*reply)["maintenance"].is_array()) {
    std::cerr << "vigil: unexpected answer from the agent: " << str(*reply, "error") << "\n";
    return 2;
  }
  const nlohmann::json& r = *reply;
  if (a.json) {
    std::cout << json_out(r) << "\n";
    return r["incidents"].empty() ? 0 : 1;
  }
  const TimePoint now = parse_time(str(r, "now")).value_or(Clock::now());
  const auto& incidents = r["incidents"];
  std::cout << (incidents.empty() ? "● " : "× ") << "vigil " << str(r, "version") << " on "
            << str(r, "host") << (r.value("dry_run", false) ? " (dry-run)" : "") << "\n";
  std::cout << "     Config: " << str(r, "config") << "\n";
  std::cout << "    Running: since " << str(r, "started") << " (" << age(str(r, "started"), now)
            << ")\n";
  std::cout << "  Incidents: " << incidents.size() << " open\n";
  for (const auto& m : r["maintenance"]) {
    std::string which;
    for (const auto& c : m["checks"]) {
      which += (which.empty() ? "" : ", ") + visible(c.is_string() ? c.get<std::string>() : "");
    }
    std::cout << "Maintenance: " << (which.empty() ? "all checks" : which) << " until "
              << str(m, "until") << (str(m, "reason").empty() ? "" : " (" + str(m, "reason") + ")")
              << "\n";
  }
  if (r.contains("blocks")) {
    for (const auto& b : r["blocks"]) {
      std::cout << "Blocked: " << str(b, "ip") << " until " << str(b, "until") << " (incident "
                << str(b, "incident") << ")\n";
    }
  }
  if (r.contains("protection_warnings") && r["protection_warnings"].is_array()) {
    for (const auto& w : r["protection_warnings"]) {
      std::cout << "Blocks held: " << visible(w.is_string() ? w.get<std::string>() : "")
                << " (vigil cannot tell who must never be blocked)\n";
    }
  }
  if (r.contains("circuits")) {
    for (const auto& c : r["circuits"]) {
      std::cout << "Circuit open: " << str(c, "key") << " since " << str(c, "opened") << ": "
                << str(c, "reason") << " (no automatic action; `vigil ack` closes it)\n";
    }
  }
  if (r.contains("paging") && r["paging"].is_object()) {
    const auto& p = r["paging"];
    if (p.value("queued", 0) > 0 || p.value("dropped_total", 0) > 0 ||
        p.value("failed_total", 0) > 0) {
      std::cout << "Pages: " << p.value("queued", 0) << " queued";
      if (p.contains("oldest")) std::cout << " (oldest " << str(p, "oldest") << ")";
      std::cout << ", " << p.value("delivered_total", 0) << " delivered, "
                << p.value("failed_total", 0) << " refused, " << p.value("dropped_total", 0)
                << " dropped since start\n";
    }
  }
  std::cout << "\nCHECK" << std::string(20, ' ') << "PROBE    STATE     SEV   LAST\n";
  for (const auto& c : r["checks"]) {
    std::string state = str(c, "state");
    if (c.value("maintenance", false)) state += "*";
    std::cout << col(str(c, "name"), 25) << col(str(c, "probe"), 9) << col(state, 10)
              << col(str(c, "severity").empty() ? "-" : str(c, "severity"), 6) << str(c, "summary")
              << "\n";
  }
  if (!incidents.empty()) {
    std::cout << "\nINCIDENT" << std::string(30, ' ') << "SEV   STATE       AGE      TITLE\n";
    for (const auto& i : incidents) {
      std::cout << col(str(i, "id"), 38) << col(str(i, "severity"), 6) << col(str(i, "state"), 12)
                << col(age(str(i, "detected"), now), 9) << str(i, "title") << "\n";
    }
  }
  return incidents.empty() ? 0 : 1;
}

// An incident from the agent, or from its timeline file when the agent is not running.
Result<Incident> fetch_incident(const Args& a, const std::string& id) {
  if (!valid_incident_id(id)) return make_error("'" + id + "' is not an incident id");
  const Endpoints e = endpoints(a);
  auto reply = control_request(e.socket, {{"cmd", "incident"}, {"id", id}});
  if (reply) {
    if (!reply->value("ok", false)) return make_error(str(*reply, "error"));
    Incident inc;
    inc.id = id;
    int n = 0;
    for (const auto& line : (*reply)["lines"]) {
      ++n;
      auto ev = from_json_line(line.get<std::string>());
      if (!ev) continue;  // a torn line after a crash: the rest still tells the story
      inc.apply(*ev);
    }
    if (n == 0) return make_error("incident " + id + " has an empty timeline");
    return inc;
  }
  auto loaded = IncidentStore(e.state_dir + "/incidents").load(id);
  if (!loaded)
    return make_error(reply.error().message +
                      "; and from the state directory: " + loaded.error().message);
  return std::move(loaded->incident);
}

int cmd_incident_show(const Args& a) {
  if (a.positional.size() != 2 || a.positional[0] != "show") {
    return usage_error("usage: vigil incident show ID");
  }
  auto inc = fetch_incident(a, a.positional[1]);
  if (!inc) {
    std::cerr << "vigil: " << inc.error().message << "\n";
    return 1;
  }
  if (a.json) {
    nlohmann::json events = nlohmann::json::array();
    for (const TimelineEvent& e : inc->timeline) {
      events.push_back(nlohmann::json::parse(to_json_line(e), nullptr, false));
    }
    std::cout << json_out(nlohmann::json{{"id", inc->id}, {"timeline", events}}) << "\n";
    return 0;
  }
  std::cout << format_incident(*inc);
  return 0;
}

int cmd_postmortem(const Args& a) {
  if (a.positional.size() != 1) return usage_error("usage: vigil postmortem ID");
  auto inc = fetch_incident(a, a.positional[0]);
  if (!inc) {
    std::cerr << "vigil: " << inc.error().message << "\n";
    return 1;
  }
  std::cout << render_postmortem(*inc);
  return 0;
}

int cmd_incidents(const Args& a) {
  std::optional<Duration> since;
  if (!a.since.empty()) {
    auto d = parse_duration(a.since);
    if (!d) return usage_error("--since: " + d.error().message);
    since = *d;
  }
  const Endpoints e = endpoints(a);
  nlohmann::json list = nlohmann::json::array();
  auto reply = control_request(e.socket, {{"cmd", "incidents"}});
  if (reply && reply->value("ok", false)) {
    list = (*reply)["incidents"];
  } else {
    // The agent is not running: read the timelines ourselves.
    // The agent's index gives the summary of every resolved timeline it still describes.
    const IncidentStore store(e.state_dir + "/incidents");
    IncidentIndex index(e.state_dir + "/incident-index.jsonl");
    (void)index.load();  // unreadable: every timeline is read
    for (const std::string& id : store.list()) {
      if (const auto stamp = store.stamp(id)) {
        if (const IncidentIndex::Entry* entry = index.find(id, *stamp)) {
          list.push_back(entry->summary);
          continue;
        }
      }
      auto loaded = store.load(id);
      if (!loaded) continue;
      list.push_back(incident_summary_json(loaded->incident));
    }
    if (!reply) std::cerr << "vigil: " << reply.error().message << "; read " << store.dir() << "\n";
  }
  const TimePoint now = Clock::now();
  nlohmann::json shown = nlohmann::json::array();
  for (const auto& i : list) {
    const bool open = str(i, "state") != "resolved";
    if (a.open_only && !open) continue;
    if (since && !open) {  // an incident still open is news whenever it began
      const auto detected = parse_time(str(i, "detected"));
      if (!detected || now - *detected > *since) continue;
    }
    shown.push_back(i);
  }
  if (a.json) {
    std::cout << json_out(shown) << "\n";
    return 0;
  }
  if (shown.empty()) {
    std::cout << "no incidents" << (a.open_only ? " open" : "") << "\n";
    return 0;
  }
  std::cout << "INCIDENT" << std::string(30, ' ') << "SEV   PEAK  STATE       DETECTED"
            << std::string(17, ' ') << "LASTED   TITLE\n";
  for (const auto& i : shown) {
    std::string lasted = "open " + age(str(i, "detected"), now);
    if (const auto r = parse_time(str(i, "resolved")); r) {
      const auto st = parse_time(str(i, "started"));
      lasted = st ? format_duration(std::chrono::duration_cast<Duration>(*r - *st)) : "?";
    }
    std::cout << col(str(i, "id"), 38) << col(str(i, "severity"), 6) << col(str(i, "peak"), 6)
              << col(str(i, "state"), 12) << col(str(i, "detected").substr(0, 19), 25)
              << col(lasted, 9) << str(i, "title") << "\n";
  }
  return 0;
}

int cmd_maintain(const Args& a) {
  if (a.for_.empty()) return usage_error("usage: vigil maintain --for 30m [CHECK...]");
  auto d = parse_duration(a.for_);
  if (!d || d->count() <= 0) {
    return usage_error("--for: " +
                       (d ? std::string("must be greater than zero") : d.error().message));
  }
  nlohmann::json req = {
      {"cmd", "maintain"}, {"for_ms", d->count()}, {"checks", a.positional}, {"reason", a.reason}};
  auto reply = control_request(endpoints(a).socket, req);
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    return 1;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "vigil: " << str(*reply, "error") << "\n";
    return 1;
  }
  std::cout << "maintenance window for "
            << (a.positional.empty() ? std::string("all checks")
                                     : std::to_string(a.positional.size()) + " check(s)")
            << " until " << str(*reply, "until")
            << ": observing and recording; no pages, no mitigations\n";
  return 0;
}

int cmd_ack(const Args& a) {
  if (a.positional.size() != 1) return usage_error("usage: vigil ack ID");
  auto reply = control_request(endpoints(a).socket, {{"cmd", "ack"}, {"id", a.positional[0]}});
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    return 1;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "vigil: " << str(*reply, "error") << "\n";
    return 1;
  }
  std::cout << "acknowledged " << a.positional[0] << "\n";
  return 0;
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
  if (a.command == "status") return cmd_status(a);
  if (a.command == "incidents") return cmd_incidents(a);
  if (a.command == "incident") return cmd_incident_show(a);
  if (a.command == "postmortem") return cmd_postmortem(a);
  if (a.command == "maintain") return cmd_maintain(a);
  if (a.command == "ack") return cmd_ack(a);
  if (a.command == "switch-release") return cmd_switch_release(a);
  return usage_error("unknown command '" + a.command + "'");
}

}  // namespace vigil
