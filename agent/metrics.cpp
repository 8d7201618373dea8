#include "agent/metrics.h"

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <algorithm>
#include <boost/asio.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <unordered_set>

#include "agent/sys/log.h"

namespace vigil {

// ---------------------------------------------------------------------------------------------
// Histogram

void LatencyHistogram::observe(Duration d) {
  d = std::max(d, Duration(0));
  // First bucket whose bound is >= d (bounds are inclusive); past the last one: +Inf.
  const auto it = std::lower_bound(kBounds.begin(), kBounds.end(), d);
  ++buckets_[static_cast<std::size_t>(it - kBounds.begin())];
  ++count_;
  sum_ += d;
}

std::array<std::uint64_t, LatencyHistogram::kBucketCount> LatencyHistogram::cumulative() const {
  std::array<std::uint64_t, kBucketCount> out{};
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    running += buckets_[i];
    out[i] = running;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Text format

namespace {

// A sample value as the text format reads it (Go's ParseFloat): integral values as integers
// ("1", "10", "1700000000"), others in the shortest form that reads back exactly ("0.005").
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Below 2^53 every integer is exact, so "%.0f" loses nothing.
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    char buf[32];
    const int n = std::snprintf(buf, sizeof buf, "%.0f", v);
    return std::string(buf, static_cast<std::size_t>(n));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string seconds(Duration d) { return format_value(static_cast<double>(d.count()) / 1000.0); }

// Label values may hold any UTF-8; the format escapes only these three.
void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

// HELP text escapes backslash and line feed (not the double quote).
void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

struct Label {
  std::string_view name;
  std::string_view value;
};

class Writer {
 public:
  // Starts a metric family. Every family gets its HELP and TYPE, even without samples, so the
  // page always documents the same set of metrics.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    append_help(out_, help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, std::initializer_list<Label> labels, std::string_view value,
              std::optional<Label> extra = std::nullopt) {
    out_ += name;
    if (labels.size() != 0 || extra) {
      out_ += '{';
      bool first = true;
      auto add = [&](const Label& l) {
        if (!first) out_ += ',';
        first = false;
        out_ += l.name;
        out_ += "=\"";
        append_label_value(out_, l.value);
        out_ += '"';
      };
      for (const Label& l : labels) add(l);
      if (extra) add(*extra);
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string_view known_state(std::string_view state) {
  for (std::string_view s : kCheckStates) {
    if (s == state) return s;
  }
  return "unknown";
}

}  // namespace

std::string render_metrics(const MetricsSnapshot& s) {
  using MC = MetricsSnapshot::Check;
  Writer w;
  auto u = [](std::uint64_t n) { return std::to_string(n); };

  w.family("vigil_build_info", "gauge", "vigil's version; the value is always 1.");
  w.sample("vigil_build_info", {{"version", s.version}}, "1");
  w.family("vigil_start_time_seconds", "gauge", "Unix time the vigil daemon started, in seconds.");
  w.sample("vigil_start_time_seconds", {}, format_value(s.start_time_seconds));

  w.family("vigil_check_up", "gauge",
           "1 when the check passes, 0 when it is firing, flapping or unknown.");
  for (const MC& c : s.checks) {
    w.sample("vigil_check_up", {{"check", c.name}, {"probe", c.probe}},
             known_state(c.state) == "ok" ? "1" : "0");
  }
  w.family("vigil_check_state", "gauge",
           "The check's state: 1 for the current one of ok, firing, flapping, unknown; 0 for the "
           "others.");
  for (const MC& c : s.checks) {
    const std::string_view current = known_state(c.state);
    for (std::string_view state : kCheckStates) {
      w.sample("vigil_check_state", {{"check", c.name}, {"probe", c.probe}, {"state", state}},
               state == current ? "1" : "0");
    }
  }
  w.family("vigil_check_severity", "gauge",
           "Severity of the check's finding while it has one: 1 = SEV1, 2 = SEV2, 3 = SEV3.");
  for (const MC& c : s.checks) {
    if (!c.severity) continue;
    w.sample("vigil_check_severity", {{"check", c.name}, {"probe", c.probe}},
             std::to_string(static_cast<int>(*c.severity)));
  }
  w.family("vigil_check_runs_total", "counter", "Probe runs of the check since vigil started.");
  for (const MC& c : s.checks) {
    w.sample("vigil_check_runs_total", {{"check", c.name}, {"probe", c.probe}}, u(c.runs));
  }
  w.family("vigil_check_failures_total", "counter",
           "Probe runs of the check that failed since vigil started.");
  for (const MC& c : s.checks) {
    w.sample("vigil_check_failures_total", {{"check", c.name}, {"probe", c.probe}}, u(c.failures));
  }

  w.family("vigil_probe_duration_seconds", "histogram",
           "How long the check's probe runs took, in seconds.");
  for (const MC& c : s.checks) {
    if (c.latency == nullptr) continue;
    const auto counts = c.latency->cumulative();
    for (std::size_t i = 0; i < LatencyHistogram::kBucketCount; ++i) {
      const std::string le = i < LatencyHistogram::kBounds.size()
                                 ? seconds(LatencyHistogram::kBounds[i])
                                 : std::string("+Inf");
      w.sample("vigil_probe_duration_seconds_bucket", {{"check", c.name}, {"probe", c.probe}},
               u(counts[i]), Label{"le", le});
    }
    w.sample("vigil_probe_duration_seconds_sum", {{"check", c.name}, {"probe", c.probe}},
             seconds(c.latency->sum()));
    w.sample("vigil_probe_duration_seconds_count", {{"check", c.name}, {"probe", c.probe}},
             u(c.latency->count()));
  }

  w.family("vigil_incidents_open", "gauge", "Incidents open now, by severity.");
  for (Severity sev : {Severity::sev1, Severity::sev2, Severity::sev3}) {
    const auto it = s.open_incidents.find(sev);
    w.sample("vigil_incidents_open", {{"severity", to_string(sev)}},
             std::to_string(it == s.open_incidents.end() ? 0 : it->second));
  }
  w.family("vigil_incidents_opened_total", "counter", "Incidents opened since vigil started.");
  w.sample("vigil_incidents_opened_total", {}, u(s.incidents_opened));

  w.family("vigil_mitigations_total", "counter",
           "Mitigation steps recorded in timelines since vigil started, by action (KIND:NAME; "
           "empty for an escalation past the last rung) and outcome (started, ok, verified, "
           "failed, skipped, dry_run, waiting, escalated).");
  for (const auto& [key, n] : s.mitigations) {
    w.sample("vigil_mitigations_total", {{"action", key.first}, {"outcome", key.second}}, u(n));
  }
  w.family("vigil_pages_total", "counter",
           "Pages sent since vigil started, by notifier and outcome.");
  for (const auto& [key, n] : s.pages) {
    w.sample("vigil_pages_total", {{"notifier", key.first}, {"outcome", key.second}}, u(n));
  }
  w.family("vigil_protection_read_errors_total", "counter",
           "Failed reads of a never-block source (host addresses, gateways, SSH sessions, ufw "
           "allow rules); blocks are held while one fails.");
  w.sample("vigil_protection_read_errors_total", {}, u(s.protection_read_errors));

  w.family("vigil_fleet_etcd_up", "gauge",
           "1 when the fleet budget's last request to etcd got a usable answer; 0 when etcd could "
           "not be reached, refused it or answered something unusable (capped actions hold, or "
           "act without a slot, per [fleet] unreachable).");
  if (s.fleet)
    w.sample("vigil_fleet_etcd_up", {{"fleet", s.fleet->name}}, s.fleet->etcd_up ? "1" : "0");
  w.family("vigil_fleet_slot_held", "gauge",
           "1 while this host holds a slot of the fleet's budget for the action; 0 when it asked "
           "for one and holds none now. Sum by (fleet, action) for the hosts acting now.");
  if (s.fleet) {
    std::set<std::string> actions = s.fleet->held;
    for (const auto& [key, n] : s.fleet->answers) actions.insert(key.first);
    for (const std::string& a : actions) {
      w.sample("vigil_fleet_slot_held", {{"fleet", s.fleet->name}, {"action", a}},
               s.fleet->held.count(a) > 0 ? "1" : "0");
    }
  }
  w.family("vigil_fleet_slot_requests_total", "counter",
           "Slots of the fleet's budget asked for, by action and answer (granted, full: the cap "
           "is reached, unavailable: etcd could not be asked); since the budget started.");
  if (s.fleet) {
    for (const auto& [key, n] : s.fleet->answers) {
      w.sample("vigil_fleet_slot_requests_total",
               {{"fleet", s.fleet->name}, {"action", key.first}, {"answer", key.second}}, u(n));
    }
  }
  return w.take();
}

// ---------------------------------------------------------------------------------------------
// Server

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;

// A scraper's request head is a few hundred bytes; 8 KiB leaves room for curl by hand with
// extra headers and caps what one connection can make us buffer.
constexpr std::size_t kMaxHeadBytes = 8 * 1024;
// A local scraper sends its head right after connecting; 5 s is generous for that, and short
// enough that clients which connect and send nothing cannot hold the connection slots.
constexpr Duration kHeadTimeout = std::chrono::seconds(5);
// Prometheus' default scrape_timeout: a client that has not taken the answer by then has given
// up, and its copy of the page is freed.
constexpr Duration kWriteTimeout = std::chrono::seconds(10);
// After answering we read and drop what the client still sends until it closes: closing with
// unread input resets the connection, which can destroy the answer before the client reads it
// (a 431 sent while the client is still sending its oversized head). 1 s bounds that.
constexpr Duration kLingerTimeout = std::chrono::seconds(1);
// Prometheus scrapes one request at a time (two with an HA pair); 16 leaves room for operators'
// curls while bounding memory to 16 heads and pages.
constexpr std::size_t kMaxConnections = 16;
// After an accept error (EMFILE, ENFILE, ENOBUFS) retry after a pause instead of spinning.
constexpr Duration kAcceptRetry = std::chrono::milliseconds(100);

using HeadIterator = asio::buffers_iterator<asio::streambuf::const_buffers_type>;

// async_read_until match condition: the end of the head, i.e. an empty line. Accepts bare LF
// line ends as well as CRLF (RFC 9112 2.2 allows recipients to).
std::pair<HeadIterator, bool> end_of_head(HeadIterator begin, HeadIterator end) {
  for (HeadIterator it = begin; it != end; ++it) {
    if (*it != '\n') continue;
    HeadIterator next = it + 1;
    if (next == end) return {it, false};  // resume at this LF when more arrives
    if (*next == '\n') return {next + 1, true};
    if (*next == '\r') {
      if (next + 1 == end) return {it, false};
      if (*(next + 1) == '\n') return {next + 2, true};
    }
  }
  return {end, false};
}

struct Response {
  int status = 200;
  std::string_view reason = "OK";
  std::string_view content_type = "text/plain; charset=utf-8";
  std::string extra_headers;  // each ending in CRLF
  std::string body;
  bool head_only = false;  // HEAD: headers (with the body's length) but no body

  std::string to_string() const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                      "\r\nContent-Type: " + std::string(content_type) +
                      "\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n" + extra_headers + "\r\n";
    if (!head_only) out += body;
    return out;
  }
};

Response error_response(int status, std::string_view reason) {
  Response r;
  r.status = status;
  r.reason = reason;
  r.body = std::string(reason) + "\n";
  return r;
}

// RFC 9110 token characters, for the method.
bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// Visible ASCII only: no spaces, control bytes or non-ASCII in a request target.
bool is_target(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    const auto b = static_cast<unsigned char>(c);
    return b > 0x20 && b < 0x7f;
  });
}

// Answers one request head. Only the request line matters: we serve one resource and close the
// connection after answering, so no header changes the answer.
Response answer(std::string_view head, const MetricsServer::Render& render) {
  while (!head.empty() && (head.front() == '\r' || head.front() == '\n')) head.remove_prefix(1);
  std::string_view line = head.substr(0, head.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // "METHOD SP TARGET SP VERSION", single spaces.
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return error_response(400, "Bad Request");
  }
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method) || !is_target(target)) return error_response(400, "Bad Request");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      !std::isdigit(static_cast<unsigned char>(version[5])) ||
      !std::isdigit(static_cast<unsigned char>(version[7]))) {
    return error_response(400, "Bad Request");
  }
  if (version[5] != '1') return error_response(505, "HTTP Version Not Supported");

  const bool head_only = method == "HEAD";
  const std::string_view path = target.substr(0, target.find('?'));
  Response r;
  if (path != "/metrics") {
    r = error_response(404, "Not Found");
  } else if (method != "GET" && !head_only) {
    r = error_response(405, "Method Not Allowed");
    r.extra_headers = "Allow: GET, HEAD\r\n";
  } else {
    try {
      r.body = render();
      r.content_type = kMetricsContentType;
    } catch (const std::exception& e) {
      // Nothing throws out of an Asio handler: a failing render is a 500, not a crash.
      sys::log_error(std::string("metrics: rendering failed: ") + e.what());
      r = error_response(500, "Internal Server Error");
    }
  }
  r.head_only = head_only;
  return r;
}

