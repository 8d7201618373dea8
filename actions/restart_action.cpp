// The restart action: a D-Bus RestartUnit job, unless systemd is restarting the unit itself or
// has given up on it (decide_restart()).
#include "actions/restart_action.h"

#include "actions/restart.h"

namespace vigil {

void restart_unit(const ActionContext& ctx, const ActionConfig& a, const std::string& unit,
                  Action::Done done) {
  RestartSettings rs;
  rs.unit = unit;
  rs.reset_failed = a.reset_failed;
  rs.deadline = a.job_timeout;
  const Duration job_timeout = a.job_timeout;
  sys::UnitWatcher& units = ctx.units;
  std::function<bool()> stopping = ctx.stopping;
  units.unit_state(unit, [&units, stopping, rs, job_timeout, done](const sys::UnitState& state) {
    if (stopping()) return;
    const RestartDecision go = decide_restart(state, rs);
    if (!go.go) {
      done(ActionResult::refused, go.reason);
      return;
    }
    units.restart_unit(
        rs.unit, go.reset_failed_first ? sys::ResetFailed::yes : sys::ResetFailed::no, job_timeout,
        [stopping, done](const sys::JobOutcome& o) {
          if (stopping()) return;
          done(o.ok() ? ActionResult::ok : ActionResult::failed, describe_outcome(o));
        });
  });
}

namespace {

class RestartAction final : public Action {
 public:
  explicit RestartAction(const ActionContext& ctx) : ctx_(ctx) {}

  std::string lock_key(const ActionConfig& a, const std::string&) const override {
    return "unit " + a.unit;
  }
  std::string would(const ActionConfig& a, const std::string&, TimePoint) const override {
    return "would restart " + a.unit;
  }
  void run(const std::string&, const ActionConfig& a, const std::string&, Done done) override {
    restart_unit(ctx_, a, a.unit, std::move(done));
  }

 private:
  ActionContext ctx_;
};

}  // namespace

std::unique_ptr<Action> make_restart_action(const ActionContext& ctx) {
  return std::make_unique<RestartAction>(ctx);
}

}  // namespace vigil
