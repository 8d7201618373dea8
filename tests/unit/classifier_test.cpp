// The classifier: observations in, findings out. Time comes with each observation, so these tests
// build TimePoints by hand and never sleep.
#include "agent/detect/classifier.h"
#include "agent/load_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>

namespace vigil {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A fixed, arbitrary epoch; t(n) is n seconds after it.
TimePoint t(int n) { return TimePoint{} + seconds(1'700'000'000) + seconds(n); }

CheckConfig Check() {
  CheckConfig c;
  c.name = "web";
  c.probe = "http";
  return c;
}

Observation Obs(FailureKind failure, int at, milliseconds latency = milliseconds(12)) {
  Observation o;
  o.check = "web";
  o.at = t(at);
  o.failure = failure;
  o.latency = latency;
  o.summary = failure == FailureKind::none ? "HTTP 200 in " + std::to_string(latency.count()) + "ms"
                                           : std::string(to_string(failure));
  return o;
}

Observation Ok(int at, milliseconds latency = milliseconds(12)) {
  return Obs(FailureKind::none, at, latency);
}
Observation Refused(int at) { return Obs(FailureKind::refused, at); }
Observation Http5xx(int at) { return Obs(FailureKind::http_5xx, at); }
Observation Http4xx(int at) { return Obs(FailureKind::http_4xx, at); }

// A check with latency thresholds: over 200ms is SEV3, over 1s is SEV2 (the default rules).
CheckConfig LatencyCheck() {
  CheckConfig c = Check();
  c.latency_warn = milliseconds(200);
  c.latency_crit = seconds(1);
  return c;
}
Observation Slow(int at) { return Ok(at, milliseconds(300)); }       // SEV3
Observation VerySlow(int at) { return Ok(at, milliseconds(1500)); }  // SEV2

// ---------------------------------------------------------------------------------------------
// rate()

TEST(Rate, HealthyIsNullopt) { EXPECT_EQ(rate(Check(), Ok(0)), std::nullopt); }

TEST(Rate, FailuresMapThroughTheRules) {
  const CheckConfig c = Check();
  EXPECT_EQ(rate(c, Refused(0)), Severity::sev1);
  EXPECT_EQ(rate(c, Http5xx(0)), Severity::sev1);
  EXPECT_EQ(rate(c, Http4xx(0)), Severity::sev2);
  EXPECT_EQ(rate(c, Obs(FailureKind::body, 0)), Severity::sev2);
}

TEST(Rate, LatencyThresholdsAreStrict) {
  const CheckConfig c = LatencyCheck();
  EXPECT_EQ(rate(c, Ok(0, milliseconds(200))), std::nullopt);
  EXPECT_EQ(rate(c, Ok(0, milliseconds(201))), Severity::sev3);
  EXPECT_EQ(rate(c, Ok(0, milliseconds(1000))), Severity::sev3);
  EXPECT_EQ(rate(c, Ok(0, milliseconds(1001))), Severity::sev2);
}

TEST(Rate, LatencyIsIgnoredWithoutThresholds) {
  EXPECT_EQ(rate(Check(), Ok(0, seconds(4))), std::nullopt);
}

TEST(Rate, AFailureIsRatedByItsKindNotItsLatency) {
  // A timeout is slow by nature; it counts as a timeout, not as latency.
  EXPECT_EQ(rate(LatencyCheck(), Obs(FailureKind::http_4xx, 0, seconds(2))), Severity::sev2);
}

// ---------------------------------------------------------------------------------------------
// Firing

TEST(Classifier, HealthyObservationsSayNothing) {
  const CheckConfig c = Check();
  Classifier k;
  EXPECT_EQ(k.observe(c, Ok(0)), std::nullopt);
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  EXPECT_FALSE(k.state().firing);
}

TEST(Classifier, DefaultsFireSev1OnFirstRefused) {
  const CheckConfig c = Check();
  Classifier k;
  const std::optional<Finding> f = k.observe(c, Refused(10));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->check, "web");
  EXPECT_EQ(f->severity, Severity::sev1);
  EXPECT_EQ(f->previous, std::nullopt);
  EXPECT_EQ(f->at, t(10));
  EXPECT_EQ(f->since, t(10));
  EXPECT_EQ(f->reason, "refused");  // a streak of one is not mentioned
  EXPECT_EQ(f->observation.failure, FailureKind::refused);
  EXPECT_EQ(f->observation.at, t(10));
  EXPECT_TRUE(k.state().firing);
  EXPECT_EQ(k.state().severity, Severity::sev1);
  EXPECT_EQ(k.state().since, t(10));
}

TEST(Classifier, FailAfterThreeNeedsThreeInARow) {
  CheckConfig c = Check();
  c.fail_after = 3;
  Classifier k;
  EXPECT_EQ(k.observe(c, Refused(0)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(10)), std::nullopt);
  EXPECT_FALSE(k.state().firing);
  const std::optional<Finding> f = k.observe(c, Refused(20));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->severity, Severity::sev1);
  // The failure began with the first bad result of the streak: that is what MTTD measures from.
  EXPECT_EQ(f->since, t(0));
  EXPECT_EQ(f->reason, "refused (3 bad results in a row)");
}

TEST(Classifier, AHealthyObservationResetsTheBadStreak) {
  CheckConfig c = Check();
  c.fail_after = 3;
  Classifier k;
  EXPECT_EQ(k.observe(c, Refused(0)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Ok(20)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(30)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(40)), std::nullopt);
  EXPECT_FALSE(k.state().firing);
  const std::optional<Finding> f = k.observe(c, Refused(50));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
}

TEST(Classifier, FiringSeverityIsTheWorstOfTheStreak) {
  CheckConfig c = Check();
  c.fail_after = 3;
  Classifier k;
  EXPECT_EQ(k.observe(c, Http4xx(0)), std::nullopt);   // SEV2
  EXPECT_EQ(k.observe(c, Refused(10)), std::nullopt);  // SEV1
  const std::optional<Finding> f = k.observe(c, Http4xx(20));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->severity, Severity::sev1);
}

