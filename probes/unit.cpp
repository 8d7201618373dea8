#include "probes/unit.h"

#include "agent/sys/journal_tail.h"
#include "agent/sys/log.h"

namespace vigil {
namespace {

// Why 10: enough of the unit's last words to triage ("connection pool exhausted", a stack
// trace's first line), few enough to read in a page.
constexpr int kEvidenceLines = 10;

}  // namespace

UnitVerdict judge_unit(const UnitSettings& u, const sys::UnitState& s, UnitHistory& h,
                       TimePoint now) {
  // Restart counting: NRestarts only grows while the unit keeps its invocation history.
  if (h.seen && s.n_restarts > h.last_restarts) {
    const std::uint32_t added = std::min<std::uint32_t>(s.n_restarts - h.last_restarts, 1000);
    for (std::uint32_t i = 0; i < added; ++i) h.restarts.push_back(now);
  }
  h.seen = true;
  h.last_restarts = s.n_restarts;
  while (!h.restarts.empty() && now - h.restarts.front() >= u.restart_loop_window) {
    h.restarts.pop_front();
  }
  const std::string state = sys::describe(s);
  if (s.load_state == "not-found") {
    return {FailureKind::not_found,
            "unit " + s.unit + " does not exist: check the unit name in the config"};
  }
  // systemd gave up: a manual start refused by the start limit says so in Result; an automatic
  // restart refused by it leaves the original Result (systemd 252) and the unit failed although
  // its Restart= policy would restart it.
  const bool restarts_itself = !s.restart.empty() && s.restart != "no";
  if ((s.result == "start-limit-hit" && s.active_state != "active") ||
      (s.active_state == "failed" && restarts_itself && s.n_restarts > 0)) {
    return {FailureKind::start_limit,
            s.unit + " is failed and systemd no longer restarts it (Restart=" + s.restart +
                ", start limit hit or restart prevented); " + state};
  }
  const int recent = static_cast<int>(h.restarts.size());
  if (recent >= u.restart_loop_count) {
    return {FailureKind::restart_loop, s.unit + " is in a restart loop: " + std::to_string(recent) +
                                           " restarts within " +
                                           format_duration(u.restart_loop_window) + "; " + state};
  }
  if (u.expect == UnitExpect::inactive) {
    if (s.active_state == "active" || s.active_state == "activating" ||
        s.active_state == "reloading") {
      return {FailureKind::unit_inactive, s.unit + " is " + state + " but is expected inactive"};
    }
    return {FailureKind::none, s.unit + " is " + state};
  }
  if (s.active_state == "failed") return {FailureKind::unit_failed, s.unit + " " + state};
  if (s.sub_state == "auto-restart") {
    // Crashed; its own Restart= will start it again. Still a failure until it is back.
    return {FailureKind::unit_failed, s.unit + " crashed and waits to be restarted: " + state};
  }
  if (s.active_state == "active" || s.active_state == "reloading" ||
      s.active_state == "activating") {
    return {FailureKind::none, s.unit + " is " + state};
  }
  return {FailureKind::unit_inactive, s.unit + " is " + state + " but is expected active"};
}

namespace {

bool is_glob(const std::string& unit) { return unit.find_first_of("*?[") != std::string::npos; }

// Why 10s: a new instance of a watched template (app@7.service) is picked up this soon; a
// ListUnitsByPatterns call that often costs systemd next to nothing.
constexpr Duration kRelistEvery{10'000};

}  // namespace

UnitProbe::UnitProbe(ProbeContext ctx, CheckConfig check)
    : ctx_(ctx), check_(std::move(check)), tick_(ctx.io), relist_(ctx.io) {
  for (const std::string& u : check_.unit()->units) {
    if (is_glob(u)) patterns_.push_back(u);
  }
}

UnitProbe::~UnitProbe() { cancel(); }

void UnitProbe::watch_unit(const std::string& unit) {
  if (watches_.count(unit) != 0) return;
  watches_.emplace(unit, ctx_.units.watch(unit, [weak = weak_from_this()](const sys::UnitState& s) {
    if (auto self = weak.lock()) self->changed(s);
  }));
}

void UnitProbe::subscribe() {
  if (!watches_.empty()) return;
  for (const std::string& unit : check_.unit()->units) {
    if (!is_glob(unit)) watch_unit(unit);
  }
  if (!patterns_.empty()) relist();
}

// Expands the glob patterns to the loaded units that match them, and watches the new ones.
// Instances that go away stay watched: their "inactive" or "not found" is news too.
void UnitProbe::relist() {
  ctx_.units.list(patterns_, [weak = weak_from_this()](std::vector<std::string> units) {
    auto self = weak.lock();
    if (!self || (!self->on_observation_ && !self->once_)) return;
    for (const std::string& u : units) self->watch_unit(u);
    if (self->once_ && units.empty() && self->watches_.empty()) {
      Observation obs;
      obs.check = self->check_.name;
      obs.at = Clock::now();
      obs.failure = FailureKind::not_found;
      obs.summary = "no loaded unit matches the pattern(s)";
      Done done = std::move(self->once_);
      self->once_ = nullptr;
      done(std::move(obs));
      return;
    }
    self->relist_.expires_after(kRelistEvery);
    self->relist_.async_wait([weak](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto s = weak.lock()) s->relist();
    });
  });
}

void UnitProbe::watch(Done on_observation) {
  on_observation_ = std::move(on_observation);
  subscribe();
  arm_tick();
}

void UnitProbe::run(Done done) {
  once_ = std::move(done);
  subscribe();
}

void UnitProbe::cancel() {
  for (const auto& [unit, id] : watches_) ctx_.units.unwatch(id);
  watches_.clear();
  tick_.cancel();
  relist_.cancel();
  on_observation_ = nullptr;
  once_ = nullptr;
}

void UnitProbe::changed(const sys::UnitState& s) {
  states_[s.unit] = s;
  // A change is reported at once only if it changes the verdict: systemd sends several
  // PropertiesChanged per transition, and each must not count as another "good result" toward
  // recover_after. The interval tick does the counting.
  if (on_observation_) emit(s.unit, EmitWhen::verdict_changed);
  if (once_ && states_.size() == watches_.size()) {
    // test-check: the worst unit, judged once.
    Observation worst;
    bool have = false;
    for (const auto& [unit, state] : states_) {
      UnitVerdict v = judge_unit(*check_.unit(), state, history_[unit], Clock::now());
      if (!have || (worst.ok() && v.failure != FailureKind::none)) {
        worst.check = check_.name;
        worst.key = unit;
        worst.at = Clock::now();
        worst.failure = v.failure;
        worst.summary = v.summary;
        have = true;
      }
    }
    if (!worst.ok()) worst.evidence = sys::journal_tail(worst.key, kEvidenceLines);
    Done done = std::move(once_);
    once_ = nullptr;
    done(std::move(worst));
  }
}

void UnitProbe::emit(const std::string& unit, EmitWhen when) {
  auto it = states_.find(unit);
  if (it == states_.end() || !it->second.known) return;
  UnitHistory& h = history_[unit];
  const bool first = !h.seen;
  const UnitVerdict v = judge_unit(*check_.unit(), it->second, h, Clock::now());
  // Between ticks only a new failure is news; a unit that looks healthy again must stay so
  // over recover_after ticks, so a crash loop does not "recover" between two crashes.
  if (when == EmitWhen::verdict_changed && !first &&
      (v.failure == h.last || v.failure == FailureKind::none)) {
    return;
  }
  Observation obs;
  obs.check = check_.name;
  obs.key = unit;
  obs.at = Clock::now();
  obs.failure = v.failure;
  obs.summary = v.summary;
  if (v.failure != FailureKind::none && v.failure != h.last) {
    // The unit's last words, read once per new kind of failure (not on every re-emission).
    obs.evidence = sys::journal_tail(unit, kEvidenceLines);
  }
  if (v.failure == FailureKind::not_found && h.last != FailureKind::not_found) {
    sys::log_error("check '" + check_.name + "': " + v.summary);
  }
  h.last = v.failure;
  if (on_observation_) on_observation_(obs);
}

void UnitProbe::arm_tick() {
  // Re-report every unit each interval, so fail_after / recover_after count in time too.
  tick_.expires_after(check_.interval);
  tick_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || !self->on_observation_) return;
    for (const auto& [unit, state] : self->states_) self->emit(unit, EmitWhen::always);
    self->arm_tick();
  });
}

}  // namespace vigil
