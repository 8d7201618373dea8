#include "agent/fleet/budget.h"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "agent/core/base64.h"
#include "agent/core/time.h"
#include "agent/sys/log.h"

namespace vigil::fleet {

namespace {

using Json = nlohmann::json;

// Why 3: a transaction fails only when another host took or renewed a slot of the same action
// between our read and our write; three in a row means a stampede, and the action is asked
// again after `retry` anyway.
constexpr int kMaxTries = 3;

long long seconds_of(Duration d) {
  return std::max<long long>(1, std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

Json range_of(const std::string& prefix) {
  return {{"key", etcd_key(prefix)}, {"range_end", etcd_prefix_end(prefix)}};
}

// Why 5: enough to see who acts; a cap of 50 must not make a timeline line of 50 names.
constexpr std::size_t kNamesShown = 5;

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size() && i < kNamesShown; ++i) {
    out += (out.empty() ? "" : ", ") + v[i];
  }
  if (v.size() > kNamesShown) out += " and " + std::to_string(v.size() - kNamesShown) + " more";
  return out;
}

// A holder's name as this host shows it (timeline, pages, terminal): any member of the fleet can
// write keys, so a name is taken only as [agent] hostname allows it, else shown as "?".
std::string shown_host(std::string_view name) {
  const bool ok = !name.empty() && name.size() <= 253 &&
                  std::all_of(name.begin(), name.end(), [](unsigned char c) {
                    return std::isalnum(c) || c == '-' || c == '.' || c == '_';
                  });
  return ok ? std::string(name) : "?";
}

}  // namespace

std::string_view to_string(SlotAnswer::Kind k) {
  switch (k) {
    case SlotAnswer::Kind::granted:
      return "granted";
    case SlotAnswer::Kind::full:
      return "full";
    case SlotAnswer::Kind::unavailable:
      return "unavailable";
  }
  return "unavailable";
}

std::string slots_prefix(const std::string& fleet, const std::string& action_ref) {
  return "/vigil/" + fleet + "/slots/" + action_ref + "/";
}

std::string members_prefix(const std::string& fleet) { return "/vigil/" + fleet + "/members/"; }

Budget::Budget(boost::asio::io_context& io, sys::HttpClient& http, FleetSettings settings,
               std::string host)
    : io_(io),
      settings_(std::move(settings)),
      host_(std::move(host)),
      etcd_(http, settings_),
      timer_(io) {}

Budget::~Budget() { timer_.cancel(); }

void Budget::start() { grant(); }

void Budget::stop() {
  stopped_ = true;
  timer_.cancel();
}

std::string Budget::slot_key(const std::string& action_ref) const {
  return slots_prefix(settings_.name, action_ref) + host_;
}

void Budget::arm(Duration after, void (Budget::*what)()) {
  if (stopped_) return;
  timer_.expires_after(after);
  timer_.async_wait(
      [this, alive = std::weak_ptr<Alive>(alive_), what](const boost::system::error_code& ec) {
        if (ec || alive.expired()) return;
        (this->*what)();
      });
}

void Budget::failed(const std::string& error) {
  // Logged when the kind of trouble changes, not at every retry of the same outage.
  const std::string reason = stable_reason(error);
  if (reason != last_reason_) sys::log_warning("fleet " + settings_.name + ": " + error);
  last_reason_ = reason;
  last_error_ = error;
}

void Budget::answered() {
  if (!last_error_.empty()) {
    sys::log_info("fleet " + settings_.name + ": etcd answers again (" + etcd_.endpoint() + ")");
  }
  last_error_.clear();
  last_reason_.clear();
  last_ok_ = Clock::now();
}

void Budget::grant() {
  if (stopped_ || lease_ != Lease::none) return;
  timer_.cancel();
  lease_ = Lease::granting;
  const auto finish = [this](const std::string& error) {
    lease_ = error.empty() ? Lease::live : Lease::none;
    if (!error.empty()) {
      lease_id_ = 0;
      failed(error);
      arm(settings_.retry, &Budget::grant);
    } else {
      lease_renewed_ = Clock::now();
      arm(settings_.lease_ttl / 3, &Budget::keep_alive);
    }
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& w : waiting) w(error);
  };
  etcd_.call("/v3/lease/grant", Json{{"TTL", std::to_string(seconds_of(settings_.lease_ttl))}},
             [this, finish](Result<Json> r) {
               if (!r) return finish(r.error().message);
               const auto id = etcd_int(*r, "ID");
               if (!id || *id == 0) return finish("etcd granted no lease");
               answered();
               lease_id_ = *id;
               const Json member = {{"host", host_}, {"since", format_time(Clock::now())}};
               etcd_.call("/v3/kv/put",
                          Json{{"key", etcd_key(members_prefix(settings_.name) + host_)},
                               {"value", base64_encode(member.dump())},
                               {"lease", std::to_string(lease_id_)}},
                          [this, finish](Result<Json> put) {
                            if (!put) return finish(put.error().message);
                            answered();
                            finish("");
                          });
             });
}

