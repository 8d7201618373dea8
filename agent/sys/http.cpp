#include "agent/sys/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "agent/sys/http_plain.h"

namespace vigil::sys {

std::optional<std::string> validate_http_url(std::string_view url) {
  if (url.empty()) return "is empty";
  if (url.find_first_of(" \t\r\n") != std::string_view::npos) return "contains white space";
  CURLU* u = curl_url();
  if (u == nullptr) return "out of memory";
  std::optional<std::string> problem;
  const std::string s(url);
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, s.c_str(), 0);
  if (rc != CURLUE_OK) {
    problem = std::string("is not a valid URL (") + curl_url_strerror(rc) + ")";
  } else {
    char* scheme = nullptr;
    char* host = nullptr;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (std::strcmp(scheme, "http") != 0 && std::strcmp(scheme, "https") != 0)) {
      problem = "scheme must be http or https";
    } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
      problem = "has no host";
    } else if (url.find(":///") != std::string_view::npos) {
      // curl reads "http:///health" as host "health": never probe a host the operator did
      // not write.
      problem = "has no host";
    }
    curl_free(scheme);
    curl_free(host);
  }
  curl_url_cleanup(u);
  return problem;
}

namespace {

namespace asio = boost::asio;

// Why 32: enough idle handles for the concurrency of a thousand staggered checks, without
// keeping a 16 KiB receive buffer per check alive between runs.
constexpr std::size_t kMaxIdleHandles = 32;

// Why a fixed 128: by default curl keeps at most 4 idle connections per transfer in flight,
// and with checks staggered over a second few are in flight at any moment, so most
// connections were closed between two runs and opened again (a TCP handshake, a dozen system
// calls) for ~6 % of probes. 128 idle connections (a few KiB each) cover the concurrency of
// a thousand staggered checks to one host, or 128 hosts probed with keep-alive.
constexpr long kMaxCachedConnections = 128;

FailureKind classify(CURLcode rc, long os_errno) {
  switch (rc) {
    case CURLE_OK:
      return FailureKind::none;
    case CURLE_COULDNT_CONNECT:
      return os_errno == ECONNREFUSED || os_errno == 0 ? FailureKind::refused : FailureKind::error;
    case CURLE_OPERATION_TIMEDOUT:
      return FailureKind::timeout;
    case CURLE_COULDNT_RESOLVE_HOST:
      return FailureKind::dns;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return FailureKind::tls;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return FailureKind::reset;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
      return FailureKind::protocol;
    default:
      return FailureKind::error;
  }
}

Duration us_to_ms(curl_off_t us) { return Duration(us / 1000); }

}  // namespace

struct Request {
  HttpClient::RequestId id = 0;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  HttpClient::Callback done;
  std::size_t body_limit = 0;
  std::string body;
  std::string request_body;  // curl does not copy POSTFIELDS: it lives as long as the request
  std::string retry_after;
  char error[CURL_ERROR_SIZE] = {};
};

struct SocketWatch {
  SocketWatch(asio::io_context& ctx, curl_socket_t socket) : desc(ctx, socket), fd(socket) {}
  ~SocketWatch() {
    // curl owns the socket; we only stop watching it.
    stop_waiting();
    (void)desc.release();
  }
  // Cancels the pending waits; their handlers see a stale generation and do nothing.
  void stop_waiting() {
    boost::system::error_code ignored;
    desc.cancel(ignored);
    ++generation;
    reading = writing = false;
  }
  asio::posix::stream_descriptor desc;
  curl_socket_t fd;
  int wanted = CURL_POLL_NONE;  // what curl asked for
  bool reading = false;         // an async_wait(read) is pending
  bool writing = false;         // an async_wait(write) is pending
  unsigned generation = 0;      // bumped when pending waits are cancelled
};

struct HttpClient::Impl : std::enable_shared_from_this<HttpClient::Impl> {
  explicit Impl(asio::io_context& ctx) : io(ctx), timer(ctx) {
    multi = curl_multi_init();
    if (multi == nullptr) throw std::runtime_error("curl_multi_init failed");
  }

