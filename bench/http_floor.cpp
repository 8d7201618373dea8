// http_floor: the least any HTTP prober must do, as the floor vigil's probing is measured
// against (bench/http_checks.sh). N checks, each with its own kept-alive HTTP/1.1 connection;
// one epoll loop over non-blocking sockets and one periodic timerfd; every interval each check
// sends one GET and reads the reply far enough to know its status and where it ends
// (Content-Length or chunked). No TLS, no DNS, no timeouts, no allocation per probe: what is
// left is the kernel's work (the loopback round trip and the wake-ups), which every prober pays.
//
// Checks are spread over a 10 ms grid inside the interval, as vigil spreads its first runs, so
// the two make the same number of wake-ups. Also drives blackbox_exporter's /probe at the same
// rate (a path template with {i}).
//
// Usage: http_floor --port P [--checks N] [--interval-ms MS] [--path TEMPLATE]
//   TEMPLATE defaults to "/health?i={i}". Runs until SIGINT/SIGTERM, then prints its counts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kSlotMs = 10;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct Conn {
  int fd = -1;
  bool connected = false;
  bool busy = false;     // a request is out, its reply not read to the end yet
  std::string request;   // built once
  std::string in;        // bytes of the reply read so far
  std::size_t need = 0;  // when known: total bytes of the reply (head + body)
  bool chunked = false;
};

struct Counts {
  unsigned long long sent = 0, replies = 0, ok = 0, skipped = 0, errors = 0;
};

sockaddr_in g_addr{};
int g_epoll = -1;
Counts g_counts;

bool iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    const char a = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] + 32) : text[i];
    if (a != prefix[i]) return false;
  }
  return true;
}

void close_conn(Conn& c) {
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
  c.connected = false;
  c.busy = false;
  c.in.clear();
  c.need = 0;
  c.chunked = false;
}

bool open_conn(Conn& c, std::uint32_t index) {
  c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return false;
  const int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c.fd, reinterpret_cast<const sockaddr*>(&g_addr), sizeof g_addr) != 0 &&
      errno != EINPROGRESS) {
    close_conn(c);
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.u32 = index;
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, c.fd, &ev);
  return true;
}

// The size of a chunked body at the start of `body`, once its last chunk is in; else 0.
std::size_t chunked_size(std::string_view body) {
  std::size_t at = 0;
  for (;;) {
    const std::size_t eol = body.find("\r\n", at);
    if (eol == std::string_view::npos) return 0;
    const unsigned long len =
        std::strtoul(std::string(body.substr(at, eol - at)).c_str(), nullptr, 16);
    at = eol + 2 + len + 2;
    if (at > body.size()) return 0;
    if (len == 0) return at;
  }
}

// Reads what is there; once the reply is complete, `c` is ready for its next request.
void on_readable(Conn& c) {
  char buf[16384];
  for (;;) {
    const ssize_t n = read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ++g_counts.errors;  // closed or failed: reconnect at its next turn
    close_conn(c);
    return;
  }
  if (!c.busy) return;
  if (c.need == 0) {
    const std::size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) return;
    const std::string_view head(c.in.data(), end);
    std::size_t body_len = 0;
    for (std::size_t at = head.find("\r\n"); at != std::string_view::npos;
         at = head.find("\r\n", at + 2)) {
      const std::string_view line = head.substr(at + 2);
      if (iequals_prefix(line, "content-length:")) {
        body_len = std::strtoul(std::string(line.substr(15, 20)).c_str(), nullptr, 10);
      } else if (iequals_prefix(line, "transfer-encoding: chunked")) {
        c.chunked = true;
      }
    }
    c.need = end + 4 + body_len;
  }
  if (c.chunked) {
    const std::size_t size = chunked_size(std::string_view(c.in).substr(c.need));
    if (size == 0) return;
    c.need += size;
    c.chunked = false;
  }
  if (c.in.size() < c.need) return;
  ++g_counts.replies;
  if (c.in.size() > 9 && c.in.compare(0, 5, "HTTP/") == 0 && c.in[9] == '2') ++g_counts.ok;
  c.in.erase(0, c.need);
  c.need = 0;
  c.busy = false;
}

