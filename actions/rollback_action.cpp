// The rollback action: switch DIR/current to the last release that passed health (as root, or
// as the directory's owner through a transient systemd unit), then restart the app's unit. It
// owns the release histories (STATE_DIR/releases/APP.json): a release becomes known good while
// the checks that can roll it back pass, and is forgotten once a rollback from it is verified.
#include "actions/rollback_action.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "actions/restart_action.h"
#include "actions/rollback.h"
#include "agent/sys/groups.h"
#include "agent/sys/log.h"

namespace vigil {
namespace {

// Why 30s: the switch is a symlink and a rename; a helper that has not finished by then is stuck
// (systemd stops it at the same deadline).
constexpr Duration kSwitchDeadline{30'000};

// vigil's own binary, which the switch helper runs. /proc/self/exe survives a package upgrade
// while vigil runs only as "PATH (deleted)": then the path, where the new binary now is.
std::string own_binary() {
  std::error_code ec;
  std::string p = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string deleted = " (deleted)";
  if (p.size() > deleted.size() &&
      p.compare(p.size() - deleted.size(), deleted.size(), deleted) == 0) {
    p.resize(p.size() - deleted.size());
  }
  return ec || p.empty() ? std::string("/usr/bin/vigil") : p;
}

// A unit name from an app name: what systemd accepts ([A-Za-z0-9:_.-]), the rest as '_', plus
// the time so a collected unit of an earlier switch can never be in the way.
std::string switch_unit_name(const std::string& app) {
  std::string n = "vigil-switch-";
  for (const char c : app.substr(0, 64)) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-';
    n += plain ? c : '_';
  }
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now().time_since_epoch());
  return n + "-" + std::to_string(us.count()) + ".service";
}

// The switch the helper made, read back from DIR/current: the job's "done" is only the helper's
// exit status, the link is the truth.
Result<ReleaseSwitch> read_back_switch(const RollbackRequest& request, const PlannedRollback& p,
                                       const sys::JobOutcome& job, const std::string& as_whom) {
  const std::string log = "; its log: journalctl -u " + job.unit;
  if (!job.error.empty()) return make_error("the switch " + as_whom + " did not run: " + job.error);
  if (!job.ok()) {
    return make_error("the switch " + as_whom + " failed (job " + job.result + ")" + log);
  }
  Result<std::string> now = current_release(request.dir);
  if (!now) return make_error("the switch " + as_whom + " ended, but " + now.error().message);
  if (*now != p.outcome.to) {
    return make_error("the switch " + as_whom + " ended, but current is " + *now + ", not " +
                      p.outcome.to + log);
  }
  return ReleaseSwitch{p.outcome.from, p.outcome.to, ""};
}

class RollbackAction final : public Action {
 public:
  explicit RollbackAction(const ActionContext& ctx) : ctx_(ctx) {}

  void start() override { load(); }
  void reloaded() override { load(); }
  void check_passed(const CheckConfig& check, TimePoint at) override;
  void recorded(const Incident& inc, const TimelineEvent& e) override;

  // A rollback restarts its unit: it shares the unit's lock with the restart action. One
  // without a unit holds the app.
  std::string lock_key(const ActionConfig& a, const std::string& target) const override {
    return a.unit.empty() ? "app " + target : "unit " + a.unit;
  }

  std::string would(const ActionConfig& a, const std::string&, TimePoint) const override {
    static const ReleaseHistory kNone;
    const auto known = releases_.find(a.name);
    const RollbackOutcome o =
        rollback({a.name, a.dir, DryRun::yes}, known != releases_.end() ? known->second : kNone);
    return o.message + (o.ok && !a.unit.empty() ? ", then restart " + a.unit : "");
  }

  void run(const std::string& incident, const ActionConfig& a, const std::string&,
           Done done) override {
    const RollbackRequest request{a.name, a.dir, DryRun::no};
    const PlannedRollback planned = begin_rollback(request, releases_[a.name]);
    if (!planned.switch_pending) {
      done(ActionResult::failed, planned.outcome.message);
      return;
    }
    const Result<DeployOwner> owner = deploy_owner(a.dir);
    if (!owner) {
      done(ActionResult::failed, "rollback " + a.name + ": " + owner.error().message);
      return;
    }
    if (owner->uid == 0) {
      switched(incident, a,
               end_rollback(request, planned, switch_release(a.dir, planned.outcome.to), ""),
               std::move(done));
      return;
    }
    // Not root's: root may not write there (no CAP_DAC_OVERRIDE, by design), and should not;
    // the owner switches it, through systemd, sandboxed to DIR.
    const std::string as_whom = "as " + sys::user_name(owner->uid).value_or("uid") + " (uid " +
                                std::to_string(owner->uid) + ")";
    sys::TransientCommand c;
    c.unit = switch_unit_name(a.name);
    c.description = "vigil: rollback " + a.name + " (switch " + a.dir + "/current)";
    c.argv = {own_binary(), "switch-release", "--", a.dir, planned.outcome.to};
    c.uid = owner->uid;
    c.gid = owner->gid;
    c.read_write_paths = {a.dir};
    ctx_.units.run_transient(
        c, kSwitchDeadline,
        [this, incident, a, request, planned, as_whom, done](const sys::JobOutcome& job) {
          if (ctx_.stopping()) return;
          switched(incident, a,
                   end_rollback(request, planned, read_back_switch(request, planned, job, as_whom),
                                as_whom),
                   done);
        });
  }