TEST(Classifier, WorstOfTheStreakForgetsAnEarlierStreak) {
  CheckConfig c = Check();
  c.fail_after = 2;
  Classifier k;
  EXPECT_EQ(k.observe(c, Refused(0)), std::nullopt);  // SEV1, then the streak breaks
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Http4xx(20)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Http4xx(30));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->severity, Severity::sev2);
}

TEST(Classifier, LatencyOverWarnFiresSev3) {
  const CheckConfig c = LatencyCheck();
  Classifier k;
  const std::optional<Finding> f = k.observe(c, Slow(0));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->severity, Severity::sev3);
  EXPECT_EQ(f->reason, "HTTP 200 in 300ms");
}

TEST(Classifier, LatencyOverCritFiresSev2) {
  const CheckConfig c = LatencyCheck();
  Classifier k;
  const std::optional<Finding> f = k.observe(c, VerySlow(0));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->severity, Severity::sev2);
}

TEST(Classifier, CustomSeverityRulesAreHonoured) {
  CheckConfig c = Check();
  c.severity.set(FailureKind::http_5xx, Severity::sev2);
  c.severity.latency_warn = Severity::sev2;
  c.latency_warn = milliseconds(200);
  {
    Classifier k;
    const std::optional<Finding> f = k.observe(c, Http5xx(0));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->severity, Severity::sev2);
  }
  {
    Classifier k;
    const std::optional<Finding> f = k.observe(c, Slow(0));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->severity, Severity::sev2);
  }
  {
    Classifier k;  // not overridden: still the default
    const std::optional<Finding> f = k.observe(c, Refused(0));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->severity, Severity::sev1);
  }
}

TEST(Classifier, CustomSeverityRulesFromConfig) {
  const LoadResult r = parse_config(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
severity = { http_5xx = "SEV2" }
)toml",
                                    "vigil.toml");
  ASSERT_TRUE(r.config.has_value());
  ASSERT_EQ(r.config->checks.size(), 1u);
  Classifier k;
  const std::optional<Finding> f = k.observe(r.config->checks[0], Http5xx(0));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->severity, Severity::sev2);
}

