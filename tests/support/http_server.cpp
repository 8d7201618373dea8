#include "tests/support/http_server.h"

#include <utility>  // before Asio: Boost 1.74 + g++ 12 need std::exchange declared

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/signal_set.hpp>
#include <csignal>
#include <iostream>
#include <stdexcept>

namespace vigil::testing {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

namespace asio = boost::asio;
using asio::ip::tcp;

struct HttpServer::Impl {
  Impl(std::uint16_t port, const std::string& address)
      : acceptor(io, tcp::endpoint(asio::ip::make_address(address), port)) {}

  asio::io_context io;
  tcp::acceptor acceptor;
  std::atomic<Mode> mode{Mode::ok};
  std::atomic<int> slow_ms{1000};
  std::atomic<bool> log_errors{false};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<bool> stopping{false};

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec) return;
      std::make_shared<Conn>(this, std::move(sock))->read();
      accept();
    });
  }

  struct Conn : std::enable_shared_from_this<Conn> {
    Conn(Impl* owner, tcp::socket s) : srv(owner), sock(std::move(s)), timer(sock.get_executor()) {}
    Impl* srv;
    tcp::socket sock;
    asio::steady_timer timer;
    asio::streambuf buf;

    void read() {
      asio::async_read_until(
          sock, buf, "\r\n\r\n",
          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
            if (!ec) self->handle(n);
          });
    }

    void handle(std::size_t n) {
      std::string head(asio::buffers_begin(buf.data()), asio::buffers_begin(buf.data()) + n);
      buf.consume(n);
      ++srv->requests;
      // "GET /path HTTP/1.1"
      const auto sp1 = head.find(' ');
      const auto sp2 = head.find(' ', sp1 + 1);
      std::string target = sp1 == std::string::npos ? "/" : head.substr(sp1 + 1, sp2 - sp1 - 1);
      const bool head_only = head.rfind("HEAD ", 0) == 0;
      std::string query;
      if (auto q = target.find('?'); q != std::string::npos) {
        query = target.substr(q + 1);
        target.resize(q);
      }
      if (target == "/health") {
        switch (srv->mode.load()) {
          case Mode::ok:
            return respond(200, "ok\n", head_only);
          case Mode::fail:
            // Like a real app, it says why in its log too (the journal, under systemd).
            if (srv->log_errors)
              std::cerr << "ERROR connection pool exhausted (max=20)" << std::endl;
            return respond(503, "ERROR connection pool exhausted (max=20)\n", head_only);
          case Mode::slow:
            return delayed(srv->slow_ms.load(), head_only);
          case Mode::reset:
            return reset();
          case Mode::garbage:
            return garbage();
        }
      }
      if (target == "/_stats") {
        return respond(200, "requests " + std::to_string(srv->requests.load()) + "\n", head_only);
      }
      if (target == "/200") return respond(200, "ok\n", head_only);
      if (target == "/503") return respond(503, "unavailable\n", head_only);
      if (target == "/body") return respond(200, "status: green\n", head_only);
      if (target == "/reset") return reset();
      if (target == "/garbage") return garbage();
      if (target == "/slow") {
        int ms = 1000;
        if (query.rfind("ms=", 0) == 0) ms = std::atoi(query.c_str() + 3);
        return delayed(ms, head_only);
      }
      if (target.rfind("/_mode/", 0) == 0) {
        const std::string m = target.substr(7);
        Mode next;
        if (m == "ok")
          next = Mode::ok;
        else if (m == "fail")
          next = Mode::fail;
        else if (m == "slow")
          next = Mode::slow;
        else if (m == "reset")
          next = Mode::reset;
        else if (m == "garbage")
          next = Mode::garbage;
        else
          return respond(400, "unknown mode\n", head_only);
        srv->mode = next;
        return respond(200, "mode " + m + "\n", head_only);
      }
      respond(404, "not found\n", head_only);
    }

    void respond(int status, const std::string& body, bool head_only) {
      const char* reason = status == 200   ? "OK"
                           : status == 503 ? "Service Unavailable"
                           : status == 404 ? "Not Found"
                                           : "Bad Request";
      auto out = std::make_shared<std::string>(
          "HTTP/1.1 " + std::to_string(status) + " " + reason +
          "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + (head_only ? "" : body));
      asio::async_write(
          sock, asio::buffer(*out),
          [self = shared_from_this(), out](boost::system::error_code ec, std::size_t) {
            if (!ec) self->read();  // keep-alive
          });
    }

    void delayed(int ms, bool head_only) {
      timer.expires_after(std::chrono::milliseconds(ms));
      timer.async_wait([self = shared_from_this(), head_only](boost::system::error_code ec) {
        if (!ec) self->respond(200, "slow ok\n", head_only);
      });
    }

    void reset() {
      boost::system::error_code ignored;
      sock.set_option(tcp::socket::linger(true, 0), ignored);  // close() now sends an RST
      sock.close(ignored);
    }

    void garbage() {
      auto out = std::make_shared<std::string>("HTTP/1.1 abc garbage\r\n\r\n");
      asio::async_write(sock, asio::buffer(*out),
                        [self = shared_from_this(), out](boost::system::error_code, std::size_t) {
                          boost::system::error_code ignored;
                          self->sock.close(ignored);
                        });
    }
  };
};

HttpServer::HttpServer(std::uint16_t port, const std::string& address)
    : impl_(std::make_unique<Impl>(port, address)) {
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->accept();
}

HttpServer::~HttpServer() {
  impl_->io.stop();
  if (thread_.joinable()) thread_.join();
}

std::uint16_t HttpServer::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string HttpServer::url(const std::string& path) const {
  return "http://" + impl_->acceptor.local_endpoint().address().to_string() + ":" +
         std::to_string(port()) + path;
}

void HttpServer::set_mode(Mode m) { impl_->mode = m; }
Mode HttpServer::mode() const { return impl_->mode; }
void HttpServer::set_slow_ms(int ms) { impl_->slow_ms = ms; }
void HttpServer::set_log_errors(bool on) { impl_->log_errors = on; }
std::uint64_t HttpServer::requests() const { return impl_->requests; }

void HttpServer::start_thread() {
  thread_ = std::thread([this] { impl_->io.run(); });
}

void HttpServer::run_until_signal() {
  asio::signal_set signals(impl_->io, SIGINT, SIGTERM);
  signals.async_wait([this](boost::system::error_code, int) { impl_->io.stop(); });
  impl_->io.run();
}

}  // namespace vigil::testing
