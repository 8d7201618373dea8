#include "agent/mitigate/mitigation.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "agent/incidents/timeline.h"

namespace vigil {

void MitigationLedger::ran(const std::string& ref, const std::string& target, TimePoint at) {
  runs_[{ref, target}].push_back(at);
}

void MitigationLedger::unrun(const std::string& ref, const std::string& target, TimePoint at) {
  const auto it = runs_.find({ref, target});
  if (it == runs_.end()) return;
  const auto t = std::find(it->second.begin(), it->second.end(), at);
  if (t != it->second.end()) it->second.erase(t);
  if (it->second.empty()) runs_.erase(it);
}

int MitigationLedger::runs_within(const std::string& ref, const std::string& target, Duration per,
                                  TimePoint now) const {
  const auto it = runs_.find({ref, target});
  if (it == runs_.end()) return 0;
  return static_cast<int>(std::count_if(it->second.begin(), it->second.end(),
                                        [&](TimePoint t) { return t > now - per && t <= now; }));
}

std::optional<TimePoint> MitigationLedger::last_run(const std::string& ref,
                                                    const std::string& target) const {
  const auto it = runs_.find({ref, target});
  if (it == runs_.end() || it->second.empty()) return std::nullopt;
  return *std::max_element(it->second.begin(), it->second.end());
}

int MitigationLedger::blocks_within(Duration per, TimePoint now) const {
  int n = 0;
  for (const auto& [k, times] : runs_) {
    if (k.first.rfind("block:", 0) != 0) continue;
    n += static_cast<int>(std::count_if(times.begin(), times.end(),
                                        [&](TimePoint t) { return t > now - per && t <= now; }));
  }
  return n;
}

void MitigationLedger::open_circuit(const std::string& key, const std::string& reason,
                                    TimePoint at) {
  circuits_.insert_or_assign(key, Circuit{reason, at});
}

bool MitigationLedger::close_circuit(const std::string& key) { return circuits_.erase(key) > 0; }

const MitigationLedger::Circuit* MitigationLedger::circuit(const std::string& key) const {
  const auto it = circuits_.find(key);
  return it == circuits_.end() ? nullptr : &it->second;
}

void MitigationLedger::prune(Duration keep, TimePoint now) {
  for (auto it = runs_.begin(); it != runs_.end();) {
    auto& times = it->second;
    times.erase(
        std::remove_if(times.begin(), times.end(), [&](TimePoint t) { return t <= now - keep; }),
        times.end());
    it = times.empty() ? runs_.erase(it) : std::next(it);
  }
}

std::string MitigationLedger::to_json() const {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& [k, times] : runs_) {
    nlohmann::json at = nlohmann::json::array();
    for (TimePoint t : times) at.push_back(format_time(t));
    runs.push_back({{"action", k.first}, {"target", k.second}, {"at", at}});
  }
  nlohmann::json circuits = nlohmann::json::array();
  for (const auto& [key, c] : circuits_) {
    circuits.push_back({{"key", key}, {"reason", c.reason}, {"opened", format_time(c.opened)}});
  }
  return nlohmann::json{{"version", 1}, {"runs", runs}, {"circuits", circuits}}.dump() + "\n";
}

Result<MitigationLedger> MitigationLedger::from_json(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return make_error("not a JSON object");
  // is_number_integer first: value() throws on a non-number (found by fuzz_ledger), and a
  // boolean or 1.9 is no version.
  if (!j.contains("version") || !j["version"].is_number_integer() ||
      j["version"].get<std::int64_t>() != 1) {
    return make_error("unknown version (expected 1)");
  }
  MitigationLedger l;
  const auto str = [](const nlohmann::json& o, const char* k) -> std::optional<std::string> {
    if (!o.is_object() || !o.contains(k) || !o[k].is_string()) return std::nullopt;
    return o[k].get<std::string>();
  };
  if (j.contains("runs")) {
    if (!j["runs"].is_array()) return make_error("'runs' is not an array");
    for (const auto& r : j["runs"]) {
      const auto action = str(r, "action");
      const auto target = str(r, "target");
      if (!action || !target || !r.contains("at") || !r["at"].is_array()) {
        return make_error("a run lacks action, target or at");
      }
      auto& times = l.runs_[{*action, *target}];
      for (const auto& t : r["at"]) {
        const auto at = t.is_string() ? parse_time(t.get<std::string>()) : std::nullopt;
        if (!at) return make_error("a run of " + *action + " has a bad time");
        times.push_back(*at);
      }
    }
  }
  if (j.contains("circuits")) {
    if (!j["circuits"].is_array()) return make_error("'circuits' is not an array");
    for (const auto& c : j["circuits"]) {
      const auto key = str(c, "key");
      const auto opened = str(c, "opened");
      const auto at = opened ? parse_time(*opened) : std::nullopt;
      if (!key || !at) return make_error("a circuit lacks key or opened");
      l.circuits_[*key] = Circuit{str(c, "reason").value_or(""), *at};
    }
  }
  return l;
}

