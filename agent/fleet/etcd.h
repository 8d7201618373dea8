// etcd's v3 JSON gateway (etcd 3.4 and later serve it under /v3/), over the agent's HttpClient
// on the loop: no thread, no gRPC, no new library. Keys and values are base64 in the JSON, 64-bit
// numbers are strings, and proto3 leaves out fields at their zero value ("succeeded": false,
// "count": 0), which the readers here take into account.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/result.h"
#include "agent/sys/http.h"

namespace vigil::fleet {

class Etcd {
 public:
  using Reply = std::function<void(Result<nlohmann::json>)>;

  Etcd(sys::HttpClient& http, const FleetSettings& settings);
  ~Etcd();
  Etcd(const Etcd&) = delete;
  Etcd& operator=(const Etcd&) = delete;

  // POSTs `body` to PATH ("/v3/kv/txn") on the endpoint that answered last, then on the others
  // in turn while they fail (no answer, a 5xx, or an answer that is not JSON). `done` runs once,
  // on the loop (inside call() only if curl refuses the request outright), never after the Etcd
  // is gone. The error names the endpoint and what went wrong ("etcd http://10.0.0.1:2379:
  // Failed to connect ...").
  void call(std::string_view path, nlohmann::json body, Reply done);

  // The endpoint that answered last ("" before any answer).
  const std::string& endpoint() const { return answered_; }

 private:
  struct Pending;
  void attempt(std::shared_ptr<Pending> p);

  sys::HttpClient& http_;
  std::vector<std::string> endpoints_;
  Duration timeout_;
  std::string ca_file_, cert_file_, key_file_;
  std::size_t preferred_ = 0;
  std::string answered_;
  std::set<sys::HttpClient::RequestId> in_flight_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The JSON gateway's spelling of a key: base64 of its bytes.
std::string etcd_key(std::string_view key);
// The end of the range of every key that starts with `prefix` (the prefix with its last byte
// plus one), base64.
std::string etcd_prefix_end(std::string_view prefix);
// A 64-bit field of an answer (a string or a number; absent = 0); nullopt if it is neither.
std::optional<long long> etcd_int(const nlohmann::json& object, const char* field);

}  // namespace vigil::fleet
