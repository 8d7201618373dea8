// The fleet's budget against a real etcd (Debian's etcd-server, unpacked by scripts/test.sh into
// a cache directory, never installed: its package would start etcd on the host). Each test runs
// its own etcd on loopback ports with a fresh data directory; several Budget objects with
// different host names stand for several hosts sharing one fleet.
#include "agent/fleet/budget.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/incidents/timeline.h"
#include "tests/integration/child.h"
#include "tests/support/http_server.h"

namespace vigil::fleet {
namespace {

using namespace std::chrono_literals;
using Kind = SlotAnswer::Kind;

// "h3": built by appending (GCC 12's -O3 warns falsely on "h" + std::to_string(3)).
std::string named(const char* prefix, int i) {
  std::string out = prefix;
  out += std::to_string(i);
  return out;
}

std::string etcd_binary() {
  if (const char* e = std::getenv("VIGIL_TEST_ETCD"); e != nullptr && e[0] != '\0') return e;
  return "/var/cache/vigil-test/packages/etcd-server/usr/bin/etcd";
}

class EtcdServer {
 public:
  // `tls`: {CA, server certificate, server key}: clients must show a certificate of that CA.
  explicit EtcdServer(const std::vector<std::string>& tls = {}) {
    std::string tmpl = ::testing::TempDir() + "vigil-etcd-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    client_ = vigil::testing::free_port();
    int peer = vigil::testing::free_port();
    while (peer == client_) peer = vigil::testing::free_port();
    scheme_ = tls.empty() ? "http" : "https";
    const std::string c = url();
    const std::string p = "http://127.0.0.1:" + std::to_string(peer);
    std::vector<std::string> argv = {etcd_binary(),
                                     "--name",
                                     "t",
                                     "--data-dir",
                                     dir_,
                                     "--listen-client-urls",
                                     c,
                                     "--advertise-client-urls",
                                     c,
                                     "--listen-peer-urls",
                                     p,
                                     "--initial-advertise-peer-urls",
                                     p,
                                     "--initial-cluster",
                                     "t=" + p};
    if (!tls.empty()) {
      argv.insert(argv.end(), {"--trusted-ca-file", tls.at(0), "--cert-file", tls.at(1),
                               "--key-file", tls.at(2), "--client-cert-auth"});
    }
    child_ = std::make_unique<vigil::testing::Child>(argv);
    ready_ = child_->wait_for_line("ready to serve client requests", 20s).has_value();
  }
  ~EtcdServer() {
    child_.reset();
    std::filesystem::remove_all(dir_);
  }
  bool ready() const { return ready_; }
  std::string url() const { return scheme_ + "://127.0.0.1:" + std::to_string(client_); }
  void kill() { child_.reset(); }

 private:
  std::string dir_;
  std::string scheme_ = "http";
  int client_ = 0;
  std::unique_ptr<vigil::testing::Child> child_;
  bool ready_ = false;
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(etcd_binary()))
        << etcd_binary()
        << " is missing: scripts/test.sh unpacks Debian's etcd-server there (or set "
           "VIGIL_TEST_ETCD)";
    ASSERT_TRUE(etcd.ready()) << "etcd did not start";
    settings.name = "web";
    settings.etcd = {etcd.url()};
    settings.lease_ttl = 5s;
    settings.timeout = 1s;
    settings.retry = 1s;
    action.kind = ActionKind::restart;
    action.name = "app";
    action.unit = "app.service";
    action.fleet_max = 2;
  }

  Budget& host(const std::string& name) {
    hosts.push_back(std::make_unique<Budget>(io, http, settings, name));
    hosts.back()->start();
    return *hosts.back();
  }

