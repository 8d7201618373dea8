#include "agent/fleet/etcd.h"

#include <charconv>

#include "agent/core/base64.h"
#include "agent/core/json.h"

namespace vigil::fleet {

struct Etcd::Pending {
  std::string path;
  std::string body;
  Reply done;
  std::size_t first = 0;  // the endpoint tried first (the one that answered last, then)
  std::size_t tried = 0;
  std::string first_error;
};

Etcd::Etcd(sys::HttpClient& http, const FleetSettings& settings)
    : http_(http),
      endpoints_(settings.etcd),
      timeout_(settings.timeout),
      ca_file_(settings.ca_file),
      cert_file_(settings.cert_file),
      key_file_(settings.key_file) {}

Etcd::~Etcd() {
  *alive_ = false;
  for (sys::HttpClient::RequestId id : in_flight_) http_.cancel(id);
}

void Etcd::call(std::string_view path, nlohmann::json body, Reply done) {
  auto p = std::make_shared<Pending>();
  p->path = std::string(path);
  p->body = body.dump();
  p->done = std::move(done);
  p->first = preferred_;
  attempt(std::move(p));
}

void Etcd::attempt(std::shared_ptr<Pending> p) {
  if (endpoints_.empty()) {
    auto reply = std::move(p->done);
    reply(make_error("no etcd endpoints"));
    return;
  }
  const std::size_t index = (p->first + p->tried) % endpoints_.size();
  sys::HttpRequest req;
  req.url = endpoints_[index] + p->path;
  req.method = HttpMethod::post;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = p->body;
  req.timeout = timeout_;
  // Why 4 MiB: the largest answer is the list of one action's slot holders (keys only); a
  // fleet of 100,000 hosts fits.
  req.body_limit = 4 * 1024 * 1024;
  req.ca_file = ca_file_;
  req.cert_file = cert_file_;
  req.key_file = key_file_;
  auto id = std::make_shared<sys::HttpClient::RequestId>(0);
  const sys::HttpClient::RequestId started = http_.start(
      req, [this, alive = std::weak_ptr<bool>(alive_), p, index, id](sys::HttpResponse r) {
        const auto token = alive.lock();
        if (!token || !*token) return;
        in_flight_.erase(*id);
        std::string error;
        if (r.transport != FailureKind::none) {
          error = r.error;
        } else if (r.status >= 500 || r.status < 200) {
          error = "HTTP " + std::to_string(r.status);
        }
        Result<nlohmann::json> parsed = make_error("");
        if (error.empty()) {
          parsed = parse_json(r.body);
          if (!parsed || !parsed->is_object()) {
            error = "HTTP " + std::to_string(r.status) + " but not a JSON object";
          }
        }
        if (error.empty() && r.status != 200) {
          // etcd refused the request itself (bad request, auth): another endpoint would too.
          const nlohmann::json& j = *parsed;
          std::string why = j.value("message", j.value("error", std::string()));
          if (why.size() > 200) why.resize(200);
          auto reply = std::move(p->done);
          reply(make_error("etcd " + endpoints_[index] + " refused: HTTP " +
                           std::to_string(r.status) + (why.empty() ? "" : ": " + why)));
          return;
        }
        if (!error.empty()) {
          if (p->first_error.empty()) p->first_error = "etcd " + endpoints_[index] + ": " + error;
          if (++p->tried < endpoints_.size()) {
            attempt(p);
            return;
          }
          auto reply = std::move(p->done);
          reply(
              make_error(p->first_error + (endpoints_.size() > 1
                                               ? " (and " + std::to_string(endpoints_.size() - 1) +
                                                     " other endpoint(s) failed)"
                                               : "")));
          return;
        }
        preferred_ = index;
        answered_ = endpoints_[index];
        auto reply = std::move(p->done);
        reply(std::move(*parsed));
      });
  *id = started;
  if (started != 0) in_flight_.insert(started);
}

std::string etcd_key(std::string_view key) { return base64_encode(key); }

std::string etcd_prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return base64_encode(end);
}

std::optional<long long> etcd_int(const nlohmann::json& object, const char* field) {
  if (!object.is_object()) return std::nullopt;
  const auto it = object.find(field);
  if (it == object.end()) return 0;
  if (it->is_number_integer()) return it->get<long long>();
  if (!it->is_string()) return std::nullopt;
  const std::string& s = it->get_ref<const std::string&>();
  long long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace vigil::fleet
