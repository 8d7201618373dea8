// The metrics HTTP server on real sockets on 127.0.0.1: the server runs on the io_context on the
// test's thread, clients (libcurl easy, raw sockets) on a std::thread.
#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/metrics.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;

// Generous, for loaded CI machines; only a hang reaches them.
constexpr long kClientTimeoutSeconds = 15;

struct Fetched {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string content_type;
  std::string headers;
  std::string body;
};

std::size_t append_to(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct FetchOptions {
  std::string method = "GET";  // GET, HEAD, POST
  bool http10 = false;
};

Fetched fetch(const std::string& url, const FetchOptions& options = {}) {
  Fetched f;
  CURL* e = curl_easy_init();
  if (e == nullptr) throw std::runtime_error("curl_easy_init failed");
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT, kClientTimeoutSeconds);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &append_to);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &f.body);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &append_to);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &f.headers);
  if (options.method == "HEAD") curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (options.method == "POST") curl_easy_setopt(e, CURLOPT_POSTFIELDS, "a=1");
  if (options.http10) curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_0);
  f.rc = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &f.status);
  char* type = nullptr;
  if (curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
    f.content_type = type;
  }
  curl_easy_cleanup(e);
  return f;
}

// A blocking TCP client on 127.0.0.1 with receive and send timeouts; -1 on failure.
int connect_to(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{};
  tv.tv_sec = kClientTimeoutSeconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    // MSG_NOSIGNAL: the server may close first; that must fail the send, not kill the test.
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

// Everything the server sends until it closes (or an error / the timeout).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

// Sends `request` on a fresh connection and returns the raw answer.
std::string exchange(std::uint16_t port, const std::string& request) {
  const int fd = connect_to(port);
  if (fd < 0) return "connect failed";
  send_all(fd, request);
  shutdown(fd, SHUT_WR);  // the request is complete: the server sees EOF after it
  std::string answer = read_all(fd);
  close(fd);
  return answer;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    snapshot_.version = "9.9.9";
    snapshot_.start_time_seconds = 1700000000;
    histogram_.observe(12ms);
    snapshot_.checks.push_back({"web", "http", "ok", std::nullopt, &histogram_, 1, 0});
    const Result<bool> r = server_.listen("127.0.0.1:0");
    ASSERT_TRUE(r) << r.error().message;
    ASSERT_NE(server_.port(), 0);
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_.port()) + path;
  }

  // Runs `client` on a thread while the loop serves on this one; then stops the server from the
  // loop and expects io.run() to return because no work is left.
  void serve_while(const std::function<void()>& client) {
    std::thread t([&] {
      client();
      boost::asio::post(io_, [this] { server_.stop(); });
    });
    io_.run_for(120s);  // a safety net only: the loop ends long before when stop() works
    t.join();
    EXPECT_TRUE(io_.stopped()) << "the loop still had work after stop()";
    EXPECT_EQ(server_.port(), 0);
  }

  boost::asio::io_context io_;
  LatencyHistogram histogram_;
  MetricsSnapshot snapshot_;
  int renders_ = 0;  // touched on the loop thread only, read after it ends
  MetricsServer server_{io_, [this] {
                          ++renders_;
                          return render_metrics(snapshot_);
                        }};
};

TEST_F(MetricsServerTest, GetMetrics) {
  Fetched f, q, v10;
  serve_while([&] {
    f = fetch(url("/metrics"));
    q = fetch(url("/metrics?name[]=vigil_check_up"));
    v10 = fetch(url("/metrics"), {.method = "GET", .http10 = true});
  });
  const std::string expected = render_metrics(snapshot_);
  for (const Fetched* r : {&f, &q, &v10}) {
    EXPECT_EQ(r->rc, CURLE_OK) << curl_easy_strerror(r->rc);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(r->body, expected);
    EXPECT_NE(r->headers.find("Content-Length: " + std::to_string(expected.size()) + "\r\n"),
              std::string::npos)
        << r->headers;
    EXPECT_NE(r->headers.find("Connection: close\r\n"), std::string::npos) << r->headers;
  }
  EXPECT_NE(f.body.find("vigil_build_info{version=\"9.9.9\"} 1\n"), std::string::npos);
  EXPECT_EQ(renders_, 3);
}

