#include "agent/detect/classifier.h"

#include <string>

namespace vigil {
namespace {

// SEV1 < SEV2 < SEV3 numerically; "more severe" means a smaller number.
bool more_severe(Severity a, Severity b) { return static_cast<int>(a) < static_cast<int>(b); }

Finding make_finding(const Observation& obs, Finding::Kind kind, Severity sev, TimePoint since,
                     std::string reason) {
  Finding f;
  f.check = obs.check;
  f.kind = kind;
  f.severity = sev;
  f.at = obs.at;
  f.since = since;
  f.reason = std::move(reason);
  f.observation = obs;
  return f;
}

std::string streak_text(int n, const char* what) {
  return n == 1 ? std::string() : " (" + std::to_string(n) + " " + what + " in a row)";
}

}  // namespace

std::optional<Severity> rate(const CheckConfig& check, const Observation& obs) {
  if (!obs.ok()) return check.severity.for_failure(obs.failure);
  if (check.latency_crit && obs.latency > *check.latency_crit) return check.severity.latency_crit;
  if (check.latency_warn && obs.latency > *check.latency_warn) return check.severity.latency_warn;
  return std::nullopt;
}

std::optional<Finding> Classifier::observe(const CheckConfig& check, const Observation& obs) {
  const std::optional<Severity> r = rate(check, obs);
  State& s = state_;

  if (!s.firing) {
    if (!r) {
      s.bad_streak = 0;
      return std::nullopt;
    }
    s.bad_worst = s.bad_streak == 0 ? *r : worse(s.bad_worst, *r);
    if (s.bad_streak == 0) s.bad_since = obs.at;
    if (++s.bad_streak < check.fail_after) return std::nullopt;
    const int streak = s.bad_streak;
    const Severity severity = s.bad_worst;  // declare generously: the worst of the streak
    // The impact began with the first bad result of the streak, not the one that confirmed it.
    const TimePoint began = s.bad_since;
    s = State{};
    s.firing = true;
    s.severity = severity;
    s.since = began;
    s.failure = obs.failure;
    return make_finding(obs, Finding::Kind::firing, s.severity, s.since,
                        obs.summary + streak_text(streak, "bad results"));
  }

  if (r && !more_severe(s.severity, *r)) {
    // As bad as now, or worse: the streaks toward recovery start over.
    s.good_streak = 0;
    s.lower_streak = 0;
    s.lower_worst.reset();
    if (more_severe(*r, s.severity)) {
      Finding f =
          make_finding(obs, Finding::Kind::severity_changed, *r, s.since, "worse: " + obs.summary);
      f.previous = s.severity;
      s.severity = *r;
      s.failure = obs.failure;
      return f;
    }
    if (obs.failure != s.failure && s.failure != FailureKind::none) {
      s.failure = obs.failure;
      return make_finding(obs, Finding::Kind::changed, s.severity, s.since, "now: " + obs.summary);
    }
    s.failure = obs.failure;
    return std::nullopt;
  }

  // Better than the current severity: healthy, or rated below it.
  ++s.lower_streak;
  if (r) {
    s.lower_worst = s.lower_worst ? worse(*s.lower_worst, *r) : *r;
    s.good_streak = 0;
  } else {
    ++s.good_streak;
  }
  if (s.good_streak >= check.recover_after) {
    const Severity last = s.severity;
    const TimePoint since = s.since;
    const int streak = s.good_streak;
    s = State{};
    return make_finding(obs, Finding::Kind::recovered, last, since,
                        obs.summary + streak_text(streak, "good results"));
  }
  if (s.lower_streak >= check.recover_after && s.lower_worst) {
    Finding f = make_finding(obs, Finding::Kind::severity_changed, *s.lower_worst, s.since,
                             "partly recovered: " + obs.summary);
    f.previous = s.severity;
    s.severity = *s.lower_worst;
    s.failure = obs.failure;
    s.lower_streak = 0;
    s.lower_worst.reset();
    return f;
  }
  return std::nullopt;
}

}  // namespace vigil
