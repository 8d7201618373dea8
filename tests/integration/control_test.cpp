// The control socket on real Unix sockets in a fresh directory under /tmp: the server runs on the
// io_context on the test's thread, clients (control_request, raw sockets, a forked child running
// as nobody) on another thread or process.
#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "agent/control.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Generous, for loaded CI machines; only a hang reaches them.
constexpr int kClientTimeoutSeconds = 30;
constexpr int kClientTimeoutMs = kClientTimeoutSeconds * 1000;
// The server's limits (agent/control.cpp), restated: the tests go just past them.
constexpr std::size_t kMaxRequest = 64 * 1024;
constexpr std::size_t kMaxReply = 8 << 20;
constexpr int kMaxConnections = 16;
// nobody/nogroup: an unprivileged uid for the root-only cases.
constexpr unsigned kNobody = 65534;

bool contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

// A blocking Unix stream client with receive and send timeouts; -1 on failure.
int connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{};
  tv.tv_sec = kClientTimeoutSeconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
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

struct Received {
  std::string data;
  int error = 0;  // 0: the server closed (EOF); else the errno that ended the read
};

// Everything the server sends until it closes, or an error (EAGAIN: our timeout ran out).
Received read_all(int fd) {
  Received r;
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) r.error = errno;
    if (n <= 0) return r;
    r.data.append(buf, static_cast<std::size_t>(n));
  }
}

// Sends `request` raw on a fresh connection and returns the raw answer.
std::string send_line(const std::string& path, const std::string& request) {
  const int fd = connect_unix(path);
  if (fd < 0) return "connect failed";
  send_all(fd, request);
  Received r = read_all(fd);
  close(fd);
  if (r.error != 0) return "read failed: " + std::string(std::strerror(r.error));
  return r.data;
}

// control_request's answer, or its error as "error: <message>".
std::string request_text(const std::string& path, const json& request) {
  Result<json> r = control_request(path, request, kClientTimeoutMs);
  return r ? r->dump() : "error: " + r.error().message;
}

// A child process that runs a client as nobody (uid and gid 65534, no supplementary groups) and
// writes its result to a pipe. Fork it while the test has no other thread.
struct NobodyChild {
  pid_t pid = -1;
  int out = -1;
};

NobodyChild fork_as_nobody(const std::function<std::string()>& client) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {};
  const pid_t pid = fork();
  if (pid < 0) {
    close(p[0]);
    close(p[1]);
    return {};
  }
  if (pid == 0) {
    close(p[0]);
    std::string result;
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      result = "skip: cannot become uid 65534 here: " + std::string(std::strerror(errno));
    } else {
      result = client();
    }
    for (std::size_t done = 0; done < result.size();) {
      const ssize_t n = write(p[1], result.data() + done, result.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    _exit(0);
  }
  close(p[1]);
  return {pid, p[0]};
}

// What the child wrote, once it has exited.
std::string collect(const NobodyChild& child) {
  if (child.pid < 0) return "fork failed";
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(child.out, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  close(child.out);
  int status = 0;
  while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return out;
}

// A leftover socket file nobody listens on, as a crashed daemon leaves it.
bool make_stale_socket(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd, 1) == 0;
  close(fd);
  return ok;
}

class ControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/vigil-control-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr) << std::strerror(errno);
    dir_ = dir;
    path_ = dir_ + "/control.sock";
  }

  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Test commands: "echo" answers with the request, "throw" throws a std::exception, "throw-int"
  // throws something else.
  json handle(const json& request, const ControlPeer& peer) {
    requests_.push_back(request);
    peers_.push_back(peer);
    const std::string cmd = request.value("cmd", "");
    if (cmd == "throw") throw std::runtime_error("boom");
    if (cmd == "throw-int") throw 42;
    if (cmd == "incidents" && request.contains("reply_bytes")) {
      return {{"ok", true}, {"blob", std::string(request["reply_bytes"].get<std::size_t>(), 'x')}};
    }
    return {{"ok", true}, {"echo", request}};
  }

  // Runs `client` on a thread while the loop serves on this one; then stops the server from the
  // loop and expects the loop to end because no work is left.
  void serve_while(const std::function<void()>& client) {
    std::thread t([&] {
      client();
      boost::asio::post(io_, [this] { server_.stop(); });
    });
    io_.run_for(120s);  // a safety net only: the loop ends long before when stop() works
    t.join();
    EXPECT_TRUE(io_.stopped()) << "the loop still had work after stop()";
  }

  boost::asio::io_context io_;
  std::string dir_;
  std::string path_;
  // Touched on the loop thread only, read after it ends.
  std::vector<json> requests_;
  std::vector<ControlPeer> peers_;
  ControlServer server_{io_, [this](const json& r, const ControlPeer& p) { return handle(r, p); }};
};