void Budget::keep_alive() {
  if (stopped_ || lease_ != Lease::live) return;
  etcd_.call(
      "/v3/lease/keepalive", Json{{"ID", std::to_string(lease_id_)}}, [this](Result<Json> r) {
        if (lease_ != Lease::live) return;
        if (!r) {
          failed(r.error().message);
          if (Clock::now() - lease_renewed_ >= settings_.lease_ttl) {
            lease_lost("no keep-alive was answered for " + format_duration(settings_.lease_ttl));
            arm(settings_.retry, &Budget::grant);
          } else {
            arm(settings_.lease_ttl / 6, &Budget::keep_alive);
          }
          return;
        }
        answered();
        const Json& result = r->contains("result") ? (*r)["result"] : *r;
        const auto ttl = etcd_int(result, "TTL");
        if (!ttl || *ttl <= 0) {
          lease_lost("etcd says the lease expired");
          grant();
          return;
        }
        lease_renewed_ = Clock::now();
        arm(settings_.lease_ttl / 3, &Budget::keep_alive);
      });
}

void Budget::lease_lost(const std::string& why) {
  const std::vector<std::string> refs = held();
  sys::log_error("fleet " + settings_.name + ": lease lost (" + why + ")" +
                 (refs.empty() ? std::string()
                               : "; the slots of " + join(refs) + " are free for other hosts now"));
  held_.clear();
  lease_ = Lease::none;
  lease_id_ = 0;
}

void Budget::with_lease(std::function<void(const std::string&)> next) {
  if (stopped_) return next("vigil is stopping");
  if (lease_ == Lease::live) return next("");
  waiting_.push_back(std::move(next));
  if (lease_ == Lease::none) grant();
}

void Budget::acquire(const ActionConfig& action, const std::string& incident,
                     std::function<void(SlotAnswer)> answer) {
  // Every answer is counted (the metrics); `done` runs on the loop, from this budget's callbacks.
  auto done = [this, ref = action.ref(), answer = std::move(answer)](SlotAnswer a) {
    ++answers_[{ref, std::string(to_string(a.kind))}];
    answer(std::move(a));
  };
  with_lease([this, action, incident, done = std::move(done)](const std::string& error) mutable {
    if (!error.empty()) {
      SlotAnswer a;
      a.why = stable_reason(error);
      return done(std::move(a));
    }
    attempt(action, incident, 1, std::move(done));
  });
}

