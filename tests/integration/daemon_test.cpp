// The real `vigil` binary, as a separate process: findings on stderr, SIGHUP reload (valid and
// invalid), clean SIGTERM, the sd_notify protocol, check-config and test-check exit codes.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include "agent/control.h"
#include "agent/incidents/timeline.h"
#include "tests/integration/child.h"
#include "tests/support/http_server.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using testing::Child;
using testing::HttpServer;
using testing::Mode;
using testing::run_command;

// Deadlines are generous: they bound a hung test, they do not measure speed (bench/ does).
constexpr auto kWait = 10s;

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.start_thread();
    dir_ = std::filesystem::temp_directory_path() /
           ("vigil-daemon-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    config_ = (dir_ / "vigil.toml").string();
    write(config_, good_config("app"));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string good_config(const std::string& name) const {
    return "[agent]\nstate_dir = \"" + dir_.string() + "\"\n\n[[check]]\nname = \"" + name +
           "\"\nprobe = \"http\"\nurl = \"" + server_.url("/health") +
           "\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nconfirm_interval = \"20ms\"\n";
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
  }

  HttpServer server_;
  std::filesystem::path dir_;
  std::string config_;
};

TEST_F(DaemonTest, FiresRecoversReloadsAndStopsCleanly) {
  Child vigil({VIGIL_BINARY, "run", "--config", config_});
  ASSERT_TRUE(vigil.wait_for_line("started: Watching 1 check(s)", kWait));

  server_.set_mode(Mode::fail);
  auto fired = vigil.wait_for_line("app: SEV1 firing", kWait);
  ASSERT_TRUE(fired);
  EXPECT_NE(fired->find("HTTP 503"), std::string::npos) << *fired;
  EXPECT_NE(fired->find("CRIT"), std::string::npos) << *fired;

  // An invalid config on SIGHUP: every error with FILE:LINE:COL, and the old config keeps going.
  const std::string bad = (dir_ / "vigil.toml").string();
  write(bad,
        "[[check]]\nname = \"app\"\nprobe = \"http\"\nurl = \"ftp://nope\"\nintreval = "
        "\"1s\"\n[check.severity]\nhttp_5xx = \"SEV9\"\n");
  vigil.signal(SIGHUP);
  EXPECT_TRUE(vigil.wait_for_line(bad + ":4:7: check 'app': 'url'", kWait));
  EXPECT_TRUE(vigil.wait_for_line(bad + ":5:1: check 'app': unknown key 'intreval'", kWait));
  EXPECT_TRUE(vigil.wait_for_line(bad + ":7:12: check 'app': severity.http_5xx", kWait));
  EXPECT_TRUE(vigil.wait_for_line("reload refused: 3 error(s)", kWait));
  server_.set_mode(Mode::ok);
  EXPECT_TRUE(vigil.wait_for_line("app: recovered after", kWait))
      << "the old configuration must keep running after a refused reload";

  // A valid config on SIGHUP replaces the checks.
  write(config_, good_config("renamed"));
  vigil.signal(SIGHUP);
  EXPECT_TRUE(vigil.wait_for_line("configuration reloaded: Watching 1 check(s)", kWait));
  server_.set_mode(Mode::garbage);
  EXPECT_TRUE(vigil.wait_for_line("renamed: SEV1 firing: invalid HTTP answer", kWait));

  vigil.signal(SIGTERM);
  EXPECT_EQ(vigil.wait_exit(kWait), 0);
  EXPECT_TRUE(vigil.wait_for_line("stopped", 1s));
}