  // Runs the loop until `done` or `deadline`.
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds deadline) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(20ms);
    }
    return done();
  }

  SlotAnswer ask(Budget& b, const std::string& incident, std::chrono::milliseconds deadline = 10s) {
    std::optional<SlotAnswer> out;
    b.acquire(action, incident, [&](SlotAnswer a) { out = std::move(a); });
    EXPECT_TRUE(run_until([&] { return out.has_value(); }, deadline)) << "no answer";
    return out.value_or(SlotAnswer{});
  }

  EtcdServer etcd;
  boost::asio::io_context io;
  sys::HttpClient http{io};
  FleetSettings settings;
  ActionConfig action;
  std::vector<std::unique_ptr<Budget>> hosts;
};

TEST_F(FleetTest, AtMostTheCapOfManyHostsActAtOnceAndAFreedSlotGoesToTheNext) {
  for (int i = 1; i <= 6; ++i) host(named("h", i));
  // All six ask in the same instant, as six hosts seeing one shared outage.
  std::vector<std::optional<SlotAnswer>> answers(6);
  for (int i = 0; i < 6; ++i) {
    hosts[static_cast<std::size_t>(i)]->acquire(
        action, named("inc", i),
        [&answers, i](SlotAnswer a) { answers[static_cast<std::size_t>(i)] = std::move(a); });
  }
  ASSERT_TRUE(run_until(
      [&] { return std::all_of(answers.begin(), answers.end(), [](const auto& a) { return a; }); },
      20s));
  std::vector<int> granted, full;
  for (int i = 0; i < 6; ++i) {
    const SlotAnswer& a = *answers[static_cast<std::size_t>(i)];
    if (a.kind == Kind::granted) granted.push_back(i);
    if (a.kind == Kind::full) full.push_back(i);
    EXPECT_NE(a.kind, Kind::unavailable) << a.why;
  }
  ASSERT_EQ(granted.size(), 2u) << "the cap is 2";
  ASSERT_EQ(full.size(), 4u);
  const SlotAnswer& refused = *answers[static_cast<std::size_t>(full[0])];
  EXPECT_EQ(refused.cap, 2);
  EXPECT_EQ(refused.holders.size(), 2u);
  EXPECT_NE(refused.why.find("slots for restart:app: 2 of 2 taken (by h"), std::string::npos)
      << refused.why;
  // What the metrics show (vigil_fleet_*): etcd up, the slot held or not, each answer counted.
  using Answers = std::map<std::pair<std::string, std::string>, std::uint64_t>;
  for (int i : granted) {
    const Budget& b = *hosts[static_cast<std::size_t>(i)];
    EXPECT_TRUE(b.etcd_up());
    EXPECT_EQ(b.held(), std::vector<std::string>{"restart:app"});
    EXPECT_EQ(b.answers(), (Answers{{{"restart:app", "granted"}, 1}}));
  }
  for (int i : full) {
    const Budget& b = *hosts[static_cast<std::size_t>(i)];
    EXPECT_TRUE(b.held().empty());
    EXPECT_EQ(b.answers(), (Answers{{{"restart:app", "full"}, 1}}));
  }

  // One holder's verification ends: its slot goes, and a waiting host gets it on its next ask.
  Budget& first = *hosts[static_cast<std::size_t>(granted[0])];
  first.release("restart:app", named("inc", granted[0]));
  EXPECT_TRUE(first.held().empty());
  Budget& waiting = *hosts[static_cast<std::size_t>(full[0])];
  bool got = false;
  ASSERT_TRUE(run_until(
      [&] {
        if (!got) got = ask(waiting, "inc-later", 5s).kind == Kind::granted;
        return got;
      },
      10s));
  EXPECT_EQ(ask(*hosts[static_cast<std::size_t>(full[1])], "inc-more").kind, Kind::full);
}

TEST_F(FleetTest, APercentCapCountsTheLiveHosts) {
  action.fleet_max = 0;
  action.fleet_max_percent = 50;
  for (int i = 1; i <= 4; ++i) host(named("h", i));
  ASSERT_TRUE(run_until(
      [&] {
        return std::all_of(hosts.begin(), hosts.end(),
                           [](const auto& b) { return b->status()["lease"] == "live"; });
      },
      10s));
  int granted = 0;
  for (auto& b : hosts) granted += ask(*b, "inc").kind == Kind::granted ? 1 : 0;
  EXPECT_EQ(granted, 2) << "50 % of 4 live hosts";
}