TEST_F(ControlTest, RequestGetsTheAnswerAndThePeer) {
  const Result<bool> r = server_.listen(path_);
  ASSERT_TRUE(r) << r.error().message;
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u) << "root and the vigil group only";

  Result<json> reply = make_error("not run");
  std::string raw;
  serve_while([&] {
    reply = control_request(path_, {{"cmd", "echo"}, {"x", 1}}, kClientTimeoutMs);
    raw = send_line(path_, "{\"cmd\":\"echo\",\"y\":\"two\"}\n");
  });
  ASSERT_TRUE(reply) << reply.error().message;
  EXPECT_EQ(reply->value("ok", false), true);
  EXPECT_EQ((*reply)["echo"], json({{"cmd", "echo"}, {"x", 1}}));
  // One JSON line, then the server closes.
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw.back(), '\n');
  EXPECT_EQ(raw.find('\n'), raw.size() - 1) << raw;
  EXPECT_EQ(json::parse(raw, nullptr, false)["echo"]["y"], "two") << raw;

  ASSERT_EQ(peers_.size(), 2u);
  for (const ControlPeer& p : peers_) {
    EXPECT_EQ(p.uid, getuid());
    EXPECT_EQ(p.gid, getgid());
    EXPECT_EQ(p.pid, getpid());
  }
}

TEST_F(ControlTest, PeerCredentialsOfAnotherUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as uid 65534";
  const Result<bool> r = server_.listen(path_);
  ASSERT_TRUE(r) << r.error().message;
  // Let anyone in, so the credentials (not the file mode) are what this case sees.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);

  // nogroup reads, as the vigil group would.
  server_.set_access(ControlAccess{kNobody, std::nullopt, ""});
  const NobodyChild child = fork_as_nobody([&] {
    return request_text(path_, {{"cmd", "status"}});
  });
  ASSERT_GT(child.pid, 0);
  std::string got;
  serve_while([&] { got = collect(child); });
  if (got.rfind("skip:", 0) == 0) GTEST_SKIP() << got;
  const json reply = json::parse(got, nullptr, false);
  ASSERT_TRUE(reply.is_object()) << got;
  EXPECT_EQ(reply.value("ok", false), true) << got;
  ASSERT_EQ(peers_.size(), 1u);
  EXPECT_EQ(peers_[0].uid, kNobody);
  EXPECT_EQ(peers_[0].gid, kNobody);
  EXPECT_EQ(peers_[0].pid, child.pid);
}

TEST_F(ControlTest, NonJsonLinesAreErrorsAndTheServerKeepsServing) {
  ASSERT_TRUE(server_.listen(path_));
  std::vector<std::string> answers;
  std::string after;
  const std::vector<std::string> bad = {
      "not json\n",
      "\n",
      "[1,2]\n",
      "\"cmd\"\n",
      "42\n",
      "{\"cmd\":\n",
      "{\"cmd\":\"echo\"} {\"cmd\":\"echo\"}\n",
      "{\"cmd\":\"\xff\xfe\"}\n",
      std::string("\0\0\0\n", 4),
  };
  serve_while([&] {
    for (const std::string& line : bad) answers.push_back(send_line(path_, line));
    // Connections that close mid-line, or before sending anything.
    const int partial = connect_unix(path_);
    send_all(partial, "{\"cmd\":");
    close(partial);
    close(connect_unix(path_));
    after = request_text(path_, {{"cmd", "echo"}});
  });
  ASSERT_EQ(answers.size(), bad.size());
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const json reply = json::parse(answers[i], nullptr, false);
    ASSERT_TRUE(reply.is_object()) << i << ": " << answers[i];
    EXPECT_EQ(reply.value("ok", true), false) << i << ": " << answers[i];
    EXPECT_FALSE(reply.value("error", "").empty()) << i << ": " << answers[i];
  }
  EXPECT_TRUE(contains(after, "\"ok\":true")) << after;
  EXPECT_EQ(requests_.size(), 1u) << "only the valid request reaches the handler";
}