struct Conn;

}  // namespace

struct MetricsServer::Impl : std::enable_shared_from_this<MetricsServer::Impl> {
  Impl(asio::io_context& ctx, Render r)
      : io(ctx), render(std::move(r)), acceptor(ctx), retry(ctx) {}

  void accept();
  void stop();

  asio::io_context& io;
  Render render;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  // Bumped by stop(): completions of an earlier listen() are dropped.
  std::uint64_t generation = 0;
  bool accept_failing = false;  // logged once per run of errors
  // Open connections; each removes itself when destroyed.
  std::unordered_set<Conn*> conns;
};

namespace {

// One connection: read the head, answer, linger, close. Always closed after one answer.
struct Conn : std::enable_shared_from_this<Conn> {
  Conn(std::shared_ptr<MetricsServer::Impl> owner, tcp::socket s)
      : server(std::move(owner)), sock(std::move(s)), deadline(server->io), head(kMaxHeadBytes) {
    server->conns.insert(this);
  }
  ~Conn() { server->conns.erase(this); }

  void start() {
    arm_deadline(kHeadTimeout);
    asio::async_read_until(
        sock, head, &end_of_head,
        [self = shared_from_this()](error_code ec, std::size_t n) { self->on_head(ec, n); });
  }

  void on_head(error_code ec, std::size_t n) {
    if (closed) return;
    if (ec == asio::error::not_found) {
      // The buffer is full and still no end of head.
      Response r = error_response(431, "Request Header Fields Too Large");
      return send(r.to_string());
    }
    if (ec) return close();  // EOF before a whole head, reset, ...
    const std::string text(asio::buffers_begin(head.data()), asio::buffers_begin(head.data()) + n);
    head.consume(head.size());
    std::string reply = answer(text, server->render).to_string();
    if (closed) return;  // render() stopped the server
    send(std::move(reply));
  }