TEST_F(FleetTest, AKilledHostsSlotIsFreedByItsLeaseButALiveOneKeepsItPastTheTtl) {
  action.fleet_max = 1;
  Budget& a = host("a");
  Budget& b = host("b");
  ASSERT_EQ(ask(a, "inc-a").kind, Kind::granted);
  // The keep-alives hold a's slot well past the lease's 5 s.
  run_until([] { return false; }, 7s);
  EXPECT_EQ(ask(b, "inc-b").kind, Kind::full);
  // a dies without a word: no release, no revoke, no more keep-alives.
  hosts.erase(hosts.begin());
  bool granted = false;
  const auto died = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(
      [&] {
        if (!granted) granted = ask(b, "inc-b").kind == Kind::granted;
        return granted;
      },
      15s))
      << "the dead host's lease never expired";
  EXPECT_LT(std::chrono::steady_clock::now() - died, 12s);
}

TEST_F(FleetTest, AHostThatRestartsTakesItsOwnSlotBack) {
  action.fleet_max = 1;
  host("a");
  ASSERT_EQ(ask(*hosts[0], "inc").kind, Kind::granted);
  hosts.clear();  // vigil restarts: the old lease still holds the key for up to 5 s
  Budget& again = host("a");
  const SlotAnswer s = ask(again, "inc");
  EXPECT_EQ(s.kind, Kind::granted) << s.why;
  EXPECT_EQ(ask(host("b"), "inc-b").kind, Kind::full);
}

// etcd down: every ask answers "unavailable" within the request timeout, and the loop goes on
// (detection and paging share it): a timer on the same loop keeps its cadence meanwhile.
TEST_F(FleetTest, EtcdDownAnswersUnavailableWithoutBlockingTheLoop) {
  Budget& a = host("a");
  ASSERT_TRUE(run_until([&] { return a.status()["lease"] == "live"; }, 10s));
  EXPECT_TRUE(a.etcd_up());
  etcd.kill();
  int ticks = 0;
  boost::asio::steady_timer tick(io);
  std::function<void()> arm = [&] {
    tick.expires_after(50ms);
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      ++ticks;
      arm();
    });
  };
  arm();
  const auto asked = std::chrono::steady_clock::now();
  const SlotAnswer s = ask(a, "inc");
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_EQ(s.kind, Kind::unavailable);
  // The timeline's reason is the same at every retry of one outage (written once); curl's own
  // words, which carry timings, are in `vigil status`.
  EXPECT_EQ(s.why, "etcd cannot be reached (" + etcd.url() + ")");
  EXPECT_NE(a.status().value("error", "").find("etcd " + etcd.url() + ": "), std::string::npos)
      << a.status().dump();
  EXPECT_LT(took, 3s);
  EXPECT_GE(ticks, static_cast<int>(took / 50ms) - 3) << "the loop was blocked";
  EXPECT_EQ(ask(a, "inc").why, s.why);
  EXPECT_FALSE(a.etcd_up());
  EXPECT_EQ(a.answers().at({"restart:app", "unavailable"}), 2u);
  tick.cancel();
}

// A listener that never answers stands for an etcd member that hangs; the next endpoint serves.
TEST_F(FleetTest, AHungEndpointTimesOutAndTheNextOneAnswers) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  settings.etcd = {"http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)), etcd.url()};
  settings.timeout = 500ms;
  const SlotAnswer s = ask(host("a"), "inc");
  EXPECT_EQ(s.kind, Kind::granted) << s.why;
  EXPECT_EQ(hosts[0]->status()["endpoint"], etcd.url());
  ::close(fd);
}