LadderState ladder_state(const Incident& inc) {
  LadderState s;
  for (const TimelineEvent& e : inc.timeline) {
    if (e.type != TimelineEvent::Type::mitigation) continue;
    const auto field = [&e](const char* k) {
      const auto it = e.fields.find(k);
      return it == e.fields.end() ? std::string() : it->second;
    };
    const std::string o = field("outcome");
    int rung = s.rung;
    if (const std::string r = field("rung"); !r.empty()) {
      rung = std::clamp(std::atoi(r.c_str()), 0, 1000);
    }
    if (o == outcome::started) {
      ++s.ran;
      s.phase = LadderState::Phase::acting;
      s.rung = rung;
      s.ref = field("action");
      s.target = field("target");
    } else if (o == outcome::ok) {
      s.phase = LadderState::Phase::verifying;
      s.rung = rung;
      s.ref = field("action");
      s.target = field("target");
      s.deadline = parse_time(field("deadline")).value_or(e.at);
    } else if (o == outcome::failed || o == outcome::skipped) {
      if (const std::string a = field("action"); !a.empty()) s.tried.insert(a);
      // A step refused right after it started (systemd was restarting the unit itself) did
      // nothing: it does not count as an action that ran.
      if (o == outcome::skipped && s.phase == LadderState::Phase::acting && rung == s.rung) {
        --s.ran;
      }
      s.phase = LadderState::Phase::idle;
      s.rung = rung + 1;
    } else if (o == outcome::verified || o == outcome::would || o == outcome::gave_up) {
      s.phase = LadderState::Phase::done;
    }
  }
  return s;
}

LadderOwner ladder_owner(const Incident& inc, const Config& config) {
  LadderOwner fallback;
  for (const auto& [k, m] : inc.members) {
    const CheckConfig* c = config.find_check(m.check);
    if (c == nullptr || c->mitigate.empty()) continue;
    if (m.firing || m.flapping) return {c, m.key};
    if (fallback.check == nullptr) fallback = {c, m.key};
  }
  return fallback;
}

namespace {

std::string minutes_text(Duration d) { return format_duration(d); }

}  // namespace