  void setup() {
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Impl::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Impl::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, kMaxCachedConnections);
  }

  ~Impl() {
    for (auto& [id, r] : requests) {
      curl_multi_remove_handle(multi, r->easy);
      release(*r);
    }
    requests.clear();
    watches.clear();
    for (CURL* e : idle) curl_easy_cleanup(e);
    curl_multi_cleanup(multi);
  }

  void release(Request& r) {
    curl_slist_free_all(r.headers);
    r.headers = nullptr;
    if (idle.size() < kMaxIdleHandles) {
      curl_easy_reset(r.easy);
      idle.push_back(r.easy);
    } else {
      curl_easy_cleanup(r.easy);
    }
    r.easy = nullptr;
  }

  static size_t on_write(char* data, size_t size, size_t n, void* user) {
    auto* r = static_cast<Request*>(user);
    const size_t len = size * n;
    if (r->body.size() < r->body_limit) {
      r->body.append(data, std::min(len, r->body_limit - r->body.size()));
    }
    return len;  // keep reading past the limit (and drop it) so the connection stays reusable
  }

  // Keeps the one response header pages need (Retry-After); a redirect's headers are replaced
  // by the final answer's since each response starts with its status line.
  static size_t on_header(char* data, size_t size, size_t n, void* user) {
    auto* r = static_cast<Request*>(user);
    const size_t len = size * n;
    std::string_view line(data, len);
    if (line.starts_with("HTTP/")) r->retry_after.clear();
    constexpr std::string_view kName = "retry-after:";
    if (line.size() > kName.size() && line.size() < 256) {
      std::string lower(line.substr(0, kName.size()));
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower == kName) {
        std::string_view v = line.substr(kName.size());
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
          v.remove_suffix(1);
        r->retry_after = std::string(v);
      }
    }
    return len;
  }

  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    static_cast<Impl*>(userp)->socket_changed(fd, what);
    return 0;
  }

  // curl closes every socket of its connections here (CURLOPT_CLOSESOCKETFUNCTION): the one
  // place a socket's watch is dropped. It leaves the reactor now, while the descriptor is still
  // open: a wait handler running right now may keep the watch alive past the close, and its
  // late deregistration would otherwise remove a new socket that got the same number.
  static int on_close_socket(void* clientp, curl_socket_t fd) {
    auto& watches = static_cast<Impl*>(clientp)->watches;
    if (auto it = watches.find(fd); it != watches.end()) {
      it->second->stop_waiting();
      (void)it->second->desc.release();
      watches.erase(it);
    }
    return close(fd);
  }

  static int on_timer(CURLM*, long timeout_ms, void* userp) {
    static_cast<Impl*>(userp)->arm_timer(timeout_ms);
    return 0;
  }

  // curl's timer. Each re-arm of an Asio timer that becomes the earliest costs a
  // timerfd_settime, and curl updates its timeout several times per request, so: a zero timeout
  // is a post (no timer at all), and a later deadline never moves a pending earlier one. Firing
  // early is harmless: on_timer_fired asks curl for its real next timeout and re-arms.
  void arm_timer(long timeout_ms) {
    if (timeout_ms < 0) {
      timer.cancel();
      timer_armed = false;
      return;
    }
    if (timeout_ms == 0) {
      if (!zero_posted) {
        zero_posted = true;
        asio::post(io, [weak = weak_from_this()] {
          if (auto self = weak.lock()) {
            self->zero_posted = false;
            self->on_timer_fired();
          }
        });
      }
      return;
    }
    const auto deadline =
        asio::steady_timer::clock_type::now() + std::chrono::milliseconds(timeout_ms);
    if (timer_armed && timer.expiry() <= deadline) return;
    timer_armed = true;
    timer.expires_at(deadline);
    timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->timer_armed = false;
        self->on_timer_fired();
      }
    });
  }

  void on_timer_fired() {
    action(CURL_SOCKET_TIMEOUT, 0);
    long next = -1;
    curl_multi_timeout(multi, &next);
    if (next >= 0) arm_timer(next);
  }

  void socket_changed(curl_socket_t fd, int what) {
    auto it = watches.find(fd);
    if (what == CURL_POLL_REMOVE) {
      // A kept-alive connection went back to curl's cache: stop waiting on it, but keep it
      // registered with the reactor. Dropping and re-adding the watch cost two epoll_ctl and
      // an ioctl per probe; the watch goes when curl closes the socket (on_close_socket).
      if (it != watches.end()) {
        if (it->second->reading || it->second->writing) it->second->stop_waiting();
        it->second->wanted = CURL_POLL_NONE;
      }
      return;
    }
    if (it == watches.end()) {
      it = watches.emplace(fd, std::make_shared<SocketWatch>(io, fd)).first;
    }
    std::shared_ptr<SocketWatch>& w = it->second;
    // A changed interest cancels pending waits; their handlers see operation_aborted and the
    // wanted waits are re-armed below.
    if ((w->reading && !(what & CURL_POLL_IN)) || (w->writing && !(what & CURL_POLL_OUT))) {
      w->stop_waiting();
    }
    w->wanted = what;
    arm(w);
  }

  void arm(const std::shared_ptr<SocketWatch>& w) {
    if ((w->wanted & CURL_POLL_IN) && !w->reading) wait(w, Direction::read);
    if ((w->wanted & CURL_POLL_OUT) && !w->writing) wait(w, Direction::write);
  }

  enum class Direction { read, write };

  void wait(const std::shared_ptr<SocketWatch>& w, Direction dir) {
    const bool is_read = dir == Direction::read;
    (is_read ? w->reading : w->writing) = true;
    const unsigned gen = w->generation;
    w->desc.async_wait(
        is_read ? asio::posix::stream_descriptor::wait_read
                : asio::posix::stream_descriptor::wait_write,
        [weak = weak_from_this(), ww = std::weak_ptr<SocketWatch>(w), gen,
         is_read](const boost::system::error_code& ec) {
          auto self = weak.lock();
          auto watch = ww.lock();
          // A wait from before an interest change (or a removed socket) is stale: a fresh one
          // has been armed in its place.
          if (!self || !watch || watch->generation != gen || ec == asio::error::operation_aborted) {
            return;
          }
          (is_read ? watch->reading : watch->writing) = false;
          const int flags = ec ? CURL_CSELECT_ERR : (is_read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
          self->action(watch->fd, flags);
          self->rearm(watch->fd);
        });
  }

  // After curl acted on fd, keep watching it if curl still wants it.
  void rearm(curl_socket_t fd) {
    auto it = watches.find(fd);
    if (it != watches.end()) arm(it->second);
  }

  void action(curl_socket_t fd, int flags) {
    int running = 0;
    curl_multi_socket_action(multi, fd, flags, &running);
    finish_done();
  }

  void finish_done() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Request* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      const CURLcode rc = msg->data.result;
      auto it = requests.find(raw->id);
      std::unique_ptr<Request> r = std::move(it->second);
      requests.erase(it);
      curl_multi_remove_handle(multi, r->easy);

      HttpResponse resp;
      long os_errno = 0;
      curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
      resp.transport = classify(rc, os_errno);
      if (rc != CURLE_OK) {
        resp.error = r->error[0] != '\0' ? r->error : curl_easy_strerror(rc);
      }
      curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
      curl_off_t t = 0;
      if (curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
        resp.total = us_to_ms(t);
      if (curl_easy_getinfo(r->easy, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK)
        resp.connect = us_to_ms(t);
      if (curl_easy_getinfo(r->easy, CURLINFO_APPCONNECT_TIME_T, &t) == CURLE_OK)
        resp.tls = us_to_ms(t);
      if (curl_easy_getinfo(r->easy, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK) {
        resp.first_byte = us_to_ms(t);
      }
      resp.body = std::move(r->body);
      resp.retry_after = std::move(r->retry_after);
      Callback done = std::move(r->done);
      release(*r);
      if (done) done(std::move(resp));
    }
  }

  HttpClient::RequestId start(HttpClient::RequestId id, const HttpRequest& req, Callback done) {
    auto r = std::make_unique<Request>();
    r->id = id;
    r->done = std::move(done);
    r->body_limit = req.body_limit;
    if (!idle.empty()) {
      r->easy = idle.back();
      idle.pop_back();
    } else {
      r->easy = curl_easy_init();
    }
    CURL* e = r->easy;
    if (e == nullptr) {
      HttpResponse resp;
      resp.transport = FailureKind::error;
      resp.error = "curl_easy_init failed";
      if (r->done) r->done(std::move(resp));
      return 0;
    }
    curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(req.timeout.count()));
    curl_easy_setopt(e, CURLOPT_NOBODY, req.method == HttpMethod::head ? 1L : 0L);
    if (req.method == HttpMethod::post || req.method == HttpMethod::patch) {
      r->request_body = req.body;
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->request_body.data());
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(r->request_body.size()));
      if (req.method == HttpMethod::patch) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
      // No "Expect: 100-continue" round trip for a page: a server that ignores it costs 1 s.
      r->headers = curl_slist_append(r->headers, "Expect:");
    }
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Impl::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r.get());
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect is an answer, judged by status
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req.verify_tls ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req.verify_tls ? 2L : 0L);
    // Only when given: a handle is reset before reuse, and a NULL CAINFO would drop curl's
    // built-in CA bundle instead of keeping it.
    if (!req.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, req.ca_file.c_str());
    if (!req.cert_file.empty()) curl_easy_setopt(e, CURLOPT_SSLCERT, req.cert_file.c_str());
    if (!req.key_file.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY, req.key_file.c_str());
    curl_easy_setopt(e, CURLOPT_USERAGENT, "vigil/" VIGIL_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Impl::on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r.get());
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &Impl::on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
    for (const auto& [name, value] : req.headers) {
      r->headers = curl_slist_append(r->headers, (name + ": " + value).c_str());
    }
    if (r->headers != nullptr) curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    Request& ref = *r;
    requests.emplace(id, std::move(r));
    if (CURLMcode mc = curl_multi_add_handle(multi, e); mc != CURLM_OK) {
      auto node = requests.extract(id);
      HttpResponse resp;
      resp.transport = FailureKind::error;
      resp.error = std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc);
      Callback cb = std::move(ref.done);
      release(ref);
      if (cb) cb(std::move(resp));
      return 0;
    }
    return id;
  }

  void cancel(HttpClient::RequestId id) {
    auto it = requests.find(id);
    if (it == requests.end()) return;
    std::unique_ptr<Request> r = std::move(it->second);
    requests.erase(it);
    curl_multi_remove_handle(multi, r->easy);
    release(*r);
  }

  asio::io_context& io;
  asio::steady_timer timer;
  bool timer_armed = false;  // an async_wait on `timer` is pending
  bool zero_posted = false;  // a zero-timeout action is already posted
  CURLM* multi = nullptr;
  HttpClient::RequestId next_id = 0;
  std::unordered_map<HttpClient::RequestId, std::unique_ptr<Request>> requests;
  std::unordered_map<curl_socket_t, std::shared_ptr<SocketWatch>> watches;
  std::vector<CURL*> idle;
};