// ---------------------------------------------------------------------------------------------
// While firing: only changes are findings

TEST(Classifier, RepeatingTheSameBadResultSaysNothing) {
  const CheckConfig c = Check();
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  EXPECT_EQ(k.observe(c, Refused(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(20)), std::nullopt);
  EXPECT_TRUE(k.state().firing);
  EXPECT_EQ(k.state().severity, Severity::sev1);
  EXPECT_EQ(k.state().since, t(0));
}

TEST(Classifier, TheSameFailureAgainSaysNothing) {
  const CheckConfig c = Check();
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  EXPECT_EQ(k.observe(c, Refused(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(20)), std::nullopt);
}

TEST(Classifier, ADifferentFailureOfTheSameSeveritySaysWhatChanged) {
  const CheckConfig c = Check();
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  const std::optional<Finding> f = k.observe(c, Http5xx(10));  // also SEV1
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::changed);
  EXPECT_EQ(f->severity, Severity::sev1);
  EXPECT_EQ(f->since, t(0));
  EXPECT_EQ(k.observe(c, Http5xx(20)), std::nullopt);  // said once
}

TEST(Classifier, UpgradeIsImmediate) {
  const CheckConfig c = LatencyCheck();
  Classifier k;
  const std::optional<Finding> first = k.observe(c, Slow(0));
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->severity, Severity::sev3);

  const std::optional<Finding> f = k.observe(c, Refused(10));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(f->severity, Severity::sev1);
  EXPECT_EQ(f->previous, Severity::sev3);
  EXPECT_EQ(f->since, t(0));  // still the same incident
  EXPECT_EQ(f->at, t(10));
  EXPECT_EQ(f->reason, "worse: refused");
  EXPECT_EQ(k.state().severity, Severity::sev1);
}

TEST(Classifier, UpgradeIgnoresFailAfter) {
  CheckConfig c = LatencyCheck();
  c.fail_after = 2;
  Classifier k;
  EXPECT_EQ(k.observe(c, Slow(0)), std::nullopt);
  ASSERT_TRUE(k.observe(c, Slow(10)).has_value());
  const std::optional<Finding> f = k.observe(c, VerySlow(20));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(f->severity, Severity::sev2);
  EXPECT_EQ(f->previous, Severity::sev3);
}

TEST(Classifier, DowngradeNeedsRecoverAfterObservationsBelow) {
  CheckConfig c = LatencyCheck();
  c.recover_after = 3;
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());  // SEV1
  EXPECT_EQ(k.observe(c, Slow(10)), std::nullopt);    // SEV3
  EXPECT_EQ(k.observe(c, Slow(20)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Slow(30));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(f->severity, Severity::sev3);
  EXPECT_EQ(f->previous, Severity::sev1);
  EXPECT_EQ(f->since, t(0));
  EXPECT_EQ(f->reason, "partly recovered: HTTP 200 in 300ms");
  EXPECT_TRUE(k.state().firing);
  EXPECT_EQ(k.state().severity, Severity::sev3);
}

TEST(Classifier, DowngradeGoesToTheWorstSeveritySeenBelow) {
  const CheckConfig c = LatencyCheck();  // recover_after = 2
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());        // SEV1
  EXPECT_EQ(k.observe(c, VerySlow(10)), std::nullopt);      // SEV2
  const std::optional<Finding> f = k.observe(c, Slow(20));  // SEV3
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(f->severity, Severity::sev2);
  EXPECT_EQ(f->previous, Severity::sev1);
}

TEST(Classifier, DowngradeIsInterruptedByTheCurrentSeverity) {
  const CheckConfig c = LatencyCheck();  // recover_after = 2
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());  // SEV1
  EXPECT_EQ(k.observe(c, Slow(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(20)), std::nullopt);  // back to SEV1: start over
  EXPECT_EQ(k.observe(c, Slow(30)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Slow(40));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(f->severity, Severity::sev3);
}

// ---------------------------------------------------------------------------------------------
// Recovery

TEST(Classifier, RecoveryNeedsRecoverAfterHealthyObservations) {
  CheckConfig c = Check();
  c.recover_after = 3;
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Ok(20)), std::nullopt);
  EXPECT_TRUE(k.state().firing);
  const std::optional<Finding> f = k.observe(c, Ok(30));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::recovered);
  EXPECT_EQ(f->reason, "HTTP 200 in 12ms (3 good results in a row)");
  EXPECT_FALSE(k.state().firing);
}