TEST_F(ControlTest, ThrowingHandlerIsAnInternalError) {
  ASSERT_TRUE(server_.listen(path_));
  Result<json> thrown = make_error("not run");
  Result<json> thrown_other = make_error("not run");
  std::string after;
  serve_while([&] {
    thrown = control_request(path_, {{"cmd", "throw"}}, kClientTimeoutMs);
    thrown_other = control_request(path_, {{"cmd", "throw-int"}}, kClientTimeoutMs);
    after = request_text(path_, {{"cmd", "echo"}});
  });
  for (const Result<json>* r : {&thrown, &thrown_other}) {
    ASSERT_TRUE(*r) << r->error().message;
    EXPECT_EQ((*r)->value("ok", true), false);
    EXPECT_TRUE(contains((*r)->value("error", ""), "internal error")) << (*r)->dump();
  }
  EXPECT_TRUE(contains(thrown->value("error", ""), "boom")) << thrown->dump();
  EXPECT_TRUE(contains(after, "\"ok\":true")) << after;
  EXPECT_EQ(requests_.size(), 3u);
}

TEST_F(ControlTest, StaleSocketFileIsReplaced) {
  ASSERT_TRUE(make_stale_socket(path_));
  struct stat st {};
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  ASSERT_TRUE(S_ISSOCK(st.st_mode));
  const Result<json> before = control_request(path_, {{"cmd", "echo"}}, kClientTimeoutMs);
  ASSERT_FALSE(before);
  EXPECT_TRUE(contains(before.error().message, "vigil is not running")) << before.error().message;

  const Result<bool> r = server_.listen(path_);
  ASSERT_TRUE(r) << r.error().message;
  std::string got;
  serve_while([&] { got = request_text(path_, {{"cmd", "echo"}}); });
  EXPECT_TRUE(contains(got, "\"ok\":true")) << got;
}

TEST_F(ControlTest, SecondServerOnALiveSocketRefuses) {
  ASSERT_TRUE(server_.listen(path_));
  {
    ControlServer second(io_, [](const json&, const ControlPeer&) { return json{{"ok", true}}; });
    const Result<bool> r = second.listen(path_);
    ASSERT_FALSE(r);
    EXPECT_TRUE(contains(r.error().message, "another vigil")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, path_)) << r.error().message;
  }  // the refused server's destructor must leave the live socket alone
  EXPECT_TRUE(std::filesystem::exists(path_));
  std::string got;
  serve_while([&] { got = request_text(path_, {{"cmd", "echo"}}); });
  EXPECT_TRUE(contains(got, "\"ok\":true")) << "the first server still answers: " << got;
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(ControlTest, MissingSocketSaysNotRunning) {
  for (const std::string& path : {path_, dir_ + "/no/such/dir/control.sock"}) {
    const Result<json> r = control_request(path, {{"cmd", "status"}}, kClientTimeoutMs);
    ASSERT_FALSE(r) << path;
    EXPECT_TRUE(contains(r.error().message, "vigil is not running")) << r.error().message;
    EXPECT_TRUE(contains(r.error().message, path)) << r.error().message;
  }
}

TEST_F(ControlTest, SocketOfRootIsDeniedToOtherUsers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to own the socket and run a client as 65534";
  ASSERT_TRUE(server_.listen(path_));
  // The directory lets anyone through, so the socket's own mode is what denies.
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chown(path_.c_str(), 0, 0), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0600), 0);

  const NobodyChild child = fork_as_nobody([&] { return request_text(path_, {{"cmd", "echo"}}); });
  ASSERT_GT(child.pid, 0);
  std::string got;
  serve_while([&] { got = collect(child); });
  if (got.rfind("skip:", 0) == 0) GTEST_SKIP() << got;
  EXPECT_TRUE(contains(got, "error: ")) << got;
  EXPECT_TRUE(contains(got, "permission denied")) << got;
  EXPECT_TRUE(requests_.empty());
}

TEST_F(ControlTest, OversizedRequestIsDropped) {
  ASSERT_TRUE(server_.listen(path_));
  std::string big, raw, after;
  serve_while([&] {
    // Through the client: its newline comes only after the limit. Big enough that the client is
    // still writing when the server gives up: that must be an error, not a SIGPIPE.
    big = request_text(path_, {{"cmd", "echo"}, {"blob", std::string(4 * kMaxRequest, 'a')}});
    // Raw: no newline at all, just bytes past the limit.
    const int fd = connect_unix(path_);
    send_all(fd, std::string(kMaxRequest + 1024, '{'));
    const Received r = read_all(fd);
    close(fd);
    raw = r.data + (r.error == 0 || r.error == ECONNRESET ? "" : "read failed");
    after = request_text(path_, {{"cmd", "echo"}});
  });
  EXPECT_TRUE(contains(big, "error: ")) << big.substr(0, 200);
  EXPECT_EQ(raw, "") << "an oversized request gets no answer";
  EXPECT_TRUE(contains(after, "\"ok\":true")) << "the server survives: " << after;
  EXPECT_EQ(requests_.size(), 1u);
}