Decision decide(const Incident& inc, const LadderState& ladder, const Config& config,
                const MitigationLedger& ledger, const Guards& guards, TimePoint now) {
  Decision d;
  d.rung = ladder.rung;
  if (!inc.open() || ladder.phase != LadderState::Phase::idle) return d;
  const LadderOwner owner = ladder_owner(inc, config);
  if (owner.check == nullptr) return d;
  const std::vector<std::string>& steps = owner.check->mitigate;
  // Why the holds come first: an action during a maintenance window fights the human doing
  // the work; an action on a flapping check is a coin toss that resets the evidence.
  if (guards.maintenance || inc.maintenance) {
    d.kind = Decision::Kind::wait;
    d.reason = "maintenance window: no mitigations until it ends";
    return d;
  }
  if (inc.flapping()) {
    d.kind = Decision::Kind::wait;
    d.reason = "flapping: mitigations on hold until the check settles";
    return d;
  }
  if (const MitigationLedger::Circuit* c = ledger.circuit(inc.dedupe_key)) {
    d.kind = Decision::Kind::escalate;
    d.reason = "circuit open since " + format_time(c->opened) + " (" + c->reason +
               "): no automatic action until a human acks (vigil ack ID) or it stays healthy for " +
               format_duration(config.mitigation.circuit_reset);
    return d;
  }
  int next = static_cast<int>(steps.size());
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (ladder.tried.count(steps[i]) == 0) {
      next = static_cast<int>(i);
      break;
    }
  }
  d.rung = next;
  if (next >= static_cast<int>(steps.size())) {
    d.kind = Decision::Kind::escalate;
    if (ladder.ran == 0) {
      // Nothing ran (every rung was refused: allow-listed, not an address, ...): there is no
      // misbehaving automation to stop, so no circuit; a human still has to look.
      d.reason = "no mitigation could apply: a human is needed";
      return d;
    }
    d.open_circuit = true;
    d.reason = steps.size() == 1 ? "the only mitigation did not help: a human is needed"
                                 : "all " + std::to_string(steps.size()) +
                                       " mitigations were tried: a human is needed";
    return d;
  }
  const std::string& ref = steps[static_cast<std::size_t>(next)];
  d.ref = ref;
  const ActionConfig* a = config.find_action(ref);
  if (a == nullptr) {  // the config validator refuses this; a reload race must not crash
    d.kind = Decision::Kind::skip;
    d.reason = "no action " + ref + " in the configuration";
    return d;
  }
  d.action = a;
  switch (a->kind) {
    case ActionKind::restart:
      d.target = a->unit;
      break;
    case ActionKind::rollback:
      d.target = a->name;
      break;
    case ActionKind::block: {
      // The key is journal text: parsed strictly, and only its canonical form goes further.
      const Result<IpAddress> ip = parse_ip(owner.key);
      if (!ip) {
        d.kind = Decision::Kind::skip;
        d.reason = "not blocked: " + ip.error().message;
        return d;
      }
      d.target = ip->to_string();
      // The global rate first: it is cheap, and in a wave it holds hundreds of incidents that
      // must not each read the host's addresses and sessions every second.
      if (ledger.blocks_within(Duration(60'000), now) >= config.mitigation.max_blocks_per_minute) {
        d.kind = Decision::Kind::wait;
        d.retry_at = now + Duration(1'000);
        d.reason = "rate limit: " + std::to_string(config.mitigation.max_blocks_per_minute) +
                   " blocks in the last minute (max_blocks_per_minute)";
        return d;
      }
      if (guards.protected_reason) {
        if (std::optional<std::string> why = guards.protected_reason(*ip)) {
          d.kind = Decision::Kind::skip;
          d.reason = "never blocked: " + d.target + " is " + *why;
          return d;
        }
      }
      break;
    }
  }
  if (a->kind == ActionKind::rollback && guards.release_age) {
    const std::optional<Duration> age = guards.release_age(a->dir);
    if (age && *age > a->deployed_within) {
      // A failure long after a deploy is rarely the deploy's: rolling back would walk the app
      // into old code (and mark a good release bad) for, say, a database outage.
      d.kind = Decision::Kind::skip;
      d.reason = "not rolled back: the current release has been live for " + format_duration(*age) +
                 ", longer than deployed_within (" + format_duration(a->deployed_within) + ")";
      return d;
    }
  }
  const int runs = ledger.runs_within(ref, d.target, a->per, now);
  if (runs >= a->max_runs) {
    d.kind = Decision::Kind::escalate;
    d.open_circuit = true;
    d.reason = "budget exhausted: " + ref + " ran " + std::to_string(runs) + " time(s) on " +
               d.target + " within " + format_duration(a->per) +
               " (max_runs = " + std::to_string(a->max_runs) + ")";
    return d;
  }
  if (const auto last = ledger.last_run(ref, d.target); last && a->cooldown > Duration::zero()) {
    if (*last + a->cooldown > now) {
      d.kind = Decision::Kind::wait;
      d.retry_at = *last + a->cooldown;
      d.reason = "cooldown: " + ref + " ran on " + d.target + " at " + format_time(*last) +
                 "; not again before " + format_time(*d.retry_at) + " (cooldown " +
                 minutes_text(a->cooldown) + ")";
      return d;
    }
  }
  d.kind = Decision::Kind::act;
  // Either switch makes it a dry run: an action's dry_run = false cannot override --dry-run.
  d.dry_run = guards.dry_run == DryRun::yes || a->dry_run.value_or(DryRun::no) == DryRun::yes
                  ? DryRun::yes
                  : DryRun::no;
  return d;
}

}  // namespace vigil