TEST(Classifier, RecoveredFindingCarriesSinceAndLastSeverity) {
  const CheckConfig c = LatencyCheck();  // recover_after = 2
  Classifier k;
  ASSERT_TRUE(k.observe(c, Slow(0)).has_value());       // SEV3 since t(0)
  ASSERT_TRUE(k.observe(c, VerySlow(10)).has_value());  // SEV2
  EXPECT_EQ(k.observe(c, Ok(20)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Ok(30));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::recovered);
  EXPECT_EQ(f->check, "web");
  EXPECT_EQ(f->severity, Severity::sev2);
  EXPECT_EQ(f->since, t(0));
  EXPECT_EQ(f->at, t(30));
  EXPECT_EQ(f->previous, std::nullopt);
  EXPECT_TRUE(f->observation.ok());
}

TEST(Classifier, AnInterruptionResetsRecovery) {
  const CheckConfig c = Check();  // recover_after = 2
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Refused(20)), std::nullopt);  // the same severity again: start over
  EXPECT_EQ(k.observe(c, Ok(30)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Ok(40));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::recovered);
  EXPECT_EQ(f->since, t(0));
}

TEST(Classifier, ALesserFailureInterruptsRecoveryButCountsTowardDowngrade) {
  CheckConfig c = Check();
  c.recover_after = 3;
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());  // SEV1
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  EXPECT_EQ(k.observe(c, Http4xx(20)), std::nullopt);  // SEV2: below SEV1, but not healthy
  // Three observations below SEV1, the worst of them SEV2.
  const std::optional<Finding> lower = k.observe(c, Ok(30));
  ASSERT_TRUE(lower.has_value());
  EXPECT_EQ(lower->kind, Finding::Kind::severity_changed);
  EXPECT_EQ(lower->severity, Severity::sev2);
  EXPECT_EQ(lower->previous, Severity::sev1);
  // Recovery counts healthy observations from after the 4xx.
  EXPECT_EQ(k.observe(c, Ok(40)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Ok(50));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::recovered);
  EXPECT_EQ(f->severity, Severity::sev2);
  EXPECT_EQ(f->since, t(0));
}

TEST(Classifier, FiresAgainAfterRecoveryWithANewSince) {
  const CheckConfig c = Check();
  Classifier k;
  ASSERT_TRUE(k.observe(c, Refused(0)).has_value());
  EXPECT_EQ(k.observe(c, Ok(10)), std::nullopt);
  ASSERT_TRUE(k.observe(c, Ok(20)).has_value());
  EXPECT_EQ(k.observe(c, Ok(30)), std::nullopt);
  const std::optional<Finding> f = k.observe(c, Http4xx(40));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->kind, Finding::Kind::firing);
  EXPECT_EQ(f->severity, Severity::sev2);
  EXPECT_EQ(f->since, t(40));
}

TEST(Classifier, FailAfterAppliesAgainAfterRecovery) {
  CheckConfig c = Check();
  c.fail_after = 2;
  c.recover_after = 1;
  Classifier k;
  EXPECT_EQ(k.observe(c, Refused(0)), std::nullopt);
  ASSERT_TRUE(k.observe(c, Refused(10)).has_value());
  const std::optional<Finding> recovered = k.observe(c, Ok(20));
  ASSERT_TRUE(recovered.has_value());
  EXPECT_EQ(recovered->kind, Finding::Kind::recovered);
  EXPECT_EQ(recovered->reason, "HTTP 200 in 12ms");
  EXPECT_EQ(k.observe(c, Refused(30)), std::nullopt);
  ASSERT_TRUE(k.observe(c, Refused(40)).has_value());
}

}  // namespace
}  // namespace vigil