TEST_F(ControlTest, StopClosesTheAcceptorAndUnlinksTheSocket) {
  ASSERT_TRUE(server_.listen(path_));
  ASSERT_TRUE(std::filesystem::exists(path_));
  std::string before;
  Received idle;
  bool exists_after_stop = true;
  std::thread t([&] {
    const int fd = connect_unix(path_);  // an idle connection, open across stop()
    before = request_text(path_, {{"cmd", "echo"}});
    boost::asio::post(io_, [this] { server_.stop(); });
    idle = read_all(fd);  // EOF: stop() closed it
    close(fd);
    exists_after_stop = std::filesystem::exists(path_);
  });
  io_.run_for(120s);  // a safety net: with stop() working the loop runs out of work
  t.join();
  EXPECT_TRUE(io_.stopped()) << "stop() must leave no work on the loop";
  EXPECT_TRUE(contains(before, "\"ok\":true")) << before;
  EXPECT_EQ(idle.error, 0) << std::strerror(idle.error);
  EXPECT_EQ(idle.data, "");
  EXPECT_FALSE(exists_after_stop) << "stop() unlinks the socket";

  const Result<json> gone = control_request(path_, {{"cmd", "echo"}}, kClientTimeoutMs);
  ASSERT_FALSE(gone);
  EXPECT_TRUE(contains(gone.error().message, "vigil is not running")) << gone.error().message;
  server_.stop();  // twice is harmless

  // And it can listen again on the same path.
  io_.restart();
  const Result<bool> again = server_.listen(path_);
  ASSERT_TRUE(again) << again.error().message;
  std::string got;
  serve_while([&] { got = request_text(path_, {{"cmd", "echo"}}); });
  EXPECT_TRUE(contains(got, "\"ok\":true")) << got;
}

// Takes about the server's 5 s request deadline: the idle connections must time out first.
TEST_F(ControlTest, ConnectionsBeyondTheLimitAreClosedUntilIdleOnesTimeOut) {
  ASSERT_TRUE(server_.listen(path_));
  std::vector<int> idle;
  std::string refused;
  Received over_limit_raw;
  std::vector<Received> idle_ends;
  std::string after;
  serve_while([&] {
    for (int i = 0; i < kMaxConnections; ++i) idle.push_back(connect_unix(path_));
    // The server accepts in order, so it holds the 16 idle ones when these arrive.
    refused = request_text(path_, {{"cmd", "echo"}});
    const int fd = connect_unix(path_);
    over_limit_raw = read_all(fd);
    close(fd);
    // The idle ones send nothing, so the server drops each at its request deadline...
    for (int f : idle) {
      idle_ends.push_back(read_all(f));
      close(f);
    }
    // ...and then serves again.
    after = request_text(path_, {{"cmd", "echo"}});
  });
  for (int f : idle) EXPECT_GE(f, 0) << "an idle connection failed to connect";
  EXPECT_TRUE(contains(refused, "error: ")) << "the 17th connection gets no answer: " << refused;
  EXPECT_EQ(over_limit_raw.error, 0) << std::strerror(over_limit_raw.error);
  EXPECT_EQ(over_limit_raw.data, "");
  ASSERT_EQ(idle_ends.size(), static_cast<std::size_t>(kMaxConnections));
  for (const Received& r : idle_ends) {
    EXPECT_EQ(r.error, 0) << "the server closes an idle connection: " << std::strerror(r.error);
    EXPECT_EQ(r.data, "");
  }
  EXPECT_TRUE(contains(after, "\"ok\":true")) << after;
  EXPECT_EQ(requests_.size(), 1u) << "only the request after the timeouts was served";
}

