// HttpClient's lean path (agent/sys/http_plain.h) against a scripted server on 127.0.0.1: the
// cases where a hand-driven HTTP/1.1 client goes wrong (kept-alive connections the server
// closed, answers without a length, chunked bodies, interim answers, truncation), and which
// requests take the lean path at all.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/sys/http.h"
#include "agent/sys/http_plain.h"
#include "tests/support/http_server.h"

namespace vigil::sys {
namespace {

using namespace std::chrono_literals;

// What the server does with one request: the bytes it writes back, then whether it closes.
struct Reply {
  std::string bytes;
  bool close = false;
  bool silent = false;  // write nothing and keep the connection open (a hung server)
};

// A blocking server on a thread of its own: each connection is served in turn, request by
// request, by `script(connection number, request number on it, request head)`.
class ScriptedServer {
 public:
  using Script = std::function<Reply(int conn, int request, const std::string& head)>;

  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        listen(listener_, 16) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t len = sizeof a;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~ScriptedServer() {
    stopping_ = true;
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
    std::lock_guard lock(mu_);
    for (int fd : open_) close(fd);
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_; }
  std::vector<std::string> heads() const {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void serve() {
    while (!stopping_) {
      const int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      const int conn = connections_++;
      std::thread([this, fd, conn] { serve_connection(fd, conn); }).detach();
    }
  }

  void serve_connection(int fd, int conn) {
    std::string in;
    char buf[4096];
    for (int request = 0;; ++request) {
      std::size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          close(fd);
          return;
        }
        in.append(buf, static_cast<std::size_t>(n));
      }
      const std::string head = in.substr(0, end + 4);
      in.erase(0, end + 4);
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
      const Reply r = script_(conn, request, head);
      if (r.silent) {
        std::lock_guard lock(mu_);
        open_.push_back(fd);
        return;
      }
      (void)!write(fd, r.bytes.data(), r.bytes.size());
      if (r.close) {
        close(fd);
        return;
      }
    }
  }

  Script script_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::vector<std::string> heads_;
  std::vector<int> open_;
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

// Sends `req` through a client and runs the loop until the answer.
HttpResponse fetch(HttpClient& client, boost::asio::io_context& io, const HttpRequest& req) {
  std::optional<HttpResponse> out;
  client.start(req, [&](HttpResponse r) { out = std::move(r); });
  io.restart();
  while (!out && io.run_one_for(5s) > 0) {
  }
  EXPECT_TRUE(out.has_value()) << "no answer";
  return out.value_or(HttpResponse{});
}

HttpRequest get(const std::string& url) {
  HttpRequest r;
  r.url = url;
  r.timeout = 2s;
  return r;
}

TEST(HttpPlainTarget, OnlyPlainGetAndHeadToAnAddressTakeTheLeanPath) {
  EXPECT_TRUE(plain_target(get("http://127.0.0.1:8080/health")));
  EXPECT_TRUE(plain_target(get("http://127.0.0.1/health?x=1")));
  EXPECT_TRUE(plain_target(get("http://[::1]:8080/")));
  EXPECT_TRUE(plain_target(get("http://10.1.2.3")));
  EXPECT_FALSE(plain_target(get("https://127.0.0.1/health")));
  EXPECT_FALSE(plain_target(get("http://localhost:8080/health")));  // a name: curl resolves it
  EXPECT_FALSE(plain_target(get("http://127.1/health")));           // curl reads it its own way
  EXPECT_FALSE(plain_target(get("http://010.0.0.1/health")));       // octal to some parsers
  EXPECT_FALSE(plain_target(get("http://user@127.0.0.1/health")));
  EXPECT_FALSE(plain_target(get("http://[fe80::1%25eth0]/")));
  EXPECT_FALSE(plain_target(get("http://127.0.0.1:99999/")));
  EXPECT_FALSE(plain_target(get("http://127.0.0.1:/")));
  EXPECT_FALSE(plain_target(get("http://127.0.0.1/caf\xc3\xa9")));
  HttpRequest post = get("http://127.0.0.1/");
  post.method = HttpMethod::post;
  EXPECT_FALSE(plain_target(post));
  HttpRequest host = get("http://127.0.0.1/");
  host.headers = {{"Host", "example.org"}};
  EXPECT_FALSE(plain_target(host));  // curl replaces its own Host header with this one
}

TEST(HttpPlainTarget, RequestIsWhatCurlWouldSend) {
  HttpRequest r = get("http://127.0.0.1:8080/health?deep=1#frag");
  r.headers = {{"Authorization", "Bearer x"}};
  const auto t = plain_target(r);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->endpoint.port(), 8080);
  EXPECT_EQ(
      t->request,
      "GET /health?deep=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: vigil/" VIGIL_VERSION
      "\r\nAccept: */*\r\nAuthorization: Bearer x\r\n\r\n");
  r = get("http://[::1]?q");
  r.method = HttpMethod::head;
  EXPECT_EQ(plain_target(r)->request.substr(0, 37), "HEAD /?q HTTP/1.1\r\nHost: [::1]\r\nUser-");
  // An IPv4-mapped address connects over IPv4 but is named as written.
  const auto mapped = plain_target(get("http://[::ffff:127.0.0.1]:81/"));
  ASSERT_TRUE(mapped);
  EXPECT_TRUE(mapped->endpoint.address().is_v4());
  EXPECT_NE(mapped->request.find("Host: [::ffff:127.0.0.1]:81\r\n"), std::string::npos);
}

TEST(HttpPlain, KeptAliveConnectionIsReused) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{kOk}; });
  boost::asio::io_context io;
  HttpClient client(io);
  for (int i = 0; i < 3; ++i) {
    const HttpResponse r = fetch(client, io, get(server.url("/health")));
    EXPECT_EQ(r.transport, FailureKind::none) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "ok");
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(server.heads().at(0).substr(0, 21), "GET /health HTTP/1.1\r");
}