HttpClient::HttpClient(asio::io_context& io) {
  static const bool curl_ready = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  if (!curl_ready) throw std::runtime_error("curl_global_init failed");
  impl_ = std::make_shared<Impl>(io);
  impl_->setup();
  if (!proxy_in_environment()) plain_ = std::make_unique<PlainHttp>(io);
}

HttpClient::~HttpClient() = default;

PreparedHttpRequest HttpClient::prepare(HttpRequest request) const {
  PreparedHttpRequest p;
  if (plain_) {
    if (std::optional<PlainTarget> target = plain_target(request)) {
      p.plain_ = std::make_shared<const PlainTarget>(std::move(*target));
    }
  }
  p.request_ = std::move(request);
  return p;
}

HttpClient::RequestId HttpClient::start(const HttpRequest& request, Callback done) {
  return start(prepare(request), std::move(done));
}

HttpClient::RequestId HttpClient::start(const PreparedHttpRequest& prepared, Callback done) {
  const RequestId id = ++impl_->next_id;
  if (plain_ && prepared.plain_) {
    plain_->start(id, *prepared.plain_, prepared.request_, std::move(done));
    return id;
  }
  return impl_->start(id, prepared.request_, std::move(done));
}

void HttpClient::cancel(RequestId id) {
  if (plain_ && plain_->cancel(id)) return;
  impl_->cancel(id);
}

void HttpClient::cancel_all() {
  std::vector<RequestId> ids;
  for (const auto& [id, r] : impl_->requests) ids.push_back(id);
  if (plain_) {
    for (RequestId id : plain_->ids()) ids.push_back(id);
  }
  for (RequestId id : ids) cancel(id);
}

std::size_t HttpClient::in_flight() const {
  return impl_->requests.size() + (plain_ ? plain_->in_flight() : 0);
}

}  // namespace vigil::sys