void send_request(Conn& c, std::uint32_t index) {
  if (c.busy) {
    ++g_counts.skipped;
    return;
  }
  if (c.fd < 0 && !open_conn(c, index)) {
    ++g_counts.errors;
    return;
  }
  c.busy = true;
  ++g_counts.sent;
  if (!c.connected) return;  // sent when the connect completes (EPOLLOUT)
  const ssize_t n = write(c.fd, c.request.data(), c.request.size());
  if (n != static_cast<ssize_t>(c.request.size())) {
    ++g_counts.errors;
    close_conn(c);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, checks = 1000, interval_ms = 1000;
  std::string path = "/health?i={i}";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view a = argv[i];
    if (a == "--port")
      port = std::atoi(argv[i + 1]);
    else if (a == "--checks")
      checks = std::atoi(argv[i + 1]);
    else if (a == "--interval-ms")
      interval_ms = std::atoi(argv[i + 1]);
    else if (a == "--path")
      path = argv[i + 1];
    else
      port = 0;
  }
  if (port <= 0 || port > 65535 || checks <= 0 || interval_ms < kSlotMs) {
    std::fprintf(stderr, "usage: http_floor --port P [--checks N] [--interval-ms MS] [--path T]\n");
    return 2;
  }
  // One socket per check: raise the descriptor limit as far as allowed.
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  signal(SIGPIPE, SIG_IGN);

  g_addr.sin_family = AF_INET;
  g_addr.sin_port = htons(static_cast<std::uint16_t>(port));
  g_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  g_epoll = epoll_create1(EPOLL_CLOEXEC);

  std::vector<Conn> conns(static_cast<std::size_t>(checks));
  for (int i = 0; i < checks; ++i) {
    std::string target = path;
    if (const auto at = target.find("{i}"); at != std::string::npos) {
      target.replace(at, 3, std::to_string(i + 1));
    }
    conns[static_cast<std::size_t>(i)].request =
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
        "\r\nUser-Agent: http_floor\r\nAccept: */*\r\n\r\n";
  }

  const int timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  itimerspec period{};
  period.it_value.tv_nsec = kSlotMs * 1'000'000L;
  period.it_interval.tv_nsec = kSlotMs * 1'000'000L;
  timerfd_settime(timer, 0, &period, nullptr);
  epoll_event tev{};
  tev.events = EPOLLIN;
  tev.data.u32 = UINT32_MAX;
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, timer, &tev);

  const int slots = interval_ms / kSlotMs;
  int slot = 0;
  std::vector<epoll_event> events(1024);
  while (!g_stop) {
    const int n = epoll_wait(g_epoll, events.data(), static_cast<int>(events.size()), -1);
    for (int e = 0; e < n; ++e) {
      const std::uint32_t id = events[static_cast<std::size_t>(e)].data.u32;
      if (id == UINT32_MAX) {
        std::uint64_t expirations = 0;
        if (read(timer, &expirations, sizeof expirations) != sizeof expirations) continue;
        for (std::uint64_t x = 0; x < expirations; ++x) {
          for (int i = slot; i < checks; i += slots) {
            send_request(conns[static_cast<std::size_t>(i)], static_cast<std::uint32_t>(i));
          }
          slot = (slot + 1) % slots;
        }
        continue;
      }
      Conn& c = conns[id];
      if (c.fd < 0) continue;
      const std::uint32_t what = events[static_cast<std::size_t>(e)].events;
      if (!c.connected && (what & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          ++g_counts.errors;
          close_conn(c);
          continue;
        }
        c.connected = true;
        if (c.busy) {
          c.busy = false;
          --g_counts.sent;
          send_request(c, id);
        }
      }
      if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
  std::fprintf(stderr,
               "http_floor: sent %llu, replies %llu (2xx %llu), skipped %llu, errors %llu\n",
               g_counts.sent, g_counts.replies, g_counts.ok, g_counts.skipped, g_counts.errors);
  return 0;
}
