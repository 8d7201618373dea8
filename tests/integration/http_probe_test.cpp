// The HTTP probe and curl-multi-on-Asio client against a real HTTP server on 127.0.0.1.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "agent/config/config.h"
#include "agent/load_config.h"
#include "agent/sys/http.h"
#include "probes/http.h"
#include "tests/integration/child.h"
#include "tests/support/http_server.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using testing::free_port;
using testing::HttpServer;
using testing::Mode;

CheckConfig make_check(const std::string& url, const std::string& extra = "") {
  std::string text = "[[check]]\nname = \"t\"\nprobe = \"http\"\nurl = \"" + url +
                     "\"\ninterval = \"5s\"\ntimeout = \"1s\"\n" + extra;
  if (extra.find("confirm_interval") == std::string::npos) text += "confirm_interval = \"20ms\"\n";
  LoadResult r = parse_config(text, "test.toml");
  EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  return r.config->checks.at(0);
}

// Runs the probe once on a fresh loop and returns its observation.
Observation probe_once(const CheckConfig& check) {
  boost::asio::io_context io;
  sys::HttpClient http(io);
  sys::UnitWatcher units(io);  // unused by HTTP probes; part of every probe's context
  auto probe = std::make_shared<HttpProbe>(ProbeContext{io, http, units, "/tmp"}, check);
  std::optional<Observation> out;
  probe->run([&](Observation o) { out = std::move(o); });
  io.run_for(10s);
  EXPECT_TRUE(out.has_value()) << "probe did not finish";
  return out.value_or(Observation{});
}

class HttpProbeTest : public ::testing::Test {
 protected:
  void SetUp() override { server_.start_thread(); }
  HttpServer server_;
};

TEST_F(HttpProbeTest, HealthyAnswerIsOkWithTimings) {
  Observation o = probe_once(make_check(server_.url("/200")));
  EXPECT_TRUE(o.ok()) << o.summary;
  EXPECT_EQ(o.http.status, 200);
  EXPECT_EQ(o.http.attempts, 1);
  EXPECT_EQ(o.http.body_head, "ok");
  EXPECT_GE(o.http.total, o.http.connect);
  EXPECT_NE(o.summary.find("HTTP 200"), std::string::npos);
}

TEST_F(HttpProbeTest, ServerErrorIsConfirmedThenReported) {
  Observation o = probe_once(make_check(server_.url("/503")));
  EXPECT_EQ(o.failure, FailureKind::http_5xx);
  EXPECT_EQ(o.http.status, 503);
  EXPECT_EQ(o.http.attempts, 3) << "default confirm = 2 re-probes";
  EXPECT_NE(o.summary.find("confirmed by 3 attempts"), std::string::npos) << o.summary;
  EXPECT_EQ(server_.requests(), 3u);
}

TEST_F(HttpProbeTest, ConfirmZeroReportsFirstFailure) {
  Observation o = probe_once(make_check(server_.url("/503"), "confirm = 0\n"));
  EXPECT_EQ(o.failure, FailureKind::http_5xx);
  EXPECT_EQ(o.http.attempts, 1);
}

TEST_F(HttpProbeTest, SlowAnswerIsMeasured) {
  Observation o = probe_once(make_check(server_.url("/slow?ms=250")));
  EXPECT_TRUE(o.ok()) << o.summary;
  EXPECT_GE(o.latency, 250ms);
  EXPECT_GE(o.http.first_byte, 250ms);
}

TEST_F(HttpProbeTest, TooSlowAnswerTimesOut) {
  Observation o = probe_once(make_check(server_.url("/slow?ms=3000"), "confirm = 0\n"));
  EXPECT_EQ(o.failure, FailureKind::timeout) << o.summary;
  EXPECT_FALSE(o.http.error.empty());
}

TEST_F(HttpProbeTest, ResetConnectionIsReset) {
  Observation o = probe_once(make_check(server_.url("/reset")));
  EXPECT_EQ(o.failure, FailureKind::reset) << o.summary;
  EXPECT_EQ(o.http.attempts, 3);
}

TEST_F(HttpProbeTest, GarbageStatusLineIsProtocolError) {
  Observation o = probe_once(make_check(server_.url("/garbage")));
  EXPECT_EQ(o.failure, FailureKind::protocol) << o.summary;
}

TEST_F(HttpProbeTest, RefusedPortIsRefused) {
  Observation o =
      probe_once(make_check("http://127.0.0.1:" + std::to_string(free_port()) + "/health"));
  EXPECT_EQ(o.failure, FailureKind::refused) << o.summary;
  EXPECT_NE(o.summary.find("connection refused"), std::string::npos);
}

