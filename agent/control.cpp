#include "agent/control.h"
#include "agent/sys/errors.h"

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

namespace vigil {

namespace asio = boost::asio;
using local = asio::local::stream_protocol;

namespace {

// Why 64 KiB: the biggest request is a maintenance window with a list of check names; each
// command has its own, smaller limit (control_request_limit).
constexpr std::size_t kMaxRequest = 64 * 1024;
// Why 8 MiB: the longest timeline answered in full (`vigil incident show`); anything larger is
// refused with a pointer to the file rather than held in memory for a client to drain.
constexpr std::size_t kMaxReply = 8 << 20;
// Why 16: the CLI opens one connection per command; more at once is a script gone wrong.
constexpr std::size_t kMaxConnections = 16;
// A client must send its request within this, or it is dropped: a stuck client must not pin a
// connection slot forever.
constexpr std::chrono::seconds kRequestDeadline{5};
// And read its answer within this: a client that stops reading costs one slot and its reply's
// memory for at most this long, never the loop (writes are asynchronous).
constexpr std::chrono::seconds kReplyDeadline{10};

// The peer's credentials, as the kernel has them: uid, gid and pid (SO_PEERCRED) and the
// supplementary groups (SO_PEERGROUPS, Linux 4.13).
ControlPeer peer_of(int fd) {
  ControlPeer peer;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.pid = cred.pid;
  } else {
    peer.uid = static_cast<unsigned>(-1);  // unknown: treated as nobody
    peer.gid = static_cast<unsigned>(-1);
  }
  std::vector<gid_t> groups(64);
  socklen_t glen = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
  int r = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen);
  if (r != 0 && errno == ERANGE && glen <= 65536 * sizeof(gid_t)) {
    groups.resize(glen / sizeof(gid_t));
    r = ::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &glen);
  }
  if (r == 0) {
    groups.resize(glen / sizeof(gid_t));
    peer.groups.assign(groups.begin(), groups.end());
  }
  return peer;
}

// Gives the socket (and its directory) to the `vigil` group when it exists, so members can run
// the CLI without root. Works without CAP_CHOWN: the owner may hand a file to a group it is a
// member of (the unit adds SupplementaryGroups=vigil).
void share_with_group(const std::string& path) {
  ::chmod(path.c_str(), 0660);
  const group* g = ::getgrnam("vigil");
  if (g == nullptr) return;
  if (::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) return;
  const std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat st {};
  if (!dir.empty() && ::stat(dir.c_str(), &st) == 0 && st.st_uid == ::geteuid()) {
    if (::chown(dir.c_str(), static_cast<uid_t>(-1), g->gr_gid) == 0) {
      ::chmod(dir.c_str(), 0750);
    }
  }
}

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& context, Handler h)
      : io(context), acceptor(context), handler(std::move(h)) {}

  struct Conn {
    explicit Conn(asio::io_context& context) : socket(context), deadline(context) {}
    local::socket socket;
    asio::steady_timer deadline;
    asio::streambuf in{kMaxRequest};
    std::string out;
  };

  void accept() {
    acceptor.async_accept(
        [self = shared_from_this()](const boost::system::error_code& ec, local::socket s) {
          if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
          if (!ec) self->serve(std::move(s));
          self->accept();
        });
  }

  void serve(local::socket s) {
    if (conns.size() >= kMaxConnections) {
      boost::system::error_code ignored;
      s.close(ignored);
      return;
    }
    auto c = std::make_shared<Conn>(io);
    c->socket = std::move(s);
    conns.insert(c);
    c->deadline.expires_after(kRequestDeadline);
    c->deadline.async_wait([self = shared_from_this(), c](const boost::system::error_code& ec) {
      if (!ec) self->drop(c);
    });
    asio::async_read_until(
        c->socket, c->in, '\n',
        [self = shared_from_this(), c](const boost::system::error_code& ec, std::size_t n) {
          if (ec) {
            self->drop(c);
            return;
          }
          std::string line(asio::buffers_begin(c->in.data()),
                           asio::buffers_begin(c->in.data()) + static_cast<std::ptrdiff_t>(n));
          self->answer(c, line);
        });
  }

  void answer(const std::shared_ptr<Conn>& c, const std::string& line) {
    const ControlPeer peer = peer_of(c->socket.native_handle());
    c->out = control_reply(line, peer, access, handler, kMaxReply);
    c->deadline.expires_after(kReplyDeadline);
    c->deadline.async_wait([self = shared_from_this(), c](const boost::system::error_code& ec) {
      if (!ec) self->drop(c);
    });
    asio::async_write(c->socket, asio::buffer(c->out),
                      [self = shared_from_this(), c](const boost::system::error_code&,
                                                     std::size_t) { self->drop(c); });
  }

  void drop(const std::shared_ptr<Conn>& c) {
    boost::system::error_code ignored;
    c->deadline.cancel();
    c->socket.close(ignored);
    conns.erase(c);
  }

  asio::io_context& io;
  local::acceptor acceptor;
  Handler handler;
  ControlAccess access;
  std::set<std::shared_ptr<Conn>> conns;
  std::string path;
};