// The server closes every connection after its answer without saying so: the next request
// meets a closed connection and must be sent again on a fresh one, not reported as a failure.
TEST(HttpPlain, ConnectionClosedBetweenRequestsIsRetriedOnAFreshOne) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{kOk, true}; });
  boost::asio::io_context io;
  HttpClient client(io);
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(20ms);  // the close has arrived before the next request
    const HttpResponse r = fetch(client, io, get(server.url("/health")));
    EXPECT_EQ(r.transport, FailureKind::none) << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpPlain, AFreshConnectionThatGetsNoAnswerIsAReset) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{"", true}; });
  boost::asio::io_context io;
  HttpClient client(io);
  const HttpResponse r = fetch(client, io, get(server.url("/health")));
  EXPECT_EQ(r.transport, FailureKind::reset);
  EXPECT_EQ(r.error, "Empty reply from server");
  EXPECT_EQ(server.connections(), 1);  // no retry: the connection was new
}

TEST(HttpPlain, ConnectionCloseAnswerIsNotReused) {
  ScriptedServer server([](int, int, const std::string&) {
    return Reply{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  for (int i = 0; i < 2; ++i) {
    const HttpResponse r = fetch(client, io, get(server.url("/")));
    EXPECT_EQ(r.status, 200) << r.error;
  }
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpPlain, BodyWithoutLengthEndsAtTheClose) {
  ScriptedServer server([](int, int, const std::string&) {
    return Reply{"HTTP/1.0 503 Service Unavailable\r\n\r\npool exhausted", true};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  const HttpResponse r = fetch(client, io, get(server.url("/")));
  EXPECT_EQ(r.transport, FailureKind::none) << r.error;
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "pool exhausted");
}

TEST(HttpPlain, ChunkedBodyAndInterimAnswerAndRetryAfter) {
  ScriptedServer server([](int, int, const std::string&) {
    return Reply{
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nslow \r\n5\r\ndown!\r\n0\r\n\r\n"};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  const HttpResponse r = fetch(client, io, get(server.url("/")));
  EXPECT_EQ(r.transport, FailureKind::none) << r.error;
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.body, "slow down!");
  EXPECT_EQ(r.retry_after, "120");
  const HttpResponse again = fetch(client, io, get(server.url("/")));
  EXPECT_EQ(again.status, 429);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpPlain, LongBodyIsCutToTheLimitAndTheConnectionStaysUsable) {
  const std::string big(200 * 1024, 'x');
  ScriptedServer server([&](int, int, const std::string&) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" +
                 big};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  HttpRequest req = get(server.url("/"));
  req.body_limit = 1000;
  for (int i = 0; i < 2; ++i) {
    const HttpResponse r = fetch(client, io, req);
    EXPECT_EQ(r.transport, FailureKind::none) << r.error;
    EXPECT_EQ(r.body, std::string(1000, 'x'));
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpPlain, TruncatedBodyIsAReset) {
  ScriptedServer server([](int, int, const std::string&) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this", true};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  const HttpResponse r = fetch(client, io, get(server.url("/")));
  EXPECT_EQ(r.transport, FailureKind::reset);
  EXPECT_NE(r.error.find("before the answer was complete"), std::string::npos) << r.error;
}

TEST(HttpPlain, HungServerTimesOutAndTheClientIsIdleAfterwards) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{"", false, true}; });
  boost::asio::io_context io;
  HttpClient client(io);
  HttpRequest req = get(server.url("/"));
  req.timeout = 200ms;
  const HttpResponse r = fetch(client, io, req);
  EXPECT_EQ(r.transport, FailureKind::timeout);
  EXPECT_EQ(r.error, "Operation timed out after 200 milliseconds with 0 bytes received");
  EXPECT_GE(r.total, 200ms);
  EXPECT_EQ(client.in_flight(), 0u);
  io.restart();
  io.run_for(1s);
  EXPECT_TRUE(io.stopped()) << "nothing may be left pending after a timeout";
}

// One timer serves every request's deadline: a shorter timeout started after a longer one must
// still fire on time, and the longer one later, each with its own figure.
TEST(HttpPlain, EachRequestTimesOutAtItsOwnDeadline) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{"", false, true}; });
  boost::asio::io_context io;
  HttpClient client(io);
  std::optional<HttpResponse> slow, fast, late;
  HttpRequest slow_req = get(server.url("/slow"));
  slow_req.timeout = 900ms;
  HttpRequest fast_req = get(server.url("/fast"));
  fast_req.timeout = 150ms;
  client.start(slow_req, [&](HttpResponse r) { slow = std::move(r); });
  client.start(fast_req, [&](HttpResponse r) {
    fast = std::move(r);
    // Started from a timeout's callback, with the 900 ms one still waiting.
    HttpRequest late_req = get(server.url("/late"));
    late_req.timeout = 200ms;
    client.start(late_req, [&](HttpResponse r2) { late = std::move(r2); });
  });
  const auto t0 = std::chrono::steady_clock::now();
  while (!fast && io.run_one_for(5s) > 0) {
  }
  ASSERT_TRUE(fast.has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 800ms) << "the shorter deadline waited";
  EXPECT_EQ(fast->error, "Operation timed out after 150 milliseconds with 0 bytes received");
  EXPECT_FALSE(slow.has_value());
  while (!late && io.run_one_for(5s) > 0) {
  }
  ASSERT_TRUE(late.has_value());
  EXPECT_EQ(late->transport, FailureKind::timeout);
  EXPECT_FALSE(slow.has_value()) << "the 200 ms request after 150 ms ends before 900 ms";
  io.restart();
  io.run_for(3s);
  ASSERT_TRUE(slow.has_value());
  EXPECT_EQ(slow->error, "Operation timed out after 900 milliseconds with 0 bytes received");
  EXPECT_GE(slow->total, 900ms);
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_TRUE(io.stopped()) << "nothing may be left pending after the last timeout";
}

TEST(HttpPlain, CancelledRequestNeverCallsBack) {
  ScriptedServer server([](int, int, const std::string&) { return Reply{"", false, true}; });
  boost::asio::io_context io;
  HttpClient client(io);
  bool called = false;
  const auto id = client.start(get(server.url("/")), [&](HttpResponse) { called = true; });
  io.run_for(50ms);
  client.cancel(id);
  io.restart();
  io.run_for(1s);
  EXPECT_FALSE(called);
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_TRUE(io.stopped());
}

TEST(HttpPlain, GarbageIsAProtocolError) {
  ScriptedServer server([](int, int, const std::string&) {
    return Reply{"SSH-2.0-OpenSSH_9.2\r\n\r\n", true};
  });
  boost::asio::io_context io;
  HttpClient client(io);
  const HttpResponse r = fetch(client, io, get(server.url("/")));
  EXPECT_EQ(r.transport, FailureKind::protocol) << r.error;
}

TEST(HttpPlain, RefusedConnectionIsRefusedAndNotCalledBackInsideStart) {
  const int port = testing::free_port();
  boost::asio::io_context io;
  HttpClient client(io);
  std::optional<HttpResponse> out;
  client.start(get("http://127.0.0.1:" + std::to_string(port) + "/"),
               [&](HttpResponse r) { out = std::move(r); });
  EXPECT_FALSE(out.has_value());
  io.run_for(2s);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->transport, FailureKind::refused) << out->error;
  EXPECT_NE(out->error.find("Failed to connect to 127.0.0.1 port "), std::string::npos);
}

}  // namespace
}  // namespace vigil::sys