void Budget::attempt(const ActionConfig& action, const std::string& incident, int tries,
                     std::function<void(SlotAnswer)> done) {
  const std::string ref = action.ref();
  const std::string prefix = slots_prefix(settings_.name, ref);
  Json reads = Json::array();
  Json slots = range_of(prefix);
  slots["keys_only"] = true;
  reads.push_back({{"request_range", slots}});
  const bool percent = action.fleet_max_percent > 0;
  if (percent) {
    Json members = range_of(members_prefix(settings_.name));
    members["count_only"] = true;
    reads.push_back({{"request_range", members}});
  }
  // The slot goes on the lease that is live now; if it is lost meanwhile the answer is
  // "unavailable", never a key on no lease (one that would never expire).
  const long long lease = lease_id_;
  // One round trip reads the holders (and the live members) at one revision.
  etcd_.call(
      "/v3/kv/txn", Json{{"success", reads}},
      [this, action, incident, tries, ref, prefix, percent, lease,
       done = std::move(done)](Result<Json> r) mutable {
        SlotAnswer a;
        if (!r) return done(unavailable(r.error().message));
        answered();
        if (lease_ != Lease::live || lease_id_ != lease || lease == 0) {
          return done(unavailable("the lease changed while asking"));
        }
        const auto revision = etcd_int(r->value("header", Json::object()), "revision");
        const Json responses = r->value("responses", Json::array());
        if (!revision || !responses.is_array() || responses.size() != (percent ? 2u : 1u)) {
          return done(unavailable("etcd answered the read of " + prefix + " with something else"));
        }
        const std::string mine = slot_key(ref);
        std::optional<long long> mine_revision;  // set when this host's key is there
        const Json range = responses[0].value("response_range", Json::object());
        for (const Json& kv : range.value("kvs", Json::array())) {
          const auto key = base64_decode(kv.value("key", std::string()));
          if (!key || !key->starts_with(prefix)) continue;
          if (*key == mine) mine_revision = etcd_int(kv, "mod_revision");
          a.holders.push_back(shown_host(std::string_view(*key).substr(prefix.size())));
        }
        if (percent) {
          const auto members =
              etcd_int(responses[1].value("response_range", Json::object()), "count").value_or(0);
          a.cap =
              static_cast<int>(std::max<long long>(1, members * action.fleet_max_percent / 100));
        } else {
          a.cap = action.fleet_max;
        }
        if (!mine_revision && static_cast<int>(a.holders.size()) >= a.cap) {
          a.kind = SlotAnswer::Kind::full;
          a.why = "slots for " + ref + ": " + std::to_string(a.holders.size()) + " of " +
                  std::to_string(a.cap) + " taken (by " + join(a.holders) + ")";
          return done(std::move(a));
        }
        const Json value = {
            {"host", host_}, {"incident", incident}, {"since", format_time(Clock::now())}};
        const std::string value64 = base64_encode(value.dump());
        const Json put = {
            {"request_put",
             {{"key", etcd_key(mine)}, {"value", value64}, {"lease", std::to_string(lease)}}}};
        // Created only if no slot of this action changed since the read (so the count still
        // holds) and this host has none. This host's own key (an earlier vigil process here, or
        // another incident here) is put again on the current lease only if it is still the key
        // that was read: a give-back racing with it wins or loses whole, never half.
        Json compare = Json::array();
        if (mine_revision) {
          compare.push_back({{"key", etcd_key(mine)},
                             {"target", "MOD"},
                             {"result", "EQUAL"},
                             {"mod_revision", std::to_string(*mine_revision)}});
        } else {
          Json unchanged = range_of(prefix);
          unchanged["target"] = "MOD";
          unchanged["result"] = "LESS";
          unchanged["mod_revision"] = std::to_string(*revision + 1);
          compare.push_back(unchanged);
          compare.push_back({{"key", etcd_key(mine)},
                             {"target", "CREATE"},
                             {"result", "EQUAL"},
                             {"create_revision", "0"}});
        }
        etcd_.call(
            "/v3/kv/txn", Json{{"compare", compare}, {"success", Json::array({put})}},
            [this, action, incident, tries, ref, value64, a = std::move(a),
             done = std::move(done)](Result<Json> w) mutable {
              if (!w) {
                // Whether the put was applied is unknown: if it was, nobody would ever give
                // that key back. It is deleted later if it is still exactly this put's.
                forget_later(ref, value64);
                return done(unavailable(w.error().message));
              }
              answered();
              if (w->value("succeeded", false)) {
                held_[ref].insert(incident);
                put_revision_[ref] =
                    etcd_int(w->value("header", Json::object()), "revision").value_or(0);
                a.kind = SlotAnswer::Kind::granted;
                if (std::find(a.holders.begin(), a.holders.end(), host_) == a.holders.end()) {
                  a.holders.push_back(host_);
                }
                a.why = "slot " + std::to_string(a.holders.size()) + " of " +
                        std::to_string(a.cap) + " for " + ref + " taken";
                return done(std::move(a));
              }
              if (tries < kMaxTries) return attempt(action, incident, tries + 1, std::move(done));
              a.kind = SlotAnswer::Kind::full;
              a.why = "other hosts took slots of " + ref + " " + std::to_string(kMaxTries) +
                      " times while this one asked";
              done(std::move(a));
            });
      });
}

SlotAnswer Budget::unavailable(const std::string& error) {
  failed(error);
  SlotAnswer a;
  a.why = stable_reason(error);
  return a;
}