TEST_F(DaemonTest, SlowAnswersAreGradedByLatency) {
  write(config_, good_config("app") +
                     "latency_warn = \"50ms\"\nlatency_crit = \"120ms\"\nrecover_after = 1\n");
  server_.set_slow_ms(80);
  Child vigil({VIGIL_BINARY, "run", "--config", config_});
  ASSERT_TRUE(vigil.wait_for_line("started", kWait));
  server_.set_mode(Mode::slow);
  EXPECT_TRUE(vigil.wait_for_line("app: SEV3 firing", kWait));
  server_.set_slow_ms(130);
  EXPECT_TRUE(vigil.wait_for_line("app: SEV2 (was SEV3)", kWait));
  server_.set_mode(Mode::ok);
  EXPECT_TRUE(vigil.wait_for_line("app: recovered", kWait));
  vigil.signal(SIGINT);
  EXPECT_EQ(vigil.wait_exit(kWait), 0);
}

TEST_F(DaemonTest, RefusesToStartOnInvalidConfig) {
  write(config_, "[[check]]\nname = \"x\"\nprobe = \"http\"\nurl = \"http://h/\"\ninterval = 5\n");
  Child vigil({VIGIL_BINARY, "run", "--config", config_});
  EXPECT_EQ(vigil.wait_exit(kWait), 1);
  EXPECT_TRUE(vigil.wait_for_line(config_ + ":5:12: check 'x': 'interval' must be a duration", 1s));
}

// The systemd notification protocol, spoken to a socket of our own (no systemd needed).
TEST_F(DaemonTest, SpeaksSdNotify) {
  const std::string sock_path = (dir_ / "notify.sock").string();
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  auto next_message = [fd](std::chrono::milliseconds wait) -> std::string {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return "";
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  };
  auto wait_message = [&](const std::string& needle) {
    const auto until = std::chrono::steady_clock::now() + kWait;
    while (std::chrono::steady_clock::now() < until) {
      if (next_message(500ms).find(needle) != std::string::npos) return true;
    }
    return false;
  };

  // WatchdogSec=400ms: vigil must ping at about half of it, from its loop.
  Child vigil({VIGIL_BINARY, "run", "--config", config_},
              {"NOTIFY_SOCKET=" + sock_path, "WATCHDOG_USEC=400000"});
  EXPECT_TRUE(wait_message("READY=1"));
  int pings = 0;
  for (int i = 0; i < 50 && pings < 3; ++i) {
    if (next_message(1s).find("WATCHDOG=1") != std::string::npos) ++pings;
  }
  EXPECT_EQ(pings, 3);
  vigil.signal(SIGHUP);
  EXPECT_TRUE(wait_message("RELOADING=1"));
  EXPECT_TRUE(wait_message("READY=1"));
  vigil.signal(SIGTERM);
  EXPECT_TRUE(wait_message("STOPPING=1"));
  EXPECT_EQ(vigil.wait_exit(kWait), 0);
  close(fd);
}

TEST_F(DaemonTest, CheckConfigCountsEveryMistake) {
  const std::string bad = (dir_ / "bad.toml").string();
  write(bad,
        "[agent]\ndry_run = \"yes\"\n[[check]]\nname = \"a\"\nprobe = \"http\"\nurl = "
        "\"http://127.0.0.1/\"\ninterval = \"-1s\"\n[[check]]\nname = \"a\"\nprobe = \"http\"\nurl "
        "= \"http://127.0.0.1/\"\n");
  auto [rc, out] = run_command({VIGIL_BINARY, "check-config", bad});
  EXPECT_EQ(rc, 1) << out;
  const std::regex located("^" + bad + ":[0-9]+:[0-9]+: ");
  int located_lines = 0;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, located)) ++located_lines;
  }
  EXPECT_EQ(located_lines, 3) << out;

  auto [ok_rc, ok_out] = run_command({VIGIL_BINARY, "check-config", config_});
  EXPECT_EQ(ok_rc, 0) << ok_out;
  EXPECT_NE(ok_out.find("app: http GET " + server_.url("/health")), std::string::npos) << ok_out;
  EXPECT_NE(ok_out.find("OK, 1 check(s)"), std::string::npos) << ok_out;
}