// Issue 13: the kernel's credentials decide per command. nobody in the read group may ask for
// the status but not ack; nothing reaches the handler that was refused.
TEST_F(ControlTest, ReadersCannotChangeStateAndAdminsCan) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as uid 65534";
  ASSERT_TRUE(server_.listen(path_));
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);
  server_.set_access(ControlAccess{kNobody, std::nullopt, ""});
  const NobodyChild reader = fork_as_nobody([&] {
    return request_text(path_, {{"cmd", "status"}}) + "\n" +
           request_text(path_, {{"cmd", "ack"}, {"id", "x"}}) + "\n" +
           request_text(path_, {{"cmd", "maintain"}, {"for_ms", 1000}}) + "\n" +
           request_text(path_, {{"cmd", "echo"}});
  });
  ASSERT_GT(reader.pid, 0);
  std::string got;
  serve_while([&] { got = collect(reader); });
  if (got.rfind("skip:", 0) == 0) GTEST_SKIP() << got;
  EXPECT_TRUE(contains(got, "\"ok\":true")) << got;
  EXPECT_TRUE(contains(got,
                       "permission denied: 'ack' changes what vigil does; uid 65534 must "
                       "be root (or set [agent] admin_group and join that group)"))
      << got;
  EXPECT_TRUE(contains(got, "permission denied: 'maintain'")) << got;
  EXPECT_TRUE(contains(got, "permission denied: unknown command for uid 65534")) << got;
  ASSERT_EQ(requests_.size(), 1u) << "a refused command reached the handler";
  EXPECT_EQ(requests_[0]["cmd"], "status");
}

TEST_F(ControlTest, TheAdminGroupMayAck) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as uid 65534";
  ASSERT_TRUE(server_.listen(path_));
  ASSERT_EQ(chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(chmod(path_.c_str(), 0666), 0);
  server_.set_access(ControlAccess{std::nullopt, kNobody, "nogroup"});
  const NobodyChild admin = fork_as_nobody([&] {
    return request_text(path_, {{"cmd", "ack"}, {"id", "x"}});
  });
  ASSERT_GT(admin.pid, 0);
  std::string got;
  serve_while([&] { got = collect(admin); });
  if (got.rfind("skip:", 0) == 0) GTEST_SKIP() << got;
  EXPECT_TRUE(contains(got, "\"ok\":true")) << got;
  ASSERT_EQ(requests_.size(), 1u);
  ASSERT_EQ(peers_.size(), 1u);
  EXPECT_EQ(peers_[0].uid, kNobody);
}

TEST_F(ControlTest, EachCommandHasItsRequestLimit) {
  ASSERT_TRUE(server_.listen(path_));
  std::string ack, maintain;
  serve_while([&] {
    ack = request_text(path_, {{"cmd", "ack"}, {"id", std::string(2000, 'a')}});
    maintain = request_text(path_, {{"cmd", "maintain"}, {"reason", std::string(2000, 'a')}});
  });
  EXPECT_TRUE(contains(ack, "over the limit of 1024 for this command")) << ack;
  EXPECT_TRUE(contains(maintain, "\"ok\":true")) << maintain;
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0]["cmd"], "maintain");
}

TEST_F(ControlTest, OversizedRepliesAreRefusedWithAReason) {
  ASSERT_TRUE(server_.listen(path_));
  std::string big, fits;
  serve_while([&] {
    big = request_text(path_, {{"cmd", "incidents"}, {"reply_bytes", kMaxReply}});
    fits = request_text(path_, {{"cmd", "incidents"}, {"reply_bytes", 1 << 20}});
  });
  EXPECT_TRUE(contains(big, "over the control socket's limit")) << big.substr(0, 200);
  EXPECT_TRUE(contains(fits, "\"ok\":true")) << fits.substr(0, 200);
}

// A client that asks for a big answer and never reads it holds one connection until the reply
// deadline, never the loop: another client is answered meanwhile.
TEST_F(ControlTest, ASlowReaderDoesNotStallOthers) {
  ASSERT_TRUE(server_.listen(path_));
  std::string other;
  Received slow;
  serve_while([&] {
    const int fd = connect_unix(path_);
    ASSERT_GE(fd, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_all(fd, json{{"cmd", "incidents"}, {"reply_bytes", 4 << 20}}.dump() + "\n");
    other = request_text(path_, {{"cmd", "status"}});
    // Now read: the server closed it at its reply deadline, or it is still there; either way
    // the other client was served first.
    slow = read_all(fd);
    close(fd);
  });
  EXPECT_TRUE(contains(other, "\"ok\":true")) << other;
  EXPECT_EQ(requests_.size(), 2u);
}

}  // namespace
}  // namespace vigil
