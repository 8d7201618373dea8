// libcurl multi, driven by the Asio loop through curl's socket and timer callbacks.
// No thread per request and no blocking call: curl tells us which fds to watch and when to wake.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/core/http_method.h"
#include "agent/core/observation.h"

namespace vigil::sys {

class PlainHttp;
struct PlainTarget;

// nullopt when `url` is an absolute http:// or https:// URL with a host; otherwise why not.
std::optional<std::string> validate_http_url(std::string_view url);

struct HttpRequest {
  std::string url;
  HttpMethod method = HttpMethod::get;
  std::vector<std::pair<std::string, std::string>> headers;
  Duration timeout{5'000};
  bool verify_tls = true;
  // https: a CA bundle instead of the system's, and a client certificate with its key (PEM).
  std::string ca_file, cert_file, key_file;
  // How much of the body to keep for matching; the rest is read and dropped.
  std::size_t body_limit = 64 * 1024;
  // post/patch: sent as is (the caller sets Content-Type in `headers`).
  std::string body;
};

struct HttpResponse {
  FailureKind transport = FailureKind::none;  // none when an HTTP answer arrived
  std::string error;                          // curl's error text when transport != none
  long status = 0;
  Duration total{0}, connect{0}, tls{0}, first_byte{0};
  std::string body;         // up to body_limit bytes
  std::string retry_after;  // the Retry-After header's value, if the answer had one
};

// A request whose route was worked out once: a check sends the same request every interval, so
// the URL is parsed and the lean path's request head written once, not per probe.
class PreparedHttpRequest {
 private:
  friend class HttpClient;
  HttpRequest request_;
  std::shared_ptr<const PlainTarget> plain_;  // set when the lean path takes it
};

// GET and HEAD to an IP address over plain http:// take a lean path (http_plain.h: kept-alive
// Asio sockets, Boost.Beast's parser); everything else goes through libcurl multi. Both report
// the same failure kinds and timings.
class HttpClient {
 public:
  using RequestId = std::uint64_t;
  using Callback = std::function<void(HttpResponse)>;

  explicit HttpClient(boost::asio::io_context& io);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Starts a request. `done` runs exactly once on the loop thread when it completes, unless the
  // request is cancelled first. Never blocks. Returns 0 (and calls nothing) only if curl refuses
  // the request outright; `done` then runs with transport = error before start() returns.
  RequestId start(const HttpRequest& request, Callback done);
  // The same for a request prepared once (prepare()) and sent many times.
  RequestId start(const PreparedHttpRequest& request, Callback done);
  PreparedHttpRequest prepare(HttpRequest request) const;
  // Cancels a request in flight; its callback will not run. Unknown ids are ignored.
  void cancel(RequestId id);
  // Cancels every request in flight (on shutdown and reload).
  void cancel_all();
  std::size_t in_flight() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::unique_ptr<PlainHttp> plain_;  // null when a proxy is set in the environment
};

}  // namespace vigil::sys