TEST_F(DaemonTest, TestCheckExitCodes) {
  auto [rc_ok, out_ok] = run_command({VIGIL_BINARY, "test-check", "app", "--config", config_});
  EXPECT_EQ(rc_ok, 0) << out_ok;
  EXPECT_NE(out_ok.find("finding:  none (healthy)"), std::string::npos) << out_ok;
  server_.set_mode(Mode::fail);
  auto [rc_bad, out_bad] = run_command({VIGIL_BINARY, "test-check", "app", "--config", config_});
  EXPECT_EQ(rc_bad, 1) << out_bad;
  EXPECT_NE(out_bad.find("finding:  SEV1 firing"), std::string::npos) << out_bad;
  EXPECT_NE(out_bad.find("connection pool exhausted"), std::string::npos) << out_bad;
  auto [rc_err, out_err] = run_command({VIGIL_BINARY, "test-check", "nope", "--config", config_});
  EXPECT_EQ(rc_err, 2) << out_err;
}

TEST(CliTest, HelpAndVersion) {
  auto [rc_h, help] = run_command({VIGIL_BINARY, "--help"});
  EXPECT_EQ(rc_h, 0);
  EXPECT_NE(help.find("Examples:"), std::string::npos);
  auto [rc_v, version] = run_command({VIGIL_BINARY, "--version"});
  EXPECT_EQ(rc_v, 0);
  EXPECT_EQ(version.rfind("vigil ", 0), 0u) << version;
  auto [rc_u, unknown] = run_command({VIGIL_BINARY, "frobnicate"});
  EXPECT_EQ(rc_u, 2) << unknown;
}

// Resolved incidents are read from their timelines once; later starts take their summaries
// from the incident index, and read again only a timeline written since its entry.
TEST_F(DaemonTest, StartsReadOnlyTimelinesTheIndexDoesNotDescribe) {
  IncidentStore store((dir_ / "incidents").string());
  const TimePoint t = Clock::now() - std::chrono::hours(1);
  const auto event = [&](TimelineEvent::Type type, int s) {
    TimelineEvent e;
    e.at = t + std::chrono::seconds(s);
    e.type = type;
    e.check = "old";
    return e;
  };
  constexpr int kIncidents = 300;
  std::vector<std::string> ids;
  for (int i = 0; i < kIncidents; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "20261201-%06d-old", i);
    TimelineEvent o = event(TimelineEvent::Type::opened, 0);
    o.text = "incident opened: old";
    o.fields = {{"service", "old"}, {"dedupe_key", std::string("h/old/") + id}, {"title", "old"}};
    TimelineEvent f = event(TimelineEvent::Type::finding, 0);
    f.finding = "firing";
    f.severity = Severity::sev3;
    f.text = "HTTP 503";
    TimelineEvent r = event(TimelineEvent::Type::finding, 30);
    r.finding = "recovered";
    r.severity = Severity::sev3;
    TimelineEvent done = event(TimelineEvent::Type::state, 30);
    done.state = IncidentState::resolved;
    done.text = "resolved";
    ASSERT_TRUE(store.append(id, {o, f, r, done}));
    ids.push_back(id);
  }
  const auto start_and_stop = [&](const std::string& expected) {
    Child vigil({VIGIL_BINARY, "run", "--config", config_});
    EXPECT_TRUE(vigil.wait_for_line(expected, kWait)) << expected;
    ASSERT_TRUE(vigil.wait_for_line("started", kWait));
    vigil.signal(SIGTERM);
    EXPECT_EQ(vigil.wait_exit(kWait), 0);
  };
  const std::string n = std::to_string(kIncidents);
  start_and_stop("incidents at start: " + n + " timeline(s), 0 from the index, " + n + " read");
  start_and_stop("incidents at start: " + n + " timeline(s), " + n + " from the index, 0 read");
  // One timeline changed while vigil was stopped (a note appended by hand, a restore from
  // backup): only that one is read again.
  TimelineEvent note = event(TimelineEvent::Type::note, 40);
  note.text = "a human's note";
  ASSERT_TRUE(store.append(ids[7], note));
  start_and_stop("incidents at start: " + n + " timeline(s), " + std::to_string(kIncidents - 1) +
                 " from the index, 1 read");
  // A damaged index: said so, and the timelines are read instead.
  write((dir_ / "incident-index.jsonl").string(), "garbage\n");
  start_and_stop("incidents at start: " + n + " timeline(s), 0 from the index, " + n + " read");
}

