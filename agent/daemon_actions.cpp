// The daemon's half of the mitigation ladder: decide() says what, this file does it and writes
// every step to the incident's timeline before and after (see agent/mitigate/mitigation.h).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "actions/protect.h"
#include "actions/restart.h"
#include "agent/daemon.h"
#include "agent/daemon_runner.h"
#include "agent/sys/files.h"
#include "agent/sys/groups.h"
#include "agent/sys/log.h"

namespace vigil {

namespace asio = boost::asio;

namespace {

// How often an HTTP check is re-run while a mitigation is verified: recovery is seen in about
// recover_after seconds instead of recover_after intervals.
constexpr Duration kVerifyEvery{1'000};
// Reconcile is retried every 5s until it works (ufw may be busy with an admin's command, or
// briefly missing during an upgrade); no block is added or removed until then.
constexpr std::chrono::seconds kReconcileRetry{5};

}  // namespace

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

std::vector<IncidentBook::Change> Daemon::mitigation_event(const std::string& incident,
                                                           const Decision& d, const char* oc,
                                                           const std::string& text, TimePoint at) {
  return book_.record(incident, mitigation_timeline_event(d, oc, text, at));
}

void Daemon::hold(const std::string& incident, const Decision& d, const std::string& why,
                  TimePoint at) {
  // Written once per reason: a cooldown re-checked every second must not fill the file.
  std::string& last = last_wait_[incident];
  if (last == why) return;
  last = why;
  record(mitigation_event(incident, d, outcome::waiting, "on hold: " + why, at));
}

void Daemon::set_state(const std::string& incident, IncidentState s, const std::string& why,
                       TimePoint at) {
  const Incident* inc = book_.find(incident);
  if (inc == nullptr || !inc->open() || inc->state == s) return;
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::state;
  e.state = s;
  e.text = why;
  record(book_.record(incident, std::move(e)));
}

void Daemon::mitigate_all() {
  std::vector<std::string> ids;
  for (const Incident* inc : book_.open()) ids.push_back(inc->id);
  for (const std::string& id : ids) mitigate(id);
}

// Asks the ladder what to do for `incident` and does it. Loops over rungs that cannot apply,
// so one call either starts an action, waits, escalates or finds nothing to do.
void Daemon::mitigate(const std::string& incident) {
  if (stopping_ || acting_.count(incident) > 0) return;
  for (int guard = 0; guard < 64; ++guard) {
    const Incident* inc = book_.find(incident);
    if (inc == nullptr || !inc->open()) {
      last_wait_.erase(incident);
      return;
    }
    // Right after vigil starts, every member check must have reported once: an incident
    // continued from before may have been fixed by hand meanwhile.
    if (!fresh(*inc)) return;
    const LadderState ladder = ladder_state(*inc);
    const TimePoint now = Clock::now();
    Guards g;
    g.dry_run = config_.agent.dry_run;
    g.maintenance = std::any_of(inc->members.begin(), inc->members.end(),
                                [&](const auto& m) { return in_maintenance(m.second.check, now); });
    g.protected_reason = [this, now](const IpAddress& ip) -> std::optional<std::string> {
      // Read at most once a second: in a wave, many decisions share one view of the host. A
      // view that could not be read whole is never reused: blocking resumes at the first
      // decision after the source is readable again, not up to a second later.
      if (!protected_ || !protected_->warnings.empty() || now - protected_at_ >= Duration(1'000) ||
          now < protected_at_) {
        protected_ = gather_protected(
            config_.mitigation.allow,
            config_.mitigation.protect_ssh_sessions ? ProtectSsh::yes : ProtectSsh::no,
            config_.mitigation.respect_ufw_allow ? ProtectFirewall::yes : ProtectFirewall::no);
        protected_at_ = now;
        // Loud: while a reader fails, every block is held (fail closed), and a human must know
        // why blocking stopped. Shown in `vigil status`, counted in the metrics.
        for (const std::string& w : protected_->warnings) {
          sys::log_error("protected addresses: " + w +
                         "; no address is blocked while it cannot be read (fail closed)");
          ++protection_failures_;
        }
      }
      if (auto why = why_protected(ip, *protected_)) return why;
      // Fail closed: if the host's addresses or sessions could not be read, vigil cannot tell
      // that this is not the admin's own address.
      if (!protected_->warnings.empty()) {
        return "possibly protected (cannot tell: " + protected_->warnings.front() + ")";
      }
      return std::nullopt;
    };
    g.release_age = [now](const std::string& dir) -> std::optional<Duration> {
      struct stat st {};
      if (::lstat((dir + "/current").c_str(), &st) != 0) return std::nullopt;
      const TimePoint switched = Clock::from_time_t(st.st_mtim.tv_sec);
      return switched > now ? Duration::zero()
                            : std::chrono::duration_cast<Duration>(now - switched);
    };
    const Decision d = decide(*inc, ladder, config_, ledger_, g, now);
    switch (d.kind) {
      case Decision::Kind::nothing:
        return;
      case Decision::Kind::wait:
        hold(incident, d, d.reason, now);
        return;
      case Decision::Kind::skip:
        record(mitigation_event(incident, d, outcome::skipped,
                                (d.action ? d.action->ref() + ": " : std::string()) + d.reason,
                                now));
        continue;
      case Decision::Kind::escalate:
        if (d.open_circuit) {
          ledger_.open_circuit(inc->dedupe_key, d.reason, now);
          healthy_since_.erase(inc->dedupe_key);
          (void)save_ledger();
        }
        record(mitigation_event(incident, d, outcome::gave_up, "escalated: " + d.reason, now));
        set_state(incident, IncidentState::escalated, "escalated: a human is needed", now);
        return;
      case Decision::Kind::act:
        if (d.action->kind == ActionKind::block && !blocks_reconciled_ && d.dry_run == DryRun::no) {
          hold(incident, d, "waiting until vigil's block list is reconciled with ufw", now);
          return;
        }
        if (d.dry_run == DryRun::no && busy_.count(lock_key(d)) > 0) {
          // Another incident's action holds the same unit, app or address: one at a time (a
          // second RestartUnit would cancel the first job).
          hold(incident, d, "another mitigation on " + lock_key(d) + " is running", now);
          return;
        }
        last_wait_.erase(incident);
        run_action(incident, d);
        return;
    }
  }
}

bool Daemon::fresh(const Incident& inc) const {
  for (const auto& [k, m] : inc.members) {
    const auto r = runners_.find(m.check);
    if (r != runners_.end() && r->second->runs_since_start == 0) return false;
  }
  return true;
}

std::string Daemon::lock_key(const Decision& d) const {
  if (d.action == nullptr) return d.target;
  return actions_.at(d.action->kind)->lock_key(*d.action, d.target);
}

void Daemon::run_action(const std::string& incident, Decision d) {
  const TimePoint now = Clock::now();
  // From here on the action may outlive the config (a reload): keep a copy.
  d.owned = std::make_shared<const ActionConfig>(*d.action);
  d.action = d.owned.get();
  const ActionConfig& a = *d.action;
  Action& action = *actions_.at(a.kind);
  if (d.dry_run == DryRun::yes) {
    const std::string what = action.would(a, d.target, now);
    record(mitigation_event(incident, d, outcome::would, "dry-run: " + what, now));
    return;
  }
  ledger_.ran(a.ref(), d.target, now);
  d.started = now;
  if (!save_ledger()) {
    // A budget that cannot be written is no budget: after a restart of vigil it would start
    // from zero. A full disk is itself an incident; a human must look.
    ledger_.unrun(a.ref(), d.target, now);
    record(mitigation_event(incident, d, outcome::failed,
                            "not run: the run could not be recorded in " + config_.agent.state_dir +
                                "/mitigations.json",
                            now));
    return;
  }
  acting_.insert(incident);
  busy_.insert(lock_key(d));
  ++mitigations_run_;
  set_state(incident, IncidentState::mitigating, "mitigating: " + a.ref() + " on " + d.target, now);
  record(mitigation_event(
      incident, d, outcome::started,
      "started " + a.ref() + " on " + d.target + " (rung " + std::to_string(d.rung + 1) + ")",
      now));
  // `d` owns its copy of the action's config (above): the callback keeps it alive.
  action.run(incident, a, d.target, [this, incident, d](ActionResult r, std::string text) {
    action_done(incident, d, r, text);
  });
}

void Daemon::action_done(const std::string& incident, const Decision& d, ActionResult result,
                         const std::string& text) {
  acting_.erase(incident);
  busy_.erase(lock_key(d));
  const TimePoint now = Clock::now();
  const Incident* inc = book_.find(incident);
  if (inc == nullptr || !inc->open()) {
    // The checks recovered while the action ran: the incident is resolved; its file still gets
    // the action's outcome, so the timeline never ends on "started".
    const TimelineEvent e = mitigation_timeline_event(
        d, result == ActionResult::ok ? outcome::ok : outcome::failed, text, now);
    sys::log_info("incident " + incident + " (resolved meanwhile): " + e.text);
    if (auto w = store_.append(incident, {e}); !w) sys::log_error(w.error().message);
    return;
  }
  if (result == ActionResult::refused) {
    // Refused before touching anything (systemd is already restarting the unit, or gave up on
    // it): not a failed attempt. No budget spent; the ladder goes on, and escalates at its end.
    ledger_.unrun(d.action->ref(), d.target, d.started);
    (void)save_ledger();
    record(mitigation_event(incident, d, outcome::skipped, text, now));
    mitigate(incident);
    return;
  }
  if (result == ActionResult::failed) {
    record(mitigation_event(incident, d, outcome::failed, text, now));
    mitigate(incident);
    return;
  }
  if (d.action->kind == ActionKind::block) {
    // A block is verified by its rule being in place; the incident resolves when the address
    // stops showing up in the journal (its window runs out).
    record(mitigation_event(incident, d, outcome::ok, text, now));
    record(mitigation_event(incident, d, outcome::verified,
                            "verified: ufw holds the rule for " + d.target, now));
    return;
  }
  // A journal rule recovers only when its window runs out with fewer matches: its deadline
  // must leave it that long, or a fix that worked would be judged as not helping.
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
  record(book_.record(incident, std::move(e)));
  set_state(incident, IncidentState::verifying,
            "verifying: the checks must pass again within " + format_duration(within), now);
  fast_verify(incident, deadline);
}

// While a mitigation is verified, the incident's HTTP checks run every second (or at their
// own interval if shorter), so recovery is confirmed in seconds.
void Daemon::fast_verify(const std::string& incident, TimePoint until) {
  const Incident* inc = book_.find(incident);
  if (inc == nullptr) return;
  const auto steady_until =
      asio::steady_timer::clock_type::now() +
      std::chrono::duration_cast<asio::steady_timer::duration>(until - Clock::now());
  for (const auto& [k, m] : inc->members) {
    const auto r = runners_.find(m.check);
    if (r == runners_.end() || r->second->probe->event_driven()) continue;
    r->second->fast_until = steady_until;
    if (r->second->check.interval > kVerifyEvery) {
      r->second->timer.expires_after(std::chrono::milliseconds(kVerifyEvery.count()));
      wait_tick(r->second);
    }
  }
}

// A mitigation whose checks still fail at its deadline did not help: the book raises the
// severity, and the ladder goes on with its next rung.
void Daemon::check_verifications(TimePoint now) {
  for (const Incident* inc : book_.open()) {
    if (acting_.count(inc->id) > 0 || !fresh(*inc)) continue;
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
    record(mitigation_event(id, d, outcome::failed, why, now));
    if (timed_out) {
      set_state(id, IncidentState::triaged, "the mitigation did not help", now);
      mitigate(id);
    }
    return check_verifications(now);  // the open list may have changed
  }
}

// A release is known good while every check whose ladder can roll it back passes.
void Daemon::mark_release_healthy(const CheckConfig& check, TimePoint at) {
  for (const std::string& ref : check.mitigate) {
    const ActionConfig* a = config_.find_action(ref);
    if (a == nullptr || a->kind != ActionKind::rollback) continue;
    if (book_.open_for(book_.dedupe_key(check, "")) != nullptr) continue;
    const Result<std::string> current = current_release(a->dir);
    if (!current) continue;
    if (!a->unit.empty()) {
      // Between `ln -sfn` and the restart of a deploy, the old process still answers: its pass
      // says nothing about the new release. Only a unit (re)started after the switch counts.
      const auto o = owner_units_.find(a->unit);
      struct stat st {};
      if (o == owner_units_.end() || !o->second.state.known ||
          o->second.state.active_state != "active" ||
          ::lstat((a->dir + "/current").c_str(), &st) != 0) {
        continue;
      }
      const std::uint64_t switched_us = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000 +
                                        static_cast<std::uint64_t>(st.st_mtim.tv_nsec) / 1'000;
      if (o->second.state.state_change_usec < switched_us) continue;
    }
    ReleaseHistory& history = releases_[a->name];
    const auto changed = history.mark_good(*current, at);
    if (!changed || *changed == ReleaseHistory::Change::refreshed) continue;
    sys::log_info("release " + *current + " of " + a->name + " is known good (" + check.name +
                  " passes)");
    if (auto path = release_history_path(config_.agent.state_dir, a->name)) {
      if (auto saved = history.save(*path); !saved) sys::log_error(saved.error().message);
    }
  }
}

void Daemon::load_mitigation_state() {
  const std::string dir = config_.agent.state_dir;
  {
    std::ifstream in(dir + "/mitigations.json");
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      auto l = MitigationLedger::from_json(text.str());
      if (l) {
        ledger_ = std::move(*l);
      } else {
        // A ledger that cannot be read cannot be half-trusted: budgets restart from zero (and
        // the log says so loudly); the file is kept for a human as mitigations.json.bad.
        sys::log_error(dir + "/mitigations.json: " + l.error().message +
                       "; budgets start from zero (the bad file is kept as mitigations.json.bad)");
        if (auto kept = sys::rename_file(dir + "/mitigations.json", dir + "/mitigations.json.bad");
            !kept) {
          sys::log_error(kept.error().message);
        }
      }
    }
  }
  load_release_histories();
  BlockList::Loaded b = BlockList::load(dir + "/blocks.json");
  if (!b.warning.empty()) sys::log_warning(b.warning);
  blocks_ = std::move(b.list);
  reconcile_blocks();
}

bool Daemon::save_ledger() const {
  if (auto ok =
          sys::write_file_atomic(config_.agent.state_dir + "/mitigations.json", ledger_.to_json());
      !ok) {
    sys::log_error(ok.error().message);
    return false;
  }
  return true;
}

// The known-good history of every rollback action, also of one a reload just added (else the
// next healthy check would write a fresh history over the file).
void Daemon::load_release_histories() {
  for (const auto& [ref, a] : config_.actions) {
    if (a.kind != ActionKind::rollback || releases_.count(a.name) > 0) continue;
    auto path = release_history_path(config_.agent.state_dir, a.name);
    if (!path) continue;
    ReleaseHistory::Loaded loaded = ReleaseHistory::load(*path);
    if (!loaded.warning.empty()) sys::log_warning(loaded.warning);
    releases_[a.name] = std::move(loaded.history);
  }
}

// A verified rollback proves the release it left bad: it is never planned again. A rollback
// that did not help says nothing about that release; it stays known good.
void Daemon::forget_rolled_back(const std::string& incident, const TimelineEvent& e) {
  const auto o = e.fields.find("outcome");
  const auto action = e.fields.find("action");
  if (o == e.fields.end() || o->second != outcome::verified || action == e.fields.end() ||
      action->second.rfind("rollback:", 0) != 0) {
    return;
  }
  // The switch's from/to are in the incident's timeline (a note), so this also works for a
  // rollback verified after vigil restarted.
  const Incident* inc = book_.find(incident);
  if (inc == nullptr) return;
  const auto note = std::find_if(inc->timeline.rbegin(), inc->timeline.rend(), [](const auto& t) {
    return t.type == TimelineEvent::Type::note && t.fields.count("from") > 0;
  });
  if (note == inc->timeline.rend()) return;
  const std::string app = action->second.substr(std::string("rollback:").size());
  const std::string release = note->fields.at("from");
  ReleaseHistory& history = releases_[app];
  if (!history.forget(release)) return;
  if (auto path = release_history_path(config_.agent.state_dir, app)) {
    if (auto saved = history.save(*path); !saved) sys::log_error(saved.error().message);
  }
  sys::log_info("release " + release + " of " + app +
                " is no longer known good (rolled back from, and the rollback was verified)");
}

void Daemon::save_blocks() const {
  if (auto ok = blocks_.save(config_.agent.state_dir + "/blocks.json"); !ok) {
    sys::log_error(ok.error().message);
  }
}

// At start: ufw's rules tagged "vigil:" and the saved block list must agree before vigil adds
// or removes any rule. Expired or untracked vigil rules go; rules an admin removed stay removed.
void Daemon::reconcile_blocks() {
  const bool any_block =
      std::any_of(config_.actions.begin(), config_.actions.end(),
                  [](const auto& a) { return a.second.kind == ActionKind::block; });
  if (!any_block && blocks_.size() == 0) {
    blocks_reconciled_ = true;
    return;
  }
  commands_.run(
      ufw_status_argv(), kUfwTimeout,
      [this](sys::CommandResult st) {
        if (stopping_) return;
        const Result<UfwStatus> status = parse_ufw_status(st.out);
        // A cut listing would make every rule after the cut look removed by hand.
        if (!st.ok() || !status || st.out_truncated) {
          sys::log_error("cannot reconcile blocks with ufw (" +
                         (!st.ok()           ? st.describe()
                          : st.out_truncated ? std::string("`ufw status` output too long")
                                             : status.error().message) +
                         "); retrying in " + std::to_string(kReconcileRetry.count()) +
                         "s; no block until then");
          auto t = std::make_shared<asio::steady_timer>(io_, kReconcileRetry);
          t->async_wait([this, t](const boost::system::error_code& ec) {
            if (!ec && !stopping_) reconcile_blocks();
          });
          return;
        }
        // An untracked rule of vigil's is kept for the shortest block any action gives (1h
        // when none is configured any more): the block was meant, the file that knew its end
        // was lost.
        Duration adopt_for{3'600'000};
        bool first = true;
        for (const auto& [ref, a] : config_.actions) {
          if (a.kind != ActionKind::block) continue;
          adopt_for = first ? a.block_for : std::min(adopt_for, a.block_for);
          first = false;
        }
        const TimePoint now = Clock::now();
        const ReconcilePlan plan = reconcile(blocks_, *status, now, adopt_for);
        for (const BlockEntry& kept : plan.adopt) {
          if (!blocks_.add(kept)) {
            sys::log_error("cannot track vigil's rule for " + kept.ip.to_string() +
                           "; it stays in ufw until vigil's next start");
            continue;
          }
          sys::log_warning("vigil's rule for " + kept.ip.to_string() + " (incident " +
                           kept.incident +
                           ") was not in the block list (lost or corrupt state, or a crash "
                           "right after blocking): kept, until " +
                           format_time(kept.until));
        }
        for (const BlockEntry& gone : plan.forget) {
          sys::log(sys::LogLevel::notice, "block of " + gone.ip.to_string() + " (incident " +
                                              gone.incident +
                                              ") was removed from ufw by hand: it stays removed");
          blocks_.remove(gone.ip);
        }
        for (const ReconcilePlan::Delete& del : plan.to_delete) {
          const UfwRule rule = del.rule;
          Result<std::vector<std::string>> argv = ufw_unblock_argv(rule.ip, rule.comment);
          if (!argv) continue;
          commands_.run(*argv, kUfwTimeout, [rule](sys::CommandResult r) {
            if (r.ok()) {
              sys::log_info("removed stale vigil rule for " + rule.ip.to_string() + " (" +
                            rule.comment + ")");
            } else {
              sys::log_error("cannot remove stale vigil rule for " + rule.ip.to_string() + ": " +
                             r.describe());
            }
          });
          blocks_.remove(rule.ip);
        }
        save_blocks();
        blocks_reconciled_ = true;
        sys::log_info("blocks reconciled with ufw: " + std::to_string(blocks_.size()) +
                      " active, " + std::to_string(plan.to_delete.size()) + " stale removed, " +
                      std::to_string(plan.adopt.size()) + " untracked kept, " +
                      std::to_string(plan.forget.size()) + " removed by hand");
        expire_blocks(now);
      },
      kMaxUfwStatusOutput);
}

void Daemon::expire_blocks(TimePoint now) {
  if (!blocks_reconciled_) return;
  for (const BlockEntry& entry : blocks_.expired(now)) {
    const IpAddress ip = entry.ip;
    const std::string incident = entry.incident;
    blocks_.remove(ip);
    Result<std::string> comment = block_comment(incident);
    Result<std::vector<std::string>> argv = comment
                                                ? ufw_unblock_argv(ip, *comment)
                                                : Result<std::vector<std::string>>(comment.error());
    if (!argv) {
      sys::log_error("cannot unblock " + ip.to_string() + ": " + argv.error().message);
      continue;
    }
    commands_.run(*argv, kUfwTimeout, [this, ip, incident](sys::CommandResult r) {
      if (stopping_) return;
      if (r.ok() && ufw_change(r.out) == UfwChange::not_present) {
        // Removed by hand meanwhile: the address is unblocked, which is what expiry wanted.
        sys::log_info("block of " + ip.to_string() + " expired; its rule was already gone");
      } else if (!r.ok()) {
        // The entry is gone but the rule may not be: the next reconcile finds it untracked and
        // deletes it.
        blocks_reconciled_ = false;
        reconcile_blocks();
      }
      if (r.ok()) {
        sys::log(sys::LogLevel::info, "block of " + ip.to_string() + " expired: unblocked",
                 {{"VIGIL_INCIDENT", incident}});
      } else {
        sys::log_error("unblocking " + ip.to_string() + " failed: " + r.describe());
      }
      TimelineEvent e;
      e.at = Clock::now();
      e.type = TimelineEvent::Type::note;
      e.text = r.ok() ? "block of " + ip.to_string() + " expired: unblocked"
                      : "unblocking " + ip.to_string() + " failed: " + r.describe();
      // The incident may be resolved by now; the note then goes to its file only.
      if (book_.find(incident) != nullptr && book_.find(incident)->open()) {
        record(book_.record(incident, std::move(e)));
      } else if (auto w = store_.append(incident, {e}); !w) {
        sys::log_error("incident " + incident + ": " + w.error().message);
      }
    });
    save_blocks();
  }
}

void Daemon::close_healthy_circuits(TimePoint now) {
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

}  // namespace vigil