 private:
  void switched(const std::string& incident, const ActionConfig& a, const RollbackOutcome& o,
                Done done) {
    if (!o.ok) {
      done(ActionResult::failed, o.message);
      return;
    }
    // The release rolled back from is forgotten as known good once the rollback is verified
    // (then it is proven bad); if it does not help, the deploy was not the cause.
    ctx_.note(incident, o.message, {{"from", o.from}, {"to", o.to}});
    if (a.unit.empty()) {
      done(ActionResult::ok, o.message);
      return;
    }
    const std::string message = o.message;
    restart_unit(ctx_, a, a.unit, [message, done](ActionResult r, std::string text) {
      // The switch is done: a restart systemd is already doing itself picks up the new
      // release, so a refusal here is not a failure (and the rollback's budget is spent).
      if (r == ActionResult::refused) {
        r = ActionResult::ok;
        text = "no restart by vigil: " + text;
      }
      done(r, message + "; " + text);
    });
  }

  // The known-good history of every rollback action, also of one a reload just added (else the
  // next healthy check would write a fresh history over the file).
  void load() {
    for (const auto& [ref, a] : ctx_.config.actions) {
      if (a.kind != ActionKind::rollback || releases_.count(a.name) > 0) continue;
      auto path = release_history_path(ctx_.config.agent.state_dir, a.name);
      if (!path) continue;
      ReleaseHistory::Loaded loaded = ReleaseHistory::load(*path);
      if (!loaded.warning.empty()) sys::log_warning(loaded.warning);
      releases_[a.name] = std::move(loaded.history);
    }
  }
  void save(const std::string& app, const ReleaseHistory& history) const {
    if (auto path = release_history_path(ctx_.config.agent.state_dir, app)) {
      if (auto saved = history.save(*path); !saved) sys::log_error(saved.error().message);
    }
  }

  ActionContext ctx_;
  std::map<std::string, ReleaseHistory> releases_;  // by rollback action name
};

// A release is known good while every check whose ladder can roll it back passes.
void RollbackAction::check_passed(const CheckConfig& check, TimePoint at) {
  for (const std::string& ref : check.mitigate) {
    const ActionConfig* a = ctx_.config.find_action(ref);
    if (a == nullptr || a->kind != ActionKind::rollback) continue;
    const Result<std::string> current = current_release(a->dir);
    if (!current) continue;
    if (!a->unit.empty()) {
      // Between `ln -sfn` and the restart of a deploy, the old process still answers: its pass
      // says nothing about the new release. Only a unit (re)started after the switch counts.
      const std::optional<sys::UnitState> unit = ctx_.unit_state(a->unit);
      struct stat st {};
      if (!unit || !unit->known || unit->active_state != "active" ||
          ::lstat((a->dir + "/current").c_str(), &st) != 0) {
        continue;
      }
      const std::uint64_t switched_us = static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1'000'000 +
                                        static_cast<std::uint64_t>(st.st_mtim.tv_nsec) / 1'000;
      if (unit->state_change_usec < switched_us) continue;
    }
    ReleaseHistory& history = releases_[a->name];
    const auto changed = history.mark_good(*current, at);
    if (!changed || *changed == ReleaseHistory::Change::refreshed) continue;
    sys::log_info("release " + *current + " of " + a->name + " is known good (" + check.name +
                  " passes)");
    save(a->name, history);
  }
}

// A verified rollback proves the release it left bad: it is never planned again. A rollback
// that did not help says nothing about that release; it stays known good.
void RollbackAction::recorded(const Incident& inc, const TimelineEvent& e) {
  if (e.type != TimelineEvent::Type::mitigation) return;
  const auto o = e.fields.find("outcome");
  const auto action = e.fields.find("action");
  if (o == e.fields.end() || o->second != outcome::verified || action == e.fields.end() ||
      action->second.rfind("rollback:", 0) != 0) {
    return;
  }
  // The switch's from/to are in the incident's timeline (a note), so this also works for a
  // rollback verified after vigil restarted.
  const auto note = std::find_if(inc.timeline.rbegin(), inc.timeline.rend(), [](const auto& t) {
    return t.type == TimelineEvent::Type::note && t.fields.count("from") > 0;
  });
  if (note == inc.timeline.rend()) return;
  const std::string app = action->second.substr(std::string("rollback:").size());
  const std::string release = note->fields.at("from");
  ReleaseHistory& history = releases_[app];
  if (!history.forget(release)) return;
  save(app, history);
  sys::log_info("release " + release + " of " + app +
                " is no longer known good (rolled back from, and the rollback was verified)");
}

}  // namespace

std::unique_ptr<Action> make_rollback_action(const ActionContext& ctx) {
  return std::make_unique<RollbackAction>(ctx);
}

}  // namespace vigil