// Maintenance windows and acks (issue 13): at most 32 windows at once, each at most 7 days, a
// reason at most 512 bytes; each window and each ack is in the open incident's timeline with the
// caller's uid. The same bounds hold for windows read back from maintenance.json at start, and a
// damaged file is said to be damaged instead of silently dropped.
TEST_F(DaemonTest, MaintenanceAndAckAreBoundedAndRecordTheUid) {
  const std::string sock = (dir_ / "control.sock").string();
  std::string config = good_config("app");
  config.insert(std::string("[agent]\n").size(), "control_socket = \"" + sock + "\"\n");
  write(config_, config);
  const auto ask = [&](const nlohmann::json& request) {
    Result<nlohmann::json> r = control_request(sock, request, 5000);
    return r ? *r : nlohmann::json{{"ok", false}, {"error", "client: " + r.error().message}};
  };
  const auto timeline_of = [&]() {
    std::string all;
    for (const auto& f : std::filesystem::directory_iterator(dir_ / "incidents")) {
      if (f.path().extension() != ".jsonl") continue;
      std::ifstream in(f.path());
      all += std::string(std::istreambuf_iterator<char>(in), {});
    }
    return all;
  };
  {
    Child vigil({VIGIL_BINARY, "run", "--config", config_});
    ASSERT_TRUE(vigil.wait_for_line("started", kWait));
    server_.set_mode(Mode::fail);
    ASSERT_TRUE(vigil.wait_for_line("app: SEV1 firing", kWait));
    const nlohmann::json open = ask({{"cmd", "incidents"}});
    std::string id;
    for (const auto& inc : open.value("incidents", nlohmann::json::array())) {
      if (inc.value("state", "") != "resolved") id = inc.value("id", "");
    }
    ASSERT_FALSE(id.empty()) << open.dump();

    nlohmann::json r = ask({{"cmd", "maintain"}, {"for_ms", 8LL * 24 * 3600 * 1000}});
    EXPECT_EQ(r.value("error", ""), "a maintenance window lasts between 1ms and 7 days") << r;
    r = ask({{"cmd", "maintain"}, {"for_ms", 60000}, {"reason", std::string(513, 'r')}});
    EXPECT_EQ(r.value("error", ""), "the reason is 513 bytes: at most 512") << r;
    for (int i = 0; i < 32; ++i) {
      r = ask({{"cmd", "maintain"}, {"for_ms", 60000}, {"reason", std::string(512, 'r')}});
      ASSERT_TRUE(r.value("ok", false)) << i << ": " << r;
    }
    r = ask({{"cmd", "maintain"}, {"for_ms", 60000}});
    EXPECT_NE(r.value("error", "").find("at most 32 at once"), std::string::npos) << r;
    r = ask({{"cmd", "ack"}, {"id", id}});
    EXPECT_TRUE(r.value("ok", false)) << r;
    EXPECT_TRUE(vigil.wait_for_line("acknowledged (uid 0)", kWait));
    vigil.signal(SIGTERM);
    EXPECT_EQ(vigil.wait_exit(kWait), 0);
  }
  const std::string timeline = timeline_of();
  EXPECT_NE(timeline.find("\"text\":\"acknowledged (uid 0)\""), std::string::npos) << timeline;
  EXPECT_NE(timeline.find("\"type\":\"maintenance\""), std::string::npos) << timeline;
  EXPECT_NE(timeline.find("(uid 0)\""), std::string::npos) << timeline;

  // maintenance.json as a bug or a hand edit could leave it: 40 windows, one for 30 days, one
  // without a time. Read back within the bounds, each cut said so.
  const std::string state = (dir_ / "maintenance.json").string();
  const auto in = [](std::chrono::hours h) { return format_time(Clock::now() + h); };
  nlohmann::json windows = nlohmann::json::array();
  windows.push_back({{"checks", nlohmann::json::array()}, {"until", in(std::chrono::hours(720))}});
  windows.push_back({{"checks", nlohmann::json::array()}, {"until", "soon"}});
  for (int i = 0; i < 39; ++i) {
    windows.push_back({{"checks", {"app"}}, {"until", in(std::chrono::hours(1))}, {"reason", "x"}});
  }
  write(state, windows.dump());
  {
    Child vigil({VIGIL_BINARY, "run", "--config", config_});
    EXPECT_TRUE(vigil.wait_for_line("is longer than 7 days from now; it ends at", kWait));
    EXPECT_TRUE(vigil.wait_for_line("1 window(s) without a valid 'until' ignored", kWait));
    EXPECT_TRUE(vigil.wait_for_line("8 window(s) beyond the 32 allowed at once ignored", kWait));
    ASSERT_TRUE(vigil.wait_for_line("started", kWait));
    const nlohmann::json r = ask({{"cmd", "maintain"}, {"for_ms", 60000}});
    EXPECT_NE(r.value("error", "").find("already 32 maintenance windows"), std::string::npos) << r;
    vigil.signal(SIGTERM);
    EXPECT_EQ(vigil.wait_exit(kWait), 0);
  }
  write(state, "{\"not\": \"a list\"}");
  {
    Child vigil({VIGIL_BINARY, "run", "--config", config_});
    EXPECT_TRUE(vigil.wait_for_line(state + ": not a list of maintenance windows", kWait));
    ASSERT_TRUE(vigil.wait_for_line("started", kWait));
    vigil.signal(SIGTERM);
    EXPECT_EQ(vigil.wait_exit(kWait), 0);
  }
}

}  // namespace