ControlServer::ControlServer(asio::io_context& io, Handler handler)
    : impl_(std::make_shared<Impl>(io, std::move(handler))) {}

ControlServer::~ControlServer() { stop(); }

Result<bool> ControlServer::listen(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return make_error("control socket path too long: " + path);
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), fs_ec);
  if (std::filesystem::exists(path, fs_ec)) {
    // Somebody answering means another vigil is running; nobody answering means a stale file
    // left by a crash, which is replaced.
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return make_error(path + " exists and is not a socket; refusing to replace it");
    }
    local::socket probe(impl_->io);
    boost::system::error_code ec;
    probe.connect(local::endpoint(path), ec);
    if (!ec) return make_error("another vigil is already answering on " + path);
    if (ec != boost::asio::error::connection_refused) {
      return make_error("cannot tell whether another vigil answers on " + path + ": " +
                        ec.message());
    }
    ::unlink(path.c_str());
  }
  boost::system::error_code ec;
  impl_->acceptor.open(local(), ec);
  if (!ec) impl_->acceptor.bind(local::endpoint(path), ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error("cannot listen on " + path + ": " + ec.message());
  impl_->path = path;
  share_with_group(path);
  impl_->accept();
  return true;
}

void ControlServer::set_access(ControlAccess access) { impl_->access = std::move(access); }

void ControlServer::stop() {
  if (!impl_) return;
  boost::system::error_code ignored;
  if (impl_->acceptor.is_open()) {
    impl_->acceptor.close(ignored);
    if (!impl_->path.empty()) ::unlink(impl_->path.c_str());
  }
  for (const auto& c : std::set<std::shared_ptr<Impl::Conn>>(impl_->conns)) impl_->drop(c);
}

Result<nlohmann::json> control_request(const std::string& path, const nlohmann::json& request,
                                       int timeout_ms) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return make_error("socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error("socket: " + sys::errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // NOLINTNEXTLINE: the sockets API takes a sockaddr*
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    const int e = errno;
    if (e == ENOENT || e == ECONNREFUSED) {
      return make_error("vigil is not running (nothing answers on " + path +
                        "); start it with: systemctl start vigil");
    }
    if (e == EACCES || e == EPERM) {
      return make_error("permission denied on " + path +
                        ": run as root or as a member of the 'vigil' group");
    }
    return make_error("cannot connect to " + path + ": " + sys::errno_text(e));
  }
  const std::string out = request.dump() + "\n";
  for (std::size_t done = 0; done < out.size();) {
    // MSG_NOSIGNAL: the daemon drops an oversized request and closes; that is an error to
    // report, not a SIGPIPE that kills the CLI without a word.
    const ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return make_error("cannot send the request to vigil: " + sys::errno_text(errno));
    done += static_cast<std::size_t>(n);
  }
  std::string in;
  char buf[65536];
  while (in.empty() || in.back() != '\n') {
    pollfd p{fd, POLLIN, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r == 0)
      return make_error("vigil did not answer within " + std::to_string(timeout_ms) + " ms");
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return make_error("poll: " + sys::errno_text(errno));
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("cannot read vigil's answer: " + sys::errno_text(errno));
    if (n == 0) break;
    in.append(buf, static_cast<std::size_t>(n));
  }
  nlohmann::json reply = nlohmann::json::parse(in, nullptr, false);
  if (reply.is_discarded() || !reply.is_object()) {
    return make_error("vigil's answer is not valid JSON");
  }
  return reply;
}

}  // namespace vigil
