#include "agent/sys/http_plain.h"

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "agent/core/ip.h"

namespace vigil::sys {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Why 128: the same number of idle connections libcurl's cache keeps (http.cpp), enough for
// the concurrency of a thousand staggered checks to one host.
constexpr std::size_t kMaxIdleConnections = 128;
// Why 100 KiB: libcurl's own limit for a response's header block (CURL_MAX_HTTP_HEADER).
constexpr std::uint32_t kHeaderLimit = 100 * 1024;
// Why 4 KiB: one read takes a health answer whole; longer ones take more reads. Each
// connection has its own (Asio reads into it when the socket becomes readable).
constexpr std::size_t kReadChunk = 4 * 1024;
// Why 4 KiB: a connection keeps its unparsed-bytes buffer between probes unless it grew past
// this (a large answer), so a thousand idle connections stay small.
constexpr std::size_t kKeepInputCapacity = 4 * 1024;

// One answer: Beast's HTTP/1.1 parser (framing, chunked, keep-alive, limits) without its message
// container, which would allocate every header field. A probe needs the status, Retry-After
// and the first `limit` bytes of the body; the rest of the body is read and dropped, as
// libcurl's write callback does (http.cpp), so the connection stays reusable after a big page.
class Parser final : public http::basic_parser<false> {
 public:
  explicit Parser(std::size_t body_limit) : limit_(body_limit) {}

  int status() const { return status_; }
  std::string& body() { return body_; }
  std::string& retry_after() { return retry_after_; }

 private:
  using error_code = boost::beast::error_code;
  using string_view = boost::beast::string_view;

  void on_request_impl(http::verb, string_view, string_view, int, error_code& ec) override {
    ec = http::error::bad_method;  // never called for a response parser
  }
  void on_response_impl(int code, string_view, int, error_code&) override { status_ = code; }
  void on_field_impl(http::field name, string_view, string_view value, error_code&) override {
    if (name == http::field::retry_after) retry_after_.assign(value.data(), value.size());
  }
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(string_view part, error_code&) override { return keep(part); }
  void on_chunk_header_impl(std::uint64_t, string_view, error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view part, error_code&) override {
    return keep(part);
  }
  void on_finish_impl(error_code&) override {}

  std::size_t keep(string_view part) {
    const std::size_t room = limit_ - std::min(limit_, body_.size());
    body_.append(part.data(), std::min(room, part.size()));
    return part.size();
  }

  std::size_t limit_;
  int status_ = 0;
  std::string body_;
  std::string retry_after_;
};

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (std::tolower(x) != std::tolower(y)) return false;
  }
  return true;
}

bool plain_text(std::string_view s) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// Boost 1.74 has no std::hash for endpoints; the idle pool is looked up twice per probe.
struct EndpointHash {
  std::size_t operator()(const tcp::endpoint& ep) const {
    const auto* bytes = static_cast<const unsigned char*>(static_cast<const void*>(ep.data()));
    std::size_t h = 14695981039346656037ull;  // FNV-1a over the sockaddr's bytes
    for (std::size_t i = 0; i < ep.size(); ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
  }
};

Duration ms_since(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration_cast<Duration>(to - from);
}

}  // namespace

bool proxy_in_environment() {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && v[0] != '\0') return true;
  }
  return false;
}