  void send(std::string text) {
    out = std::move(text);
    arm_deadline(kWriteTimeout);
    asio::async_write(sock, asio::buffer(out), [self = shared_from_this()](error_code ec, auto) {
      if (self->closed) return;
      if (ec) return self->close();
      self->out.clear();
      self->out.shrink_to_fit();
      self->linger();
    });
  }

  void linger() {
    error_code ignored;
    sock.shutdown(tcp::socket::shutdown_send, ignored);
    arm_deadline(kLingerTimeout);
    drain();
  }

  void drain() {
    sock.async_read_some(asio::buffer(scratch), [self = shared_from_this()](error_code ec, auto) {
      if (self->closed) return;
      if (ec) return self->close();  // EOF: the client is done
      self->drain();
    });
  }

  void arm_deadline(Duration d) {
    deadline.expires_after(d);
    deadline.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->closed) return;
      // Re-armed after this wait had already completed: not our deadline.
      if (self->deadline.expiry() > asio::steady_timer::clock_type::now()) return;
      self->close();
    });
  }

  // Idempotent. Pending operations complete with operation_aborted and see `closed`.
  void close() {
    if (closed) return;
    closed = true;
    error_code ignored;
    deadline.cancel();
    sock.close(ignored);
  }

  std::shared_ptr<MetricsServer::Impl> server;  // outlives every connection
  tcp::socket sock;
  asio::steady_timer deadline;
  asio::streambuf head;
  std::string out;
  std::array<char, 512> scratch{};
  bool closed = false;
};

}  // namespace

