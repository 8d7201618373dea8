// The mitigator (agent/mitigator.h): decide() says what, this file does it and writes every step
// to the incident's timeline before and after (see agent/mitigate/mitigation.h).
#include "agent/mitigator.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "agent/core/time.h"
#include "agent/incidents/incident_text.h"
#include "agent/sys/files.h"
#include "agent/sys/log.h"

namespace vigil {

namespace {

// A mitigation event of step `d`: its outcome, rung, action, target and dry-run mark.
TimelineEvent mitigation_timeline_event(const Decision& d, const char* oc, const std::string& text,
                                        TimePoint at) {
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::mitigation;
  e.text = text;
  e.fields["outcome"] = oc;
  e.fields["rung"] = std::to_string(d.rung);
  if (d.action != nullptr) {
    e.fields["action"] = d.action->ref();
  } else if (!d.ref.empty()) {
    e.fields["action"] = d.ref;
  }
  if (!d.target.empty()) e.fields["target"] = d.target;
  if (d.dry_run == DryRun::yes) e.fields["dry_run"] = "yes";
  return e;
}

}  // namespace

Mitigator::Mitigator(IncidentBook& book, const Config& config,
                     std::map<ActionKind, std::unique_ptr<Action>> actions, Hooks hooks)
    : book_(book), config_(config), actions_(std::move(actions)), hooks_(std::move(hooks)) {}

void Mitigator::start() {
  load_ledger();
  for (auto& [kind, action] : actions_) action->start();
}

void Mitigator::reloaded() {
  for (auto& [kind, action] : actions_) action->reloaded();
}

void Mitigator::load_ledger() {
  const std::string dir = config_.agent.state_dir;
  std::ifstream in(dir + "/mitigations.json");
  if (!in) return;
  std::stringstream text;
  text << in.rdbuf();
  auto l = MitigationLedger::from_json(text.str());
  if (l) {
    ledger_ = std::move(*l);
    return;
  }
  // A ledger that cannot be read cannot be half-trusted: budgets restart from zero (and the log
  // says so loudly); the file is kept for a human as mitigations.json.bad.
  sys::log_error(dir + "/mitigations.json: " + l.error().message +
                 "; budgets start from zero (the bad file is kept as mitigations.json.bad)");
  if (auto kept = sys::rename_file(dir + "/mitigations.json", dir + "/mitigations.json.bad");
      !kept) {
    sys::log_error(kept.error().message);
  }
}

bool Mitigator::save_ledger() const {
  if (auto ok =
          sys::write_file_atomic(config_.agent.state_dir + "/mitigations.json", ledger_.to_json());
      !ok) {
    sys::log_error(ok.error().message);
    return false;
  }
  return true;
}

std::vector<IncidentBook::Change> Mitigator::event(const std::string& incident, const Decision& d,
                                                   const char* oc, const std::string& text,
                                                   TimePoint at) {
  return book_.record(incident, mitigation_timeline_event(d, oc, text, at));
}

void Mitigator::count(const TimelineEvent& e) {
  if (e.type != TimelineEvent::Type::mitigation) return;
  ++outcomes_[{incident_text::field(e, "action"), incident_text::field(e, "outcome")}];
}

void Mitigator::hold(const std::string& incident, const Decision& d, const std::string& why,
                     TimePoint at) {
  // Written once per reason: a cooldown re-checked every second must not fill the file.
  std::string& last = last_wait_[incident];
  if (last == why) return;
  last = why;
  hooks_.record(event(incident, d, outcome::waiting, "on hold: " + why, at));
}

void Mitigator::set_state(const std::string& incident, IncidentState s, const std::string& why,
                          TimePoint at) {
  const Incident* inc = book_.find(incident);
  if (inc == nullptr || !inc->open() || inc->state == s) return;
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::state;
  e.state = s;
  e.text = why;
  hooks_.record(book_.record(incident, std::move(e)));
}

void Mitigator::mitigate_all(TimePoint now) {
  std::vector<std::string> ids;
  for (const Incident* inc : book_.open()) ids.push_back(inc->id);
  for (const std::string& id : ids) mitigate(id, now);
}

std::optional<std::string> Mitigator::protected_reason(const IpAddress& ip, TimePoint now) {
  // Read at most once a second: in a wave, many decisions share one view of the host. A view
  // that could not be read whole is never reused: blocking resumes at the first decision after
  // the source is readable again, not up to a second later.
  if (!protected_ || !protected_->warnings.empty() || now - protected_at_ >= Duration(1'000) ||
      now < protected_at_) {
    protected_ = hooks_.read_protected();
    protected_at_ = now;
    // Loud: while a reader fails, every block is held (fail closed), and a human must know why
    // blocking stopped. Shown in `vigil status`, counted in the metrics.
    for (const std::string& w : protected_->warnings) {
      sys::log_error("protected addresses: " + w +
                     "; no address is blocked while it cannot be read (fail closed)");
      ++protection_failures_;
    }
  }
  if (auto why = why_protected(ip, *protected_)) return why;
  // Fail closed: if the host's addresses or sessions could not be read, vigil cannot tell that
  // this is not the admin's own address.
  if (!protected_->warnings.empty()) {
    return "possibly protected (cannot tell: " + protected_->warnings.front() + ")";
  }
  return std::nullopt;
}

// Loops over rungs that cannot apply, so one call either starts an action, waits, escalates or
// finds nothing to do.
void Mitigator::mitigate(const std::string& incident, TimePoint now) {
  if (stopping_ || acting_.count(incident) > 0) return;
  for (int guard = 0; guard < 64; ++guard) {
    const Incident* inc = book_.find(incident);
    if (inc == nullptr || !inc->open()) {
      last_wait_.erase(incident);
      fleet_wait_.erase(incident);
      fleet_bypass_.erase(incident);
      release_finished_slots();
      return;
    }
    // Right after vigil starts, every member check must have reported once: an incident
    // continued from before may have been fixed by hand meanwhile.
    if (!hooks_.fresh(*inc)) return;
    const LadderState ladder = ladder_state(*inc);
    Guards g;
    g.dry_run = config_.agent.dry_run;
    g.maintenance = std::any_of(inc->members.begin(), inc->members.end(), [&](const auto& m) {
      return hooks_.in_maintenance(m.second.check, now);
    });
    g.protected_reason = [this, now](const IpAddress& ip) { return protected_reason(ip, now); };
    g.release_age = [this, now](const std::string& dir) -> std::optional<Duration> {
      const std::optional<TimePoint> switched = hooks_.release_switched(dir);
      if (!switched) return std::nullopt;
      return *switched > now ? Duration::zero()
                             : std::chrono::duration_cast<Duration>(now - *switched);
    };
    const Decision d = decide(*inc, ladder, config_, ledger_, g, now);
    switch (d.kind) {
      case Decision::Kind::nothing:
        return;
      case Decision::Kind::wait:
        hold(incident, d, d.reason, now);
        return;
      case Decision::Kind::skip:
        hooks_.record(event(incident, d, outcome::skipped,
                            (d.action ? d.action->ref() + ": " : std::string()) + d.reason, now));
        continue;
      case Decision::Kind::escalate:
        if (d.open_circuit) {
          ledger_.open_circuit(inc->dedupe_key, d.reason, now);
          healthy_since_.erase(inc->dedupe_key);
          (void)save_ledger();
        }
        hooks_.record(event(incident, d, outcome::gave_up, "escalated: " + d.reason, now));
        set_state(incident, IncidentState::escalated, "escalated: a human is needed", now);
        return;
      case Decision::Kind::act:
        if (d.dry_run == DryRun::no) {
          if (const auto why = actions_.at(d.action->kind)->not_ready()) {
            hold(incident, d, *why, now);
            return;
          }
        }
        if (d.dry_run == DryRun::no && busy_.count(lock_key(d)) > 0) {
          // Another incident's action holds the same unit, app or address: one at a time (a
          // second RestartUnit would cancel the first job).
          hold(incident, d, "another mitigation on " + lock_key(d) + " is running", now);
          return;
        }
        if (d.dry_run == DryRun::no && !fleet_allows(incident, d, now)) return;
        last_wait_.erase(incident);
        run(incident, d, now);
        return;
    }
  }
}

std::string Mitigator::lock_key(const Decision& d) const {
  if (d.action == nullptr) return d.target;
  return actions_.at(d.action->kind)->lock_key(*d.action, d.target);
}

void Mitigator::run(const std::string& incident, Decision d, TimePoint now) {
  // From here on the action may outlive the config (a reload): keep a copy.
  d.owned = std::make_shared<const ActionConfig>(*d.action);
  d.action = d.owned.get();
  const ActionConfig& a = *d.action;
  Action& action = *actions_.at(a.kind);
  if (d.dry_run == DryRun::yes) {
    const std::string what = action.would(a, d.target, now);
    hooks_.record(event(incident, d, outcome::would, "dry-run: " + what, now));
    return;
  }
  ledger_.ran(a.ref(), d.target, now);
  d.started = now;
  if (!save_ledger()) {
    // A budget that cannot be written is no budget: after a restart of vigil it would start
    // from zero. A full disk is itself an incident; a human must look.
    ledger_.unrun(a.ref(), d.target, now);
    hooks_.record(event(incident, d, outcome::failed,
                        "not run: the run could not be recorded in " + config_.agent.state_dir +
                            "/mitigations.json",
                        now));
    return;
  }
  acting_.insert(incident);
  acting_ref_[incident] = a.ref();
  busy_.insert(lock_key(d));
  ++runs_;
  set_state(incident, IncidentState::mitigating, "mitigating: " + a.ref() + " on " + d.target, now);
  std::string fleet_text;
  if (auto n = fleet_note_.find(incident); n != fleet_note_.end()) {
    fleet_text = "; fleet: " + n->second;
    fleet_note_.erase(n);
  }
  fleet_bypass_.erase(incident);
  hooks_.record(event(incident, d, outcome::started,
                      "started " + a.ref() + " on " + d.target + " (rung " +
                          std::to_string(d.rung + 1) + fleet_text + ")",
                      now));
  // `d` owns its copy of the action's config (above): the callback keeps it alive.
  action.run(incident, a, d.target,
             [this, incident, d](ActionResult r, std::string text) { done(incident, d, r, text); });
}

void Mitigator::done(const std::string& incident, const Decision& d, ActionResult result,
                     const std::string& text) {
  acting_.erase(incident);
  acting_ref_.erase(incident);
  busy_.erase(lock_key(d));
  const TimePoint now = hooks_.clock();
  const Incident* inc = book_.find(incident);
  if (inc == nullptr || !inc->open()) {
    // The checks recovered while the action ran: the incident is resolved; its file still gets
    // the action's outcome, so the timeline never ends on "started".
    const TimelineEvent e = mitigation_timeline_event(
        d, result == ActionResult::ok ? outcome::ok : outcome::failed, text, now);
    count(e);  // appended to the closed incident's file: recorded() never sees it
    sys::log_info("incident " + incident + " (resolved meanwhile): " + e.text);
    hooks_.append_closed(incident, e);
    return;
  }
  if (result == ActionResult::refused) {
    // Refused before touching anything (systemd is already restarting the unit, or gave up on
    // it): not a failed attempt. No budget spent; the ladder goes on, and escalates at its end.
    ledger_.unrun(d.action->ref(), d.target, d.started);
    (void)save_ledger();
    hooks_.record(event(incident, d, outcome::skipped, text, now));
    mitigate(incident, now);
    return;
  }
  if (result == ActionResult::failed) {
    hooks_.record(event(incident, d, outcome::failed, text, now));
    mitigate(incident, now);
    return;
  }
  if (d.action->kind == ActionKind::block) {
    // A block is verified by its rule being in place; the incident resolves when the address
    // stops showing up in the journal (its window runs out).
    hooks_.record(event(incident, d, outcome::ok, text, now));
    hooks_.record(
        event(incident, d, outcome::verified, "verified: ufw holds the rule for " + d.target, now));
    return;
  }
  // A journal rule recovers only when its window runs out with fewer matches: its deadline must
  // leave it that long, or a fix that worked would be judged as not helping.
  Duration within = d.action->verify_within;
  for (const auto& [k, m] : inc->members) {
    const CheckConfig* c = config_.find_check(m.check);
    if (c == nullptr || c->journal() == nullptr) continue;
    within = std::max(within, c->journal()->window + c->interval * (c->recover_after + 1));
  }
  const TimePoint deadline = now + within;
  TimelineEvent e = mitigation_timeline_event(
      d, outcome::ok, text + "; verifying until " + format_time(deadline), now);
  e.fields["deadline"] = format_time(deadline);
  hooks_.record(book_.record(incident, std::move(e)));
  set_state(incident, IncidentState::verifying,
            "verifying: the checks must pass again within " + format_duration(within), now);
  hooks_.fast_verify(incident, deadline);
}

bool Mitigator::fleet_allows(const std::string& incident, const Decision& d, TimePoint now) {
  const ActionConfig& a = *d.action;
  if (!a.fleet_capped() || !hooks_.fleet_acquire) return true;
  const std::string ref = a.ref();
  if (auto h = fleet_held_.find(incident); h != fleet_held_.end() && h->second == ref) return true;
  if (auto b = fleet_bypass_.find(incident); b != fleet_bypass_.end() && b->second == ref) {
    return true;
  }
  FleetWait& w = fleet_wait_[incident];
  if (w.ref != ref) w = FleetWait{ref, false, TimePoint{}, TimePoint{}, {}};
  // An answer that never came (a budget replaced by a reload drops its requests) must not keep
  // the incident waiting forever: after kFleetAnswerBound the slot is asked for again.
  if (w.asking && now - w.asked_at < kFleetAnswerBound) return false;
  if (!w.asking && now < w.next_ask) {
    hold(incident, d, w.why, now);
    return false;
  }
  w.asking = true;
  w.asked_at = now;
  // The answer may come after a reload freed the config `d` points into: it keeps a copy.
  Decision kept = d;
  kept.owned = std::make_shared<const ActionConfig>(a);
  kept.action = kept.owned.get();
  // Every answer comes back on the loop; a fake may answer at once (then `w` is settled before
  // this returns, and the decision it led to has been made by fleet_answered()).
  hooks_.fleet_acquire(a, incident, [this, incident, kept](fleet::SlotAnswer answer) {
    fleet_answered(incident, kept, std::move(answer));
  });
  return false;
}

void Mitigator::fleet_replaced() {
  // The old budget's lease goes with it: the slots held are lost (they expire in etcd), and
  // the answers it owed never come.
  for (const auto& [incident, ref] : fleet_held_) {
    sys::log_warning("incident " + incident +
                     ": the fleet budget was replaced (reload); the slot "
                     "of " +
                     ref + " expires with the old lease");
  }
  fleet_held_.clear();
  fleet_bypass_.clear();
  for (auto& [incident, w] : fleet_wait_) {
    w.asking = false;
    w.next_ask = TimePoint{};
  }
}

void Mitigator::fleet_answered(const std::string& incident, const Decision& d,
                               fleet::SlotAnswer answer) {
  const std::string ref = d.action->ref();
  const auto it = fleet_wait_.find(incident);
  const bool wanted = !stopping_ && it != fleet_wait_.end() && it->second.ref == ref;
  if (!wanted) {
    // The incident closed or moved on while etcd answered.
    if (answer.kind == fleet::SlotAnswer::Kind::granted && hooks_.fleet_release) {
      hooks_.fleet_release(ref, incident);
    }
    return;
  }
  FleetWait& w = it->second;
  w.asking = false;
  const TimePoint now = hooks_.clock();
  switch (answer.kind) {
    case fleet::SlotAnswer::Kind::granted:
      fleet_held_[incident] = ref;
      fleet_note_[incident] = answer.why;
      fleet_wait_.erase(it);
      break;
    case fleet::SlotAnswer::Kind::full:
      w.why = "held: fleet budget: " + answer.why + "; asking again every " +
              format_duration(config_.fleet.retry);
      w.next_ask = now + config_.fleet.retry;
      break;
    case fleet::SlotAnswer::Kind::unavailable:
      if (config_.fleet.unreachable == FleetUnreachable::act) {
        fleet_bypass_[incident] = ref;
        fleet_note_[incident] = "budget unavailable (" + answer.why +
                                "), acting without a slot ([fleet] unreachable = \"act\")";
        fleet_wait_.erase(it);
      } else {
        w.why = "held: fleet budget unavailable: " + answer.why +
                "; capped actions wait ([fleet] unreachable = \"hold\")";
        w.next_ask = now + config_.fleet.retry;
      }
      break;
  }
  // The slot is this incident's while the ladder decides with it (a skipped rung recorded on
  // the way must not give it back before the action starts).
  fleet_granting_ = incident;
  mitigate(incident, now);
  fleet_granting_.clear();
  // run() took them, or nothing ran (a cooldown, a busy lock): a permission to act without a
  // slot is for this decision only, never for one much later.
  fleet_note_.erase(incident);
  fleet_bypass_.erase(incident);
  release_finished_slots();
}

void Mitigator::release_finished_slots() {
  std::vector<std::pair<std::string, std::string>> done;
  for (const auto& [incident, ref] : fleet_held_) {
    if (incident == fleet_granting_) continue;
    // Running that action (another rung of the same incident does not need this slot).
    if (auto a = acting_ref_.find(incident); a != acting_ref_.end() && a->second == ref) continue;
    const Incident* inc = book_.find(incident);
    if (inc != nullptr && inc->open()) {
      const LadderState l = ladder_state(*inc);
      // Verifying its effect.
      if (l.phase == LadderState::Phase::verifying && l.ref == ref) continue;
    }
    done.emplace_back(incident, ref);
  }
  for (const auto& [incident, ref] : done) {
    fleet_held_.erase(incident);
    fleet_note_.erase(incident);
    if (hooks_.fleet_release) hooks_.fleet_release(ref, incident);
  }
}

void Mitigator::check_verifications(TimePoint now) {
  release_finished_slots();
  for (const Incident* inc : book_.open()) {
    if (acting_.count(inc->id) > 0 || !hooks_.fresh(*inc)) continue;
    const LadderState l = ladder_state(*inc);
    std::string why;
    if (l.phase == LadderState::Phase::acting) {
      // vigil stopped while the action ran: its result is unknown. Count it as not helping
      // (its run is in the budget already): the checks will tell if it did.
      why = "vigil restarted before " + l.ref + " reported; treated as failed";
    } else if (l.phase == LadderState::Phase::verifying && now >= l.deadline) {
      why = "did not help: the checks still fail after " + l.ref + " on " + l.target;
    } else {
      continue;
    }
    Decision d;
    d.rung = l.rung;
    d.ref = l.ref;  // named even if a reload removed the action, so it is not tried again
    d.action = config_.find_action(l.ref);
    d.target = l.target;
    const std::string id = inc->id;
    const bool timed_out = l.phase == LadderState::Phase::verifying;
    hooks_.record(event(id, d, outcome::failed, why, now));
    if (timed_out) {
      set_state(id, IncidentState::triaged, "the mitigation did not help", now);
      mitigate(id, now);
    }
    return check_verifications(now);  // the open list may have changed
  }
}

void Mitigator::close_healthy_circuits(TimePoint now) {
  std::vector<std::string> closing;
  for (const auto& [key, c] : ledger_.circuits()) {
    if (book_.open_for(key) != nullptr) {
      healthy_since_.erase(key);
      continue;
    }
    const auto [it, fresh] = healthy_since_.try_emplace(key, now);
    if (now - it->second >= config_.mitigation.circuit_reset) closing.push_back(key);
  }
  for (const std::string& key : closing) {
    ledger_.close_circuit(key);
    healthy_since_.erase(key);
    sys::log_info("circuit for " + key + " closed: healthy for " +
                  format_duration(config_.mitigation.circuit_reset));
  }
  if (!closing.empty()) (void)save_ledger();
}

bool Mitigator::close_circuit(const std::string& dedupe_key) {
  if (!ledger_.close_circuit(dedupe_key)) return false;
  (void)save_ledger();
  return true;
}

void Mitigator::tick(TimePoint now) {
  for (auto& [kind, action] : actions_) action->tick(now);
}

void Mitigator::prune(TimePoint now) {
  Duration longest{3'600'000};
  for (const auto& [ref, a] : config_.actions) longest = std::max({longest, a.per, a.cooldown});
  ledger_.prune(longest, now);
  for (auto& [kind, action] : actions_) action->prune(now);
}

void Mitigator::check_passed(const CheckConfig& check, TimePoint at) {
  if (check.mitigate.empty() || book_.open_for(book_.dedupe_key(check, "")) != nullptr) return;
  for (auto& [kind, action] : actions_) action->check_passed(check, at);
}

void Mitigator::recorded(const std::vector<IncidentBook::Change>& changes) {
  for (const IncidentBook::Change& c : changes) {
    // Every mitigation event, whoever wrote it: the book writes "verified" when the checks
    // recover during a verification.
    count(c.event);
    const Incident* inc = book_.find(c.incident);
    if (inc == nullptr) continue;
    for (auto& [kind, action] : actions_) action->recorded(*inc, c.event);
  }
  // A verified, failed or closed incident gives its fleet slot back.
  if (!fleet_held_.empty()) release_finished_slots();
}

void Mitigator::status(nlohmann::json& out) const {
  for (const auto& [kind, action] : actions_) action->status(out);
}

}  // namespace vigil