// The hold reason of the timeline: the same while etcd stays down the same way, so it is
// written once, not at every retry (curl's text carries timings; it goes to the log and
// `vigil status`).
std::string Budget::stable_reason(const std::string& error) const {
  if (const auto at = error.find(" refused: HTTP "); at != std::string::npos) {
    return "etcd refused the request (" + error.substr(at + 10, 8) + ")";
  }
  if (error.rfind("etcd ", 0) == 0) {
    std::string where;
    for (const std::string& e : settings_.etcd) where += (where.empty() ? "" : ", ") + e;
    return "etcd cannot be reached (" + where + ")";
  }
  return error;
}

void Budget::release(const std::string& action_ref, const std::string& incident) {
  auto it = held_.find(action_ref);
  if (it == held_.end()) return;
  it->second.erase(incident);
  if (!it->second.empty()) return;
  held_.erase(it);
  long long revision = 0;
  if (auto r = put_revision_.find(action_ref); r != put_revision_.end()) {
    revision = r->second;
    put_revision_.erase(r);
  }
  const std::string key = etcd_key(slot_key(action_ref));
  const Json remove = {{"request_delete_range", {{"key", key}}}};
  // Only the key as this host last put it: if another incident here has put it again since
  // (a racing acquire), that one keeps it.
  Json txn = {{"success", Json::array({remove})}};
  if (revision > 0) {
    txn["compare"] = Json::array({{{"key", key},
                                   {"target", "MOD"},
                                   {"result", "EQUAL"},
                                   {"mod_revision", std::to_string(revision)}}});
  }
  etcd_.call("/v3/kv/txn", txn, [this, action_ref, revision](Result<Json> r) {
    if (r) {
      answered();
      return;
    }
    // The key stays while the lease lives (the keep-alives go on): give it back again after
    // `retry`, unless this host took the slot again meanwhile.
    failed(r.error().message + " (giving back the slot of " + action_ref + ")");
    auto again = std::make_shared<boost::asio::steady_timer>(io_, settings_.retry);
    again->async_wait([this, alive = std::weak_ptr<Alive>(alive_), again, action_ref,
                       revision](const boost::system::error_code& ec) {
      if (ec || alive.expired() || held_.count(action_ref) > 0) return;
      held_[action_ref];  // empty: release() below gives the key back again
      if (revision > 0) put_revision_[action_ref] = revision;
      release(action_ref, "");
    });
  });
}

void Budget::forget_later(const std::string& action_ref, const std::string& value64) {
  auto later = std::make_shared<boost::asio::steady_timer>(io_, settings_.retry);
  later->async_wait([this, alive = std::weak_ptr<Alive>(alive_), later, action_ref,
                     value64](const boost::system::error_code& ec) {
    if (ec || alive.expired()) return;
    const std::string key = etcd_key(slot_key(action_ref));
    const Json txn = {
        {"compare",
         Json::array(
             {{{"key", key}, {"target", "VALUE"}, {"result", "EQUAL"}, {"value", value64}}})},
        {"success", Json::array({{{"request_delete_range", {{"key", key}}}}})}};
    etcd_.call("/v3/kv/txn", txn, [this](Result<Json> r) {
      if (r) answered();
      // Not retried: if etcd is still away, the key (if it exists at all) goes with the lease
      // the next time this host loses it, and `vigil status` shows the error meanwhile.
    });
  });
}

std::vector<std::string> Budget::held() const {
  std::vector<std::string> refs;
  for (const auto& [ref, incidents] : held_) refs.push_back(ref);
  return refs;
}

nlohmann::json Budget::status() const {
  Json out = {{"name", settings_.name},
              {"host", host_},
              {"etcd", settings_.etcd},
              {"endpoint", etcd_.endpoint()},
              {"lease", lease_ == Lease::live       ? "live"
                        : lease_ == Lease::granting ? "granting"
                                                    : "none"},
              {"lease_ttl_seconds", seconds_of(settings_.lease_ttl)},
              {"unreachable", std::string(to_string(settings_.unreachable))}};
  if (!last_error_.empty()) out["error"] = last_error_;
  if (last_ok_ != TimePoint{}) out["last_answer"] = format_time(last_ok_);
  Json held = Json::object();
  for (const auto& [ref, incidents] : held_) {
    held[ref] = Json(std::vector<std::string>(incidents.begin(), incidents.end()));
  }
  out["held"] = std::move(held);
  return out;
}

}  // namespace vigil::fleet