void MetricsServer::Impl::accept() {
  acceptor.async_accept(
      [self = shared_from_this(), gen = generation](error_code ec, tcp::socket sock) {
        if (gen != self->generation || ec == asio::error::operation_aborted) return;
        if (ec) {
          if (!self->accept_failing) {
            self->accept_failing = true;
            sys::log_warning("metrics: accept failed: " + ec.message() + "; retrying");
          }
          self->retry.expires_after(kAcceptRetry);
          self->retry.async_wait([self, gen](error_code wait_ec) {
            if (!wait_ec && gen == self->generation) self->accept();
          });
          return;
        }
        self->accept_failing = false;
        if (self->conns.size() >= kMaxConnections) {
          error_code ignored;
          sock.close(ignored);
        } else {
          std::make_shared<Conn>(self, std::move(sock))->start();
        }
        self->accept();
      });
}

void MetricsServer::Impl::stop() {
  ++generation;
  error_code ignored;
  acceptor.close(ignored);
  retry.cancel();
  // Hold each connection while closing them all, so none is destroyed under the loop.
  std::vector<std::shared_ptr<Conn>> open;
  open.reserve(conns.size());
  for (Conn* c : conns) open.push_back(c->shared_from_this());
  for (const auto& c : open) c->close();
}

MetricsServer::MetricsServer(asio::io_context& io, Render render)
    : impl_(std::make_shared<Impl>(io, std::move(render))) {}