// etcd with TLS and client certificates, as a production cluster runs: vigil's CA, certificate
// and key ([fleet] ca_file, cert_file, key_file) get a slot; without a client certificate the
// budget is "unavailable" (and a capped action would hold), never granted.
TEST(FleetTls, ClientCertificatesAreShownToEtcd) {
  ASSERT_TRUE(std::filesystem::exists(etcd_binary())) << etcd_binary() << " is missing";
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("vigil-etcd-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto at = [&](const std::string& name) { return (dir / name).string(); };
  const auto openssl = [](std::vector<std::string> args) {
    args.insert(args.begin(), "/usr/bin/openssl");
    auto [rc, out] = vigil::testing::run_command(args);
    EXPECT_EQ(rc, 0) << out;
  };
  openssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", at("ca.key"), "-out",
           at("ca.pem"), "-days", "1", "-subj", "/CN=vigil test CA"});
  // The server's certificate is also a client's: etcd's JSON gateway dials etcd's own gRPC port
  // with it, and with --client-cert-auth a server-only certificate makes every request a 503.
  std::ofstream(at("server.ext"))
      << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n";
  std::ofstream(at("client.ext")) << "extendedKeyUsage=clientAuth\n";
  for (const std::string w : {"server", "client"}) {
    openssl({"req", "-newkey", "rsa:2048", "-nodes", "-keyout", at(w + ".key"), "-out",
             at(w + ".csr"), "-subj", "/CN=vigil-" + w});
    openssl({"x509", "-req", "-in", at(w + ".csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"),
             "-CAcreateserial", "-out", at(w + ".pem"), "-days", "1", "-extfile", at(w + ".ext")});
  }
  EtcdServer etcd({at("ca.pem"), at("server.pem"), at("server.key")});
  ASSERT_TRUE(etcd.ready()) << "etcd with TLS did not start";
  boost::asio::io_context io;
  sys::HttpClient http(io);
  FleetSettings settings;
  settings.name = "tls";
  settings.etcd = {etcd.url()};
  settings.lease_ttl = 5s;
  settings.timeout = 1s;
  settings.retry = 1s;
  settings.ca_file = at("ca.pem");
  ActionConfig action;
  action.kind = ActionKind::restart;
  action.name = "app";
  action.fleet_max = 1;
  const auto ask = [&](Budget& b) {
    std::optional<SlotAnswer> out;
    b.acquire(action, "inc", [&](SlotAnswer a) { out = std::move(a); });
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (!out && std::chrono::steady_clock::now() < end) {
      io.restart();
      io.run_for(20ms);
    }
    return out.value_or(SlotAnswer{});
  };
  Budget stranger(io, http, settings, "stranger");  // the CA, but no client certificate
  const SlotAnswer refused = ask(stranger);
  EXPECT_EQ(refused.kind, SlotAnswer::Kind::unavailable) << refused.why;
  settings.cert_file = at("client.pem");
  settings.key_file = at("client.key");
  Budget member(io, http, settings, "a");
  const SlotAnswer granted = ask(member);
  EXPECT_EQ(granted.kind, SlotAnswer::Kind::granted) << granted.why;
  std::filesystem::remove_all(dir);
}

