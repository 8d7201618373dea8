// The lean path of HttpClient (agent/sys/http.h): GET and HEAD over plain HTTP/1.1 to an IP
// address, on kept-alive Asio sockets, parsed by Boost.Beast's HTTP parser. Everything else
// (https, host names, proxies, POST/PATCH pages, custom Host/Accept headers) goes to libcurl.
//
// Why it exists: with libcurl 7.88 a health probe cost 2.5x what the kernel's loopback round
// trip costs (bench/http_checks.sh), and the profile put most of the rest in curl's
// per-transfer work: handle reset and options, URL parse, the proxy environment lookup, the
// status-line sscanf, and two poll()s per reuse (the liveness test, no option disables it). A
// health check to 127.0.0.1 needs none of it. Beast ships in Debian's libboost-dev, already a
// dependency (Asio), so this adds no library. Behaviour is curl's where it matters: the same
// failure kinds, one retry on a fresh connection when a kept-alive one turns out to be closed,
// no redirects followed, the first body_limit bytes kept and the rest read and dropped.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agent/sys/http.h"

namespace vigil::sys {

// Where a lean request goes and what it sends.
struct PlainTarget {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string request;  // the whole request head, ready to write
  bool head = false;    // HEAD: the answer has no body
};

// The target when `request` can take the lean path; nullopt when it needs libcurl.
std::optional<PlainTarget> plain_target(const HttpRequest& request);

// True when the environment names a proxy libcurl would use for http:// (http_proxy, all_proxy,
// ALL_PROXY): then every request goes through curl, which honours it and no_proxy.
bool proxy_in_environment();

class PlainHttp {
 public:
  explicit PlainHttp(boost::asio::io_context& io);
  ~PlainHttp();
  PlainHttp(const PlainHttp&) = delete;
  PlainHttp& operator=(const PlainHttp&) = delete;

  // As HttpClient::start: `done` runs once on the loop thread, never before start() returns.
  void start(HttpClient::RequestId id, const PlainTarget& target, const HttpRequest& request,
             HttpClient::Callback done);
  // False when `id` is not one of ours (then it may be curl's).
  bool cancel(HttpClient::RequestId id);
  std::vector<HttpClient::RequestId> ids() const;
  std::size_t in_flight() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace vigil::sys