MetricsServer::~MetricsServer() { impl_->stop(); }

Result<bool> MetricsServer::listen(const std::string& address) {
  Result<ListenAddress> parsed = parse_listen_address(address);
  if (!parsed) return parsed.error();
  const std::string what = "metrics listen on " + address + ": ";
  if (impl_->acceptor.is_open()) {
    return make_error(what + "already listening on port " + std::to_string(port()));
  }
  asio::ip::address ip;
  if (parsed->ip.family == IpAddress::Family::v4) {
    ip = asio::ip::address_v4(asio::ip::address_v4::bytes_type{
        parsed->ip.bytes[0], parsed->ip.bytes[1], parsed->ip.bytes[2], parsed->ip.bytes[3]});
  } else {
    asio::ip::address_v6::bytes_type b{};
    std::copy(parsed->ip.bytes.begin(), parsed->ip.bytes.end(), b.begin());
    ip = asio::ip::address_v6(b);
  }
  const tcp::endpoint endpoint(ip, parsed->port);
  tcp::acceptor& a = impl_->acceptor;
  error_code ec;
  a.open(endpoint.protocol(), ec);
  // A restarted daemon must be able to bind again while old connections sit in TIME_WAIT.
  if (!ec) a.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    a.close(ignored);
    return make_error(what + ec.message());
  }
  impl_->accept();
  return true;
}

std::uint16_t MetricsServer::port() const {
  error_code ec;
  const tcp::endpoint e = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : e.port();
}

void MetricsServer::stop() { impl_->stop(); }

std::size_t MetricsServer::connections() const { return impl_->conns.size(); }

}  // namespace vigil