// Three real vigil processes (hosts a, b, c) share one failing dependency: the HTTP service all
// their checks probe answers 503 after a fleet-wide deploy. Each one's ladder is a rollback
// capped at fleet_max = 1. They must roll back one at a time: the others hold ("held: fleet
// budget"), and each acts once the host before it has verified (here: found that the rollback
// did not help, since the dependency is what fails) and given its slot back.
TEST_F(FleetTest, ThreeAgentsOneSharedOutageOneActsAtATime) {
  vigil::testing::HttpServer dependency;
  dependency.start_thread();
  const std::filesystem::path root =
      std::filesystem::path(::testing::TempDir()) / ("vigil-fleet-" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  std::vector<std::unique_ptr<vigil::testing::Child>> agents;
  const std::vector<std::string> names = {"a", "b", "c"};
  for (const std::string& name : names) {
    const auto dir = root / name;
    std::filesystem::create_directories(dir / "state");
    std::filesystem::create_directories(dir / "deploy" / "releases" / "A");
    std::filesystem::create_directories(dir / "deploy" / "releases" / "B");
    std::filesystem::create_directory_symlink("releases/A", dir / "deploy" / "current");
    std::ofstream(dir / "vigil.toml")
        << "[agent]\nhostname = \"" << name << "\"\nstate_dir = \"" << (dir / "state").string()
        << "\"\ncontrol_socket = \"" << (dir / "vigil.sock").string() << "\"\n\n[fleet]\nname = "
        << "\"t\"\netcd = \"" << etcd.url() << "\"\nlease_ttl = \"5s\"\ntimeout = \"1s\"\n"
        << "retry = \"1s\"\n\n[action.rollback.app]\ndir = \"" << (dir / "deploy").string()
        << "\"\nverify_within = \"2s\"\nfleet_max = 1\n\n[[check]]\nname = \"app\"\nprobe = "
        << "\"http\"\nurl = \"" << dependency.url("/health")
        << "\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nconfirm_interval = \"20ms\"\n"
        << "mitigate = [\"rollback:app\"]\n";
    agents.push_back(std::make_unique<vigil::testing::Child>(
        std::vector<std::string>{VIGIL_BINARY, "run", "--config", (dir / "vigil.toml").string()}));
  }
  for (auto& agent : agents) {
    ASSERT_TRUE(agent->wait_for_line("release A of app is known good", 15s));
  }
  // The fleet-wide deploy of B, and the shared dependency fails at the same moment.
  for (const std::string& name : names) {
    const auto deploy = root / name / "deploy";
    std::filesystem::create_directory_symlink("releases/B", deploy / "next");
    std::filesystem::rename(deploy / "next", deploy / "current");
  }
  dependency.set_mode(vigil::testing::Mode::fail);
  for (auto& agent : agents) {
    ASSERT_TRUE(agent->wait_for_line("started rollback:app", 30s))
        << "every host acts in turn while the incident lasts";
  }
  for (auto& agent : agents) {
    ASSERT_TRUE(agent->wait_for_line("did not help", 10s));
    agent->signal(SIGTERM);
    EXPECT_EQ(agent->wait_exit(10s), 0);
  }

  // From the timelines on disk: each host's rollback, from its start to its verification's end,
  // never overlaps another's; and the hosts that waited say why.
  struct Span {
    std::string host;
    TimePoint from{}, to{};
  };
  std::vector<Span> spans;
  int held = 0;
  for (const std::string& name : names) {
    Span span{name, {}, {}};
    for (const auto& file :
         std::filesystem::directory_iterator(root / name / "state" / "incidents")) {
      std::ifstream in(file.path());
      for (std::string line; std::getline(in, line);) {
        const auto e = from_json_line(line);
        if (!e || e->type != TimelineEvent::Type::mitigation) continue;
        const auto outcome = e->fields.find("outcome");
        if (outcome == e->fields.end()) continue;
        if (outcome->second == "started") span.from = e->at;
        if (outcome->second == "failed" && span.from != TimePoint{} && span.to == TimePoint{}) {
          span.to = e->at;
        }
        if (e->text.find("on hold: held: fleet budget: slots for rollback:app: 1 of 1 "
                         "taken (by ") != std::string::npos) {
          ++held;
        }
      }
    }
    ASSERT_NE(span.from, TimePoint{}) << name << " never started its rollback";
    ASSERT_NE(span.to, TimePoint{}) << name << "'s rollback never ended";
    spans.push_back(span);
  }
  std::sort(spans.begin(), spans.end(),
            [](const Span& x, const Span& y) { return x.from < y.from; });
  for (std::size_t i = 1; i < spans.size(); ++i) {
    EXPECT_GE(spans[i].from, spans[i - 1].to)
        << spans[i].host << " started while " << spans[i - 1].host << " still held the slot";
  }
  EXPECT_GE(held, 2) << "the hosts that waited must say it was the fleet budget";
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace vigil::fleet
