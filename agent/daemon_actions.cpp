// What the daemon keeps for the mitigator (agent/mitigator.h) and the actions: whether the checks
// have reported since start, fast re-runs while a mitigation is verified, the release histories
// (known good, forgotten when a rollback from them is verified), and the block list with its
// reconciliation against ufw and its expiry.
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

bool Daemon::fresh(const Incident& inc) const {
  for (const auto& [k, m] : inc.members) {
    const auto r = runners_.find(m.check);
    if (r != runners_.end() && r->second->runs_since_start == 0) return false;
  }
  return true;
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
  mitigator_.load();
  load_release_histories();
  BlockList::Loaded b = BlockList::load(dir + "/blocks.json");
  if (!b.warning.empty()) sys::log_warning(b.warning);
  blocks_ = std::move(b.list);
  reconcile_blocks();
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

}  // namespace vigil