TEST_F(MetricsServerTest, HeadHasLengthButNoBody) {
  std::string raw;
  serve_while([&] { raw = exchange(server_.port(), "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); });
  const std::size_t length = render_metrics(snapshot_).size();
  EXPECT_TRUE(starts_with(raw, "HTTP/1.1 200 OK\r\n")) << raw;
  EXPECT_NE(raw.find("Content-Length: " + std::to_string(length) + "\r\n"), std::string::npos);
  ASSERT_GE(raw.size(), 4u);
  EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n") << "a HEAD answer ends with its head";
}

TEST_F(MetricsServerTest, OtherPathsAre404) {
  Fetched root, other, prefix;
  serve_while([&] {
    root = fetch(url("/"));
    other = fetch(url("/metricsx"));
    prefix = fetch(url("/metrics/x"));
  });
  EXPECT_EQ(root.status, 404);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(prefix.status, 404);
  EXPECT_EQ(renders_, 0);
}

TEST_F(MetricsServerTest, OtherMethodsAre405) {
  Fetched post;
  std::string del;
  serve_while([&] {
    post = fetch(url("/metrics"), {.method = "POST"});
    del = exchange(server_.port(), "DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  });
  EXPECT_EQ(post.rc, CURLE_OK) << curl_easy_strerror(post.rc);
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET, HEAD\r\n"), std::string::npos) << post.headers;
  EXPECT_TRUE(starts_with(del, "HTTP/1.1 405 ")) << del;
  EXPECT_EQ(renders_, 0);
}

TEST_F(MetricsServerTest, OversizedHeadIs431) {
  std::string raw, endless;
  serve_while([&] {
    raw = exchange(server_.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                       std::string(16 * 1024, 'a') + "\r\n\r\n");
    // No end of head at all, just bytes.
    endless = exchange(server_.port(), std::string(64 * 1024, 'G'));
  });
  EXPECT_TRUE(starts_with(raw, "HTTP/1.1 431 ")) << raw.substr(0, 100);
  EXPECT_TRUE(starts_with(endless, "HTTP/1.1 431 ")) << endless.substr(0, 100);
  EXPECT_EQ(renders_, 0);
}

// The start of a TLS ClientHello (someone scraping with https://), then an empty line.
constexpr char kTlsHello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";

TEST_F(MetricsServerTest, GarbageNeverCrashesTheServer) {
  std::vector<std::string> answers;
  Fetched after;
  serve_while([&] {
    for (const std::string& req : {
             std::string("\r\n\r\n"),
             std::string("GET\r\n\r\n"),
             std::string("GET /metrics\r\n\r\n"),
             std::string("GET  /metrics HTTP/1.1\r\n\r\n"),
             std::string("GET /metrics HTTP/1.1 extra\r\n\r\n"),
             std::string("GET /metrics HTTP/x.y\r\n\r\n"),
             std::string("G\x01T /metrics HTTP/1.1\r\n\r\n"),
             std::string("GET /met\x7frics HTTP/1.1\r\n\r\n"),
             std::string(kTlsHello, sizeof kTlsHello - 1),
             std::string("\0\0\0\0\n\n", 6),
         }) {
      answers.push_back(exchange(server_.port(), req));
    }
    // Connections that close mid-head, or before sending anything.
    answers.push_back(exchange(server_.port(), "GET /metr"));
    close(connect_to(server_.port()));
    after = fetch(url("/metrics"));
  });
  for (std::size_t i = 0; i + 1 < answers.size(); ++i) {
    EXPECT_TRUE(starts_with(answers[i], "HTTP/1.1 400 ")) << i << ": " << answers[i];
  }
  EXPECT_EQ(after.status, 200) << "the server still serves after the garbage";
}

TEST_F(MetricsServerTest, VersionsAndLineEnds) {
  std::string v2, lf, v10;
  serve_while([&] {
    v2 = exchange(server_.port(), "GET /metrics HTTP/2.0\r\n\r\n");
    lf = exchange(server_.port(), "GET /metrics HTTP/1.1\nHost: x\n\n");
    v10 = exchange(server_.port(), "\r\nGET /metrics HTTP/1.0\r\n\r\n");
  });
  EXPECT_TRUE(starts_with(v2, "HTTP/1.1 505 ")) << v2;
  EXPECT_TRUE(starts_with(lf, "HTTP/1.1 200 ")) << lf.substr(0, 100);
  EXPECT_TRUE(starts_with(v10, "HTTP/1.1 200 ")) << v10.substr(0, 100);
}

TEST_F(MetricsServerTest, FailingRenderIs500) {
  MetricsServer failing(io_, []() -> std::string { throw std::runtime_error("boom"); });
  ASSERT_TRUE(failing.listen("127.0.0.1:0"));
  Fetched f;
  serve_while([&] {
    f = fetch("http://127.0.0.1:" + std::to_string(failing.port()) + "/metrics");
    boost::asio::post(io_, [&] { failing.stop(); });
  });
  EXPECT_EQ(f.status, 500);
}

TEST_F(MetricsServerTest, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  std::string refused;
  Fetched after;
  serve_while([&] {
    std::vector<int> idle;
    for (int i = 0; i < 16; ++i) idle.push_back(connect_to(server_.port()));
    // The server accepts in order, so it holds the 16 idle ones when this one arrives.
    refused = exchange(server_.port(), "GET /metrics HTTP/1.1\r\n\r\n");
    for (int fd : idle) close(fd);
    // Once the server has seen the idle ones go, it serves again.
    for (int i = 0; i < 100 && after.status != 200; ++i) {
      if (i > 0) std::this_thread::sleep_for(50ms);
      after = fetch(url("/metrics"));
    }
  });
  EXPECT_EQ(refused, "") << "the 17th connection must be closed without an answer";
  EXPECT_EQ(after.status, 200);
}

TEST_F(MetricsServerTest, SilentClientIsDisconnected) {
  std::string got = "not run";
  serve_while([&] {
    const int fd = connect_to(server_.port());
    got = read_all(fd);  // returns at EOF: the server gave up waiting for a head
    close(fd);
  });
  EXPECT_EQ(got, "");
}

TEST_F(MetricsServerTest, StopClosesOpenConnections) {
  std::vector<std::string> got;
  std::thread t([&] {
    std::vector<int> fds;
    for (int i = 0; i < 3; ++i) fds.push_back(connect_to(server_.port()));
    send_all(fds[0], "GET /metr");  // a partial head
    // Stop while those connections are open; each then sees EOF long before any timeout.
    boost::asio::post(io_, [this] { server_.stop(); });
    for (int fd : fds) {
      got.push_back(read_all(fd));
      close(fd);
    }
  });
  io_.run_for(120s);
  t.join();
  EXPECT_TRUE(io_.stopped()) << "stop() must leave no work on the loop";
  EXPECT_EQ(got, std::vector<std::string>(3, ""));
  EXPECT_EQ(server_.connections(), 0u);
}

TEST(MetricsServerListen, RefusesNonLoopbackAndBadAddresses) {
  boost::asio::io_context io;
  MetricsServer server(io, [] { return std::string(); });
  for (const char* address : {"0.0.0.0:0", "192.0.2.1:9", "[::]:0"}) {
    const Result<bool> r = server.listen(address);
    ASSERT_FALSE(r) << address;
    EXPECT_NE(r.error().message.find("not a loopback address"), std::string::npos)
        << r.error().message;
    EXPECT_EQ(server.port(), 0);
  }
  EXPECT_FALSE(server.listen("localhost:9717"));
  EXPECT_FALSE(server.listen("127.0.0.1"));
}

TEST(MetricsServerListen, PortInUseAndTwiceAreErrors) {
  boost::asio::io_context io;
  MetricsServer first(io, [] { return std::string(); });
  ASSERT_TRUE(first.listen("127.0.0.1:0"));
  const std::string taken = "127.0.0.1:" + std::to_string(first.port());

  const Result<bool> again = first.listen("127.0.0.1:0");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already listening"), std::string::npos);

  MetricsServer second(io, [] { return std::string(); });
  const Result<bool> busy = second.listen(taken);
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.error().message.find(taken), std::string::npos) << busy.error().message;

  // After stop() the port is free and listen() works again.
  first.stop();
  EXPECT_EQ(first.port(), 0);
  const Result<bool> rebound = second.listen(taken);
  EXPECT_TRUE(rebound) << rebound.error().message;
}

TEST(MetricsServerListen, Ipv6Loopback) {
  boost::asio::io_context io;
  MetricsServer server(io, [] { return std::string("x 1\n"); });
  const Result<bool> r = server.listen("[::1]:0");
  if (!r) GTEST_SKIP() << "no IPv6 loopback here: " << r.error().message;
  Fetched f;
  std::thread t([&] {
    f = fetch("http://[::1]:" + std::to_string(server.port()) + "/metrics");
    boost::asio::post(io, [&] { server.stop(); });
  });
  io.run_for(120s);
  t.join();
  EXPECT_TRUE(io.stopped());
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.body, "x 1\n");
}

}  // namespace
}  // namespace vigil