// `vigil switch-release`: what the agent runs as a deploy directory's owner, and what a human
// runs to roll forward.
TEST_F(DaemonTest, SwitchReleaseSwitchesAtomicallyAndRefusesClearly) {
  const std::filesystem::path app = dir_ / "app";
  std::filesystem::create_directories(app / "releases" / "A");
  std::filesystem::create_directories(app / "releases" / "-B");
  std::filesystem::create_symlink("releases/A", app / "current");

  // "--": a release name that starts with '-' is a name, not an option.
  auto [rc, out] = run_command({VIGIL_BINARY, "switch-release", "--", app.string(), "-B"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("switched " + app.string() + "/current: A -> -B"), std::string::npos) << out;
  EXPECT_EQ(std::filesystem::read_symlink(app / "current"), "releases/-B");

  auto [rc_gone, gone] = run_command({VIGIL_BINARY, "switch-release", app.string(), "C"});
  EXPECT_EQ(rc_gone, 1) << gone;
  EXPECT_NE(gone.find("release C is gone"), std::string::npos) << gone;
  auto [rc_bad, bad] = run_command({VIGIL_BINARY, "switch-release", app.string(), "../x"});
  EXPECT_EQ(rc_bad, 1) << bad;
  EXPECT_NE(bad.find("invalid release name"), std::string::npos) << bad;
  auto [rc_use, use] = run_command({VIGIL_BINARY, "switch-release", app.string()});
  EXPECT_EQ(rc_use, 2) << use;
  EXPECT_EQ(std::filesystem::read_symlink(app / "current"), "releases/-B");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(app)) ++entries;
  EXPECT_EQ(entries, 2u) << "a temporary link was left in " << app;
}
}  // namespace vigil
