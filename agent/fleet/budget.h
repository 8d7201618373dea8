// The fleet's budget for automated actions (docs/FLEET.md): before an action with a fleet cap
// runs, the host takes a slot in etcd, a key /vigil/FLEET/slots/ACTION/HOST attached to the
// host's lease and created in a transaction that succeeds only while fewer than the cap exist.
// The slot is given back when the action's verification ends; if the host dies, its lease
// expires and etcd deletes the key. Live hosts register /vigil/FLEET/members/HOST on the same
// lease, which is what a percentage cap counts.
//
// Everything runs on the loop; answers come back through callbacks. The budget never decides
// what to do about a refusal: the mitigator does (hold, or act when etcd is unreachable and
// [fleet] unreachable = "act").
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/fleet/etcd.h"
#include "agent/sys/http.h"

namespace vigil::fleet {

struct SlotAnswer {
  enum class Kind {
    granted,      // the slot is this host's until release()
    full,         // the cap is reached: `holders` act now
    unavailable,  // etcd could not be asked (unreachable, refused, no lease): `why`
  };
  Kind kind = Kind::unavailable;
  std::string why;                   // one line for the timeline
  std::vector<std::string> holders;  // full, granted: the hosts holding slots (granted: incl. us)
  int cap = 0;                       // the cap as counted now (percent caps: of live members)
};

// "granted", "full", "unavailable".
std::string_view to_string(SlotAnswer::Kind k);

// The etcd keys of a fleet (exposed for tests and the status).
std::string slots_prefix(const std::string& fleet, const std::string& action_ref);
std::string members_prefix(const std::string& fleet);

class Budget {
 public:
  Budget(boost::asio::io_context& io, sys::HttpClient& http, FleetSettings settings,
         std::string host);
  ~Budget();
  Budget(const Budget&) = delete;
  Budget& operator=(const Budget&) = delete;

  // Takes the lease and registers the host as a member; retried every `retry` until it works,
  // then kept alive every third of the lease.
  void start();
  // A slot for `action` (its ref is the key: every host that runs "restart:app" shares one
  // budget) on behalf of `incident`. One slot per host and action: a second incident of this
  // host on the same action shares it. `done` runs once on the loop.
  void acquire(const ActionConfig& action, const std::string& incident,
               std::function<void(SlotAnswer)> done);
  // `incident` no longer needs its slot for `action_ref`; the key goes when no incident does.
  void release(const std::string& action_ref, const std::string& incident);
  // No more keep-alives or new requests (vigil stops, or a reload replaces the budget): the
  // lease, and with it this host's slots and membership, expires after lease_ttl.
  void stop();

  const FleetSettings& settings() const { return settings_; }
  // For `vigil status`: the etcd endpoint, the lease, the slots held.
  nlohmann::json status() const;
  // For the metrics: etcd's last answer was usable (and one has come since start; an
  // unreachable etcd, a refusal or an answer that could not be used is false); the
  // action refs whose slot this host holds; answers to acquire() since this budget started, by
  // action ref and "granted", "full" or "unavailable".
  bool etcd_up() const { return last_ok_ != TimePoint{} && last_error_.empty(); }
  std::vector<std::string> held() const;
  const std::map<std::pair<std::string, std::string>, std::uint64_t>& answers() const {
    return answers_;
  }

 private:
  struct Alive {};
  void grant();
  void keep_alive();
  void arm(Duration after, void (Budget::*what)());
  void lease_lost(const std::string& why);
  // Runs `next` once the lease is live, or with the reason it is not.
  void with_lease(std::function<void(const std::string& error)> next);
  void attempt(const ActionConfig& action, const std::string& incident, int tries,
               std::function<void(SlotAnswer)> done);
  void failed(const std::string& error);
  SlotAnswer unavailable(const std::string& error);
  std::string stable_reason(const std::string& error) const;
  // After `retry`, deletes the slot key of `action_ref` if its value is still exactly
  // `value64` (a put whose answer was lost).
  void forget_later(const std::string& action_ref, const std::string& value64);
  void answered();
  std::string slot_key(const std::string& action_ref) const;

  boost::asio::io_context& io_;
  FleetSettings settings_;
  std::string host_;
  Etcd etcd_;
  boost::asio::steady_timer timer_;
  enum class Lease { none, granting, live } lease_ = Lease::none;
  long long lease_id_ = 0;
  TimePoint lease_renewed_{};
  std::vector<std::function<void(const std::string&)>> waiting_;  // for the lease
  std::map<std::string, std::set<std::string>> held_;             // action ref -> incidents
  std::map<std::string, long long> put_revision_;  // action ref -> revision of our last put
  std::map<std::pair<std::string, std::string>, std::uint64_t> answers_;
  std::string last_error_;
  std::string last_reason_;  // stable_reason() of last_error_: what the log was told
  TimePoint last_ok_{};
  bool stopped_ = false;
  std::shared_ptr<Alive> alive_ = std::make_shared<Alive>();
};

}  // namespace vigil::fleet