std::optional<PlainTarget> plain_target(const HttpRequest& req) {
  if (req.method != HttpMethod::get && req.method != HttpMethod::head) return std::nullopt;
  if (!req.body.empty()) return std::nullopt;
  constexpr std::string_view kScheme = "http://";
  std::string_view url = req.url;
  if (!url.starts_with(kScheme)) return std::nullopt;
  url.remove_prefix(kScheme.size());
  const std::size_t end = url.find_first_of("/?#");
  const std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;

  // The host: an IPv4 address in dotted-quad form or a bracketed IPv6 address, nothing that
  // needs a resolver (host names go to curl, which resolves without blocking the loop).
  std::string_view host, port_text;
  const bool bracketed = authority.starts_with('[');
  if (bracketed) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  // core's strict parser: dotted quads only (no octal or short forms), no zone ids.
  const Result<IpAddress> ip = parse_ip(host);
  if (!ip) return std::nullopt;
  asio::ip::address address;
  if (ip->family == IpAddress::Family::v4) {
    address = asio::ip::address_v4({ip->bytes[0], ip->bytes[1], ip->bytes[2], ip->bytes[3]});
  } else {
    address = asio::ip::address_v6(ip->bytes);
  }
  unsigned port = 80;
  if (!port_text.empty() || authority.ends_with(':')) {
    if (port_text.empty() || port_text.size() > 5) return std::nullopt;
    port = 0;
    for (const char c : port_text) {
      if (c < '0' || c > '9') return std::nullopt;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
  }

  // The request target as curl sends it: the path and query, without the fragment.
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) {
    rest = rest.substr(0, hash);
  }
  if (!plain_text(rest) || rest.find(' ') != std::string_view::npos) return std::nullopt;
  for (const auto& [name, value] : req.headers) {
    // Headers curl treats specially (it replaces or drops its own) stay with curl.
    if (value.empty() || !plain_text(name) || !plain_text(value)) return std::nullopt;
    for (const std::string_view special :
         {"host", "user-agent", "accept", "connection", "content-length", "transfer-encoding",
          "expect", "te", "upgrade"}) {
      if (iequals(name, special)) return std::nullopt;
    }
  }

  PlainTarget t;
  t.endpoint = tcp::endpoint(address, static_cast<unsigned short>(port));
  t.head = req.method == HttpMethod::head;
  std::string& out = t.request;
  out.reserve(96 + req.url.size());
  out += t.head ? "HEAD " : "GET ";
  if (rest.empty() || rest.front() != '/') out += '/';
  out += rest;
  out += " HTTP/1.1\r\nHost: ";
  out += bracketed ? "[" + std::string(host) + "]" : std::string(host);
  if (port != 80) out += ":" + std::to_string(port);
  out += "\r\nUser-Agent: vigil/" VIGIL_VERSION "\r\nAccept: */*\r\n";
  for (const auto& [name, value] : req.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
  return t;
}

// One TCP connection and the exchange on it, if any. Handlers hold the connection alive and
// carry the generation they were started in: finishing or cancelling an exchange bumps it, so a
// late handler of an earlier one does nothing. At most one socket operation is pending at a
// time, and a socket is closed only with none pending or after a bump, so operation_aborted is
// never news.
struct Conn {
  Conn(asio::io_context& io, tcp::endpoint ep) : socket(io), endpoint(ep) {}

  tcp::socket socket;
  tcp::endpoint endpoint;
  std::string input;                   // received bytes not parsed yet
  std::array<char, kReadChunk> chunk;  // what a read fills
  unsigned generation = 0;

  // The exchange in progress.
  HttpClient::RequestId id = 0;
  std::string request;
  bool head = false;
  std::size_t body_limit = 0;
  Duration timeout{0};
  HttpClient::Callback done;
  std::optional<Parser> parser;
  bool reused = false;   // the connection served an earlier exchange
  bool retried = false;  // already moved to a fresh connection once
  std::size_t received = 0;
  SteadyClock::time_point started, connected, first_byte;
  SteadyClock::time_point deadline;  // started + timeout: the sweep fails it then
};

struct PlainHttp::State : std::enable_shared_from_this<PlainHttp::State> {
  explicit State(asio::io_context& ctx) : io(ctx), sweep(ctx) {}

  asio::io_context& io;
  std::unordered_map<HttpClient::RequestId, std::shared_ptr<Conn>> active;
  // One timer for the deadlines of every active request, armed while any is active, instead of
  // a timer per request: the checks of one schedule slot start together, so this costs one arm
  // and one cancel per batch, where a timer each cost a queue insert, a removal and an aborted
  // handler per probe. It fires at the earliest deadline known when it was armed.
  asio::steady_timer sweep;
  bool sweep_armed = false;
  SteadyClock::time_point sweep_at;
  unsigned sweep_generation = 0;  // a wait from before the last arm or disarm does nothing
  std::unordered_map<tcp::endpoint, std::vector<std::shared_ptr<Conn>>, EndpointHash> idle;
  std::size_t idle_count = 0;
  bool starting = false;  // inside start(): callbacks must wait for the loop

  std::shared_ptr<Conn> take(const tcp::endpoint& ep) {
    auto it = idle.find(ep);
    if (it != idle.end() && !it->second.empty()) {
      std::shared_ptr<Conn> c = std::move(it->second.back());
      it->second.pop_back();
      --idle_count;
      return c;
    }
    return std::make_shared<Conn>(io, ep);
  }

  void start(HttpClient::RequestId id, const PlainTarget& t, const HttpRequest& req,
             HttpClient::Callback done) {
    std::shared_ptr<Conn> c = take(t.endpoint);
    c->id = id;
    c->request = t.request;  // into the capacity the connection's last request left
    c->head = t.head;
    c->body_limit = req.body_limit;
    c->timeout = req.timeout;
    c->done = std::move(done);
    c->reused = c->socket.is_open();
    c->retried = false;
    c->received = 0;
    c->started = c->connected = c->first_byte = SteadyClock::now();
    c->deadline = c->started + req.timeout;
    active.emplace(id, c);
    ++c->generation;
    if (!sweep_armed || c->deadline < sweep_at) arm_sweep(c->deadline);
    // The request goes out now; a failure found before start() returns is reported from the
    // loop (fail()), never from inside start().
    starting = true;
    if (c->socket.is_open()) {
      send(c);
    } else {
      connect(c);
    }
    starting = false;
  }

  void arm_sweep(SteadyClock::time_point at) {
    sweep_armed = true;
    sweep_at = at;
    sweep.expires_at(at);  // cancels the wait pending, if any: its generation is stale
    sweep.async_wait(
        [weak = weak_from_this(), gen = ++sweep_generation](const boost::system::error_code& ec) {
          auto self = weak.lock();
          if (!self || ec || self->sweep_generation != gen) return;
          self->sweep_armed = false;
          self->expire();
        });
  }

  void disarm_sweep() {
    if (!sweep_armed) return;
    sweep_armed = false;
    ++sweep_generation;
    sweep.cancel();
  }

  // Fails every request past its deadline, then waits for the earliest one left.
  void expire() {
    const auto now = SteadyClock::now();
    std::vector<std::pair<std::shared_ptr<Conn>, unsigned>> late;
    for (const auto& [id, c] : active) {
      if (c->deadline <= now) late.emplace_back(c, c->generation);
    }
    for (const auto& [c, gen] : late) {
      // A callback of an earlier one may have cancelled this one.
      if (c->generation != gen) continue;
      fail(c, FailureKind::timeout,
           "Operation timed out after " + std::to_string(c->timeout.count()) +
               " milliseconds with " + std::to_string(c->received) + " bytes received");
    }
    if (active.empty()) return;
    auto next = SteadyClock::time_point::max();
    for (const auto& [id, c] : active) next = std::min(next, c->deadline);
    // A callback above may have armed it already, for its own request's later deadline.
    if (!sweep_armed || next < sweep_at) arm_sweep(next);
  }

  void connect(const std::shared_ptr<Conn>& c) {
    boost::system::error_code ec;
    c->socket.open(c->endpoint.protocol(), ec);
    if (!ec) c->socket.set_option(tcp::no_delay(true), ec);
    if (!ec) c->socket.non_blocking(true, ec);
    if (ec) {
      fail(c, FailureKind::error, "Could not open a socket: " + ec.message());
      return;
    }
    c->socket.async_connect(c->endpoint, [weak = weak_from_this(), c, gen = c->generation](
                                             const boost::system::error_code& ec2) {
      auto self = weak.lock();
      if (!self || c->generation != gen || ec2 == asio::error::operation_aborted) return;
      if (ec2) {
        const FailureKind k =
            ec2 == asio::error::connection_refused ? FailureKind::refused : FailureKind::error;
        self->fail(c, k,
                   "Failed to connect to " + c->endpoint.address().to_string() + " port " +
                       std::to_string(c->endpoint.port()) + ": " + ec2.message());
        return;
      }
      c->connected = SteadyClock::now();
      self->send(c);
    });
  }

  // A kept-alive connection the server closed meanwhile shows up as a failed write or an
  // answer that never starts: the request is sent once more on a fresh connection, as curl
  // does. GET and HEAD are safe to repeat.
  bool retry_fresh(const std::shared_ptr<Conn>& c) {
    if (!c->reused || c->retried || c->received != 0) return false;
    boost::system::error_code ignored;
    c->socket.close(ignored);
    c->input.clear();
    c->retried = true;
    c->reused = false;
    connect(c);
    return true;
  }

  // A parser for the next answer on `c` (Beast's parsers are one message each).
  static void new_parser(Conn& c) {
    c.parser.emplace(c.body_limit);
    c.parser->header_limit(kHeaderLimit);
    // No limit to the framing: Parser keeps body_limit bytes and drops the rest. (Not
    // boost::none: Boost 1.74 compares a Content-Length with it and fails every body.)
    c.parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    c.parser->eager(true);
    if (c.head) c.parser->skip(true);
  }

  void send(const std::shared_ptr<Conn>& c) {
    new_parser(*c);
    // A request head fits an empty socket buffer: one write, no wake-up, in all but odd cases.
    boost::system::error_code ec;
    const std::size_t n = c->socket.write_some(asio::buffer(c->request), ec);
    if (!ec && n == c->request.size()) {
      wait_readable(c);
      return;
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again || (!ec && n > 0)) {
      const std::size_t sent = ec ? 0 : n;
      asio::async_write(
          c->socket, asio::buffer(c->request.data() + sent, c->request.size() - sent),
          [weak = weak_from_this(), c, gen = c->generation](const boost::system::error_code& ec2,
                                                            std::size_t) {
            auto self = weak.lock();
            if (!self || c->generation != gen || ec2 == asio::error::operation_aborted) {
              return;
            }
            if (ec2) {
              self->write_failed(c, ec2);
            } else {
              self->wait_readable(c);
            }
          });
      return;
    }
    write_failed(c, ec);
  }

  void write_failed(const std::shared_ptr<Conn>& c, const boost::system::error_code& ec) {
    if (retry_fresh(c)) return;
    fail(c, FailureKind::reset, "Failed sending the request: " + ec.message());
  }

  // An async read, not an async_wait: Asio re-arms a wait with an epoll_ctl every time, while a
  // read on a registered socket just queues until the edge-triggered event (and tries the read
  // at once only when the last one did not drain the socket).
  void wait_readable(const std::shared_ptr<Conn>& c) {
    c->socket.async_read_some(
        asio::buffer(c->chunk), [weak = weak_from_this(), c, gen = c->generation](
                                    const boost::system::error_code& ec, std::size_t n) {
          auto self = weak.lock();
          if (!self || c->generation != gen || ec == asio::error::operation_aborted) return;
          if (ec) {
            self->read_failed(c, ec);
            return;
          }
          self->on_read(c, n);
        });
  }

  void read_failed(const std::shared_ptr<Conn>& c, const boost::system::error_code& ec) {
    if (retry_fresh(c)) return;
    if (ec == asio::error::eof) {
      // An answer that ends at the close (no length) is complete now; anything else is cut off.
      boost::beast::error_code pec;
      if (c->parser->is_header_done()) c->parser->put_eof(pec);
      if (!pec && c->parser->is_header_done() && c->parser->is_done()) {
        complete(c, KeepConnection::no);
        return;
      }
      fail(c, FailureKind::reset,
           c->received == 0 ? "Empty reply from server"
                            : "Connection closed after " + std::to_string(c->received) +
                                  " bytes, before the answer was complete");
      return;
    }
    fail(c, FailureKind::reset, "Receive failure: " + ec.message());
  }

  void on_read(const std::shared_ptr<Conn>& c, std::size_t n) {
    if (c->received == 0) c->first_byte = SteadyClock::now();
    c->received += n;
    if (c->input.empty()) {
      // The usual case: the answer is parsed where the read put it, without a copy.
      parse(c, std::string_view(c->chunk.data(), n));
    } else {
      c->input.append(c->chunk.data(), n);
      parse(c, c->input);
    }
  }

  // Parses `data` (the read chunk, or `input` with the chunk appended); what a parser cannot
  // take yet (a header line cut in two) is left in `input` for the next read.
  void parse(const std::shared_ptr<Conn>& c, std::string_view data) {
    std::size_t used = 0;
    for (;;) {
      boost::beast::error_code ec;
      while (!c->parser->is_done() && used < data.size()) {
        const std::size_t n =
            c->parser->put(asio::buffer(data.data() + used, data.size() - used), ec);
        used += n;
        if (ec || n == 0) break;
      }
      if (ec && ec != http::error::need_more) {
        fail(c, FailureKind::protocol, "Invalid HTTP answer: " + ec.message());
        return;
      }
      if (!c->parser->is_done()) break;
      const int status = c->parser->status();
      if (status < 100 || status > 199 || status == 101) break;
      // An interim answer (100 Continue, 103 Early Hints): the real one follows.
      new_parser(*c);
    }
    if (data.data() == c->input.data()) {
      c->input.erase(0, used);
    } else {
      c->input.assign(data.substr(used));
    }
    if (!c->parser->is_done()) {
      wait_readable(c);
      return;
    }
    // Bytes past the answer mean the server and we disagree on where it ended: do not reuse.
    const bool reusable = c->parser->keep_alive() && c->input.empty();
    complete(c, reusable ? KeepConnection::yes : KeepConnection::no);
  }

  enum class KeepConnection { no, yes };

  // Takes `c` out of the active set, and its callback with it.
  HttpClient::Callback finish(const std::shared_ptr<Conn>& c) {
    ++c->generation;
    active.erase(c->id);
    c->id = 0;
    if (active.empty()) disarm_sweep();
    return std::move(c->done);
  }

  HttpResponse timings(const std::shared_ptr<Conn>& c) {
    HttpResponse r;
    const auto now = SteadyClock::now();
    r.total = ms_since(c->started, now);
    r.connect = ms_since(c->started, c->connected);
    if (c->received > 0) r.first_byte = ms_since(c->started, c->first_byte);
    return r;
  }

  void complete(const std::shared_ptr<Conn>& c, KeepConnection keep) {
    HttpResponse r = timings(c);
    r.status = c->parser->status();
    r.body = std::move(c->parser->body());
    r.retry_after = std::move(c->parser->retry_after());
    HttpClient::Callback done = finish(c);
    c->parser.reset();
    if (c->input.capacity() > kKeepInputCapacity) std::string().swap(c->input);
    if (keep == KeepConnection::yes && idle_count < kMaxIdleConnections) {
      idle[c->endpoint].push_back(c);
      ++idle_count;
    } else {
      close(*c);
    }
    if (done) done(std::move(r));
  }

  void fail(const std::shared_ptr<Conn>& c, FailureKind kind, std::string error) {
    HttpResponse r = timings(c);
    r.transport = kind;
    r.error = std::move(error);
    HttpClient::Callback done = finish(c);
    close(*c);
    if (!done) return;
    if (starting) {
      asio::post(io, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    } else {
      done(std::move(r));
    }
  }

  static void close(Conn& c) {
    boost::system::error_code ignored;
    c.socket.close(ignored);
    c.input.clear();
    c.parser.reset();
  }

  bool cancel(HttpClient::RequestId id) {
    auto it = active.find(id);
    if (it == active.end()) return false;
    std::shared_ptr<Conn> c = it->second;
    (void)finish(c);
    close(*c);
    return true;
  }

  void close_all() {
    while (!active.empty()) cancel(active.begin()->first);
    for (auto& [ep, conns] : idle) {
      for (auto& c : conns) close(*c);
    }
    idle.clear();
    idle_count = 0;
  }
};

PlainHttp::PlainHttp(asio::io_context& io) : state_(std::make_shared<State>(io)) {}

PlainHttp::~PlainHttp() { state_->close_all(); }

void PlainHttp::start(HttpClient::RequestId id, const PlainTarget& target,
                      const HttpRequest& request, HttpClient::Callback done) {
  state_->start(id, target, request, std::move(done));
}

bool PlainHttp::cancel(HttpClient::RequestId id) { return state_->cancel(id); }

std::vector<HttpClient::RequestId> PlainHttp::ids() const {
  std::vector<HttpClient::RequestId> out;
  out.reserve(state_->active.size());
  for (const auto& [id, c] : state_->active) out.push_back(id);
  return out;
}

std::size_t PlainHttp::in_flight() const { return state_->active.size(); }

}  // namespace vigil::sys