TEST_F(HttpProbeTest, BodyExpectations) {
  EXPECT_TRUE(probe_once(make_check(server_.url("/body"), "body_contains = \"green\"\n")).ok());
  EXPECT_EQ(probe_once(make_check(server_.url("/body"), "body_contains = \"red\"\n")).failure,
            FailureKind::body);
  EXPECT_TRUE(
      probe_once(make_check(server_.url("/body"), "body_regex = \"status: (green|amber)\"\n"))
          .ok());
  EXPECT_EQ(probe_once(make_check(server_.url("/body"), "body_regex = \"^red\"\n")).failure,
            FailureKind::body);
}

TEST_F(HttpProbeTest, HeadRequestHasNoBody) {
  Observation o = probe_once(make_check(server_.url("/200"), "method = \"HEAD\"\n"));
  EXPECT_TRUE(o.ok()) << o.summary;
  EXPECT_TRUE(o.http.body_head.empty());
}

TEST_F(HttpProbeTest, TransientFailureRecoveredDuringConfirmation) {
  server_.set_mode(Mode::fail);
  boost::asio::io_context io;
  sys::HttpClient http(io);
  sys::UnitWatcher units(io);  // unused by HTTP probes; part of every probe's context
  auto probe = std::make_shared<HttpProbe>(
      ProbeContext{io, http, units, "/tmp"},
      make_check(server_.url("/health"), "confirm_interval = \"300ms\"\n"));
  std::optional<Observation> out;
  probe->run([&](Observation o) { out = std::move(o); });
  // Heal the server while the probe waits to confirm.
  boost::asio::steady_timer heal(io, 100ms);
  heal.async_wait([&](auto) { server_.set_mode(Mode::ok); });
  io.run_for(10s);
  ASSERT_TRUE(out);
  EXPECT_TRUE(out->ok()) << out->summary;
  EXPECT_EQ(out->http.attempts, 2);
  EXPECT_NE(out->summary.find("after 1 failed attempt"), std::string::npos) << out->summary;
}

TEST_F(HttpProbeTest, CancelledProbeNeverCallsBack) {
  boost::asio::io_context io;
  sys::HttpClient http(io);
  sys::UnitWatcher units(io);  // unused by HTTP probes; part of every probe's context
  auto probe = std::make_shared<HttpProbe>(ProbeContext{io, http, units, "/tmp"},
                                           make_check(server_.url("/slow?ms=500")));
  bool called = false;
  probe->run([&](Observation) { called = true; });
  boost::asio::steady_timer t(io, 50ms);
  t.async_wait([&](auto) { probe->cancel(); });
  io.run_for(3s);
  EXPECT_FALSE(called);
  EXPECT_EQ(http.in_flight(), 0u);
  EXPECT_TRUE(io.stopped()) << "nothing may be left running after a cancel";
}

TEST_F(HttpProbeTest, ManyConcurrentRequestsAllComplete) {
  boost::asio::io_context io;
  sys::HttpClient http(io);
  sys::UnitWatcher units(io);  // unused by HTTP probes; part of every probe's context
  int done = 0, ok = 0;
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    sys::HttpRequest req;
    req.url = server_.url(i % 2 == 0 ? "/200" : "/slow?ms=20");
    req.timeout = 5s;
    http.start(req, [&](sys::HttpResponse r) {
      ++done;
      if (r.transport == FailureKind::none && r.status == 200) ++ok;
    });
  }
  io.run_for(20s);
  EXPECT_EQ(done, kRequests);
  EXPECT_EQ(ok, kRequests);
}

// TLS verification is on by default: a self-signed certificate is a clear "tls" failure, and
// verify_tls = false accepts it.
TEST(HttpsProbeTest, SelfSignedCertificateFailsVerification) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("vigil-tls-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string key = (dir / "key.pem").string(), cert = (dir / "cert.pem").string();
  auto [rc, out] =
      testing::run_command({"/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1"});
  ASSERT_EQ(rc, 0) << out;
  const int port = free_port();
  testing::Child server({"/usr/bin/openssl", "s_server", "-accept",
                         "127.0.0.1:" + std::to_string(port), "-key", key, "-cert", cert, "-www",
                         "-quiet"});
  // Wait for the listener.
  for (int i = 0; i < 100; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool up = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    if (up) break;
    usleep(50'000);
  }
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + "/";
  Observation bad = probe_once(make_check(url, "confirm = 0\n"));
  EXPECT_EQ(bad.failure, FailureKind::tls) << bad.summary;
  EXPECT_NE(bad.summary.find("TLS failed"), std::string::npos) << bad.summary;
  EXPECT_NE(bad.http.error.find("certificate"), std::string::npos) << bad.http.error;
  Observation accepted = probe_once(make_check(url, "confirm = 0\nverify_tls = false\n"));
  EXPECT_TRUE(accepted.ok()) << accepted.summary;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil
