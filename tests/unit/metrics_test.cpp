// render_metrics (Prometheus text format 0.0.4), LatencyHistogram and parse_listen_address.
#include "agent/metrics.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace vigil {
namespace {

using std::chrono::milliseconds;

bool contains(const std::string& text, std::string_view what) {
  return text.find(what) != std::string::npos;
}

TEST(MetricsRender, SmallSnapshotExactText) {
  LatencyHistogram h;
  for (int ms : {3, 40, 40, 700, 12000}) h.observe(milliseconds(ms));

  MetricsSnapshot s;
  s.version = "0.1.0";
  s.start_time_seconds = 1700000000;
  s.checks.push_back({"web", "http", "firing", Severity::sev1, &h, 10, 2});
  s.checks.push_back({"cron", "unit", "ok", std::nullopt, nullptr, 4, 0});
  s.open_incidents[Severity::sev1] = 1;
  s.incidents_opened = 1;
  s.mitigations[{"restart:app", "verified"}] = 1;
  s.pages[{"alertmanager", "sent"}] = 2;

  const std::string expected = R"(# HELP vigil_build_info vigil's version; the value is always 1.
# TYPE vigil_build_info gauge
vigil_build_info{version="0.1.0"} 1
# HELP vigil_start_time_seconds Unix time the vigil daemon started, in seconds.
# TYPE vigil_start_time_seconds gauge
vigil_start_time_seconds 1700000000
# HELP vigil_check_up 1 when the check passes, 0 when it is firing, flapping or unknown.
# TYPE vigil_check_up gauge
vigil_check_up{check="web",probe="http"} 0
vigil_check_up{check="cron",probe="unit"} 1
# HELP vigil_check_state The check's state: 1 for the current one of ok, firing, flapping, unknown; 0 for the others.
# TYPE vigil_check_state gauge
vigil_check_state{check="web",probe="http",state="ok"} 0
vigil_check_state{check="web",probe="http",state="firing"} 1
vigil_check_state{check="web",probe="http",state="flapping"} 0
vigil_check_state{check="web",probe="http",state="unknown"} 0
vigil_check_state{check="cron",probe="unit",state="ok"} 1
vigil_check_state{check="cron",probe="unit",state="firing"} 0
vigil_check_state{check="cron",probe="unit",state="flapping"} 0
vigil_check_state{check="cron",probe="unit",state="unknown"} 0
# HELP vigil_check_severity Severity of the check's finding while it has one: 1 = SEV1, 2 = SEV2, 3 = SEV3.
# TYPE vigil_check_severity gauge
vigil_check_severity{check="web",probe="http"} 1
# HELP vigil_check_runs_total Probe runs of the check since vigil started.
# TYPE vigil_check_runs_total counter
vigil_check_runs_total{check="web",probe="http"} 10
vigil_check_runs_total{check="cron",probe="unit"} 4
# HELP vigil_check_failures_total Probe runs of the check that failed since vigil started.
# TYPE vigil_check_failures_total counter
vigil_check_failures_total{check="web",probe="http"} 2
vigil_check_failures_total{check="cron",probe="unit"} 0
# HELP vigil_probe_duration_seconds How long the check's probe runs took, in seconds.
# TYPE vigil_probe_duration_seconds histogram
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.005"} 1
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.01"} 1
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.025"} 1
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.05"} 3
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.1"} 3
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.25"} 3
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="0.5"} 3
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="1"} 4
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="2.5"} 4
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="5"} 4
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="10"} 4
vigil_probe_duration_seconds_bucket{check="web",probe="http",le="+Inf"} 5
vigil_probe_duration_seconds_sum{check="web",probe="http"} 12.783
vigil_probe_duration_seconds_count{check="web",probe="http"} 5
# HELP vigil_incidents_open Incidents open now, by severity.
# TYPE vigil_incidents_open gauge
vigil_incidents_open{severity="SEV1"} 1
vigil_incidents_open{severity="SEV2"} 0
vigil_incidents_open{severity="SEV3"} 0
# HELP vigil_incidents_opened_total Incidents opened since vigil started.
# TYPE vigil_incidents_opened_total counter
vigil_incidents_opened_total 1
# HELP vigil_mitigations_total Mitigation steps recorded in timelines since vigil started, by action (KIND:NAME; empty for an escalation past the last rung) and outcome (started, ok, verified, failed, skipped, dry_run, waiting, escalated).
# TYPE vigil_mitigations_total counter
vigil_mitigations_total{action="restart:app",outcome="verified"} 1
# HELP vigil_pages_total Pages sent since vigil started, by notifier and outcome.
# TYPE vigil_pages_total counter
vigil_pages_total{notifier="alertmanager",outcome="sent"} 2
# HELP vigil_protection_read_errors_total Failed reads of a never-block source (host addresses, gateways, SSH sessions, ufw allow rules); blocks are held while one fails.
# TYPE vigil_protection_read_errors_total counter
vigil_protection_read_errors_total 0
# HELP vigil_fleet_etcd_up 1 when the fleet budget's last request to etcd got a usable answer; 0 when etcd could not be reached, refused it or answered something unusable (capped actions hold, or act without a slot, per [fleet] unreachable).
# TYPE vigil_fleet_etcd_up gauge
# HELP vigil_fleet_slot_held 1 while this host holds a slot of the fleet's budget for the action; 0 when it asked for one and holds none now. Sum by (fleet, action) for the hosts acting now.
# TYPE vigil_fleet_slot_held gauge
# HELP vigil_fleet_slot_requests_total Slots of the fleet's budget asked for, by action and answer (granted, full: the cap is reached, unavailable: etcd could not be asked); since the budget started.
# TYPE vigil_fleet_slot_requests_total counter
)";
  EXPECT_EQ(render_metrics(s), expected);
}

TEST(MetricsRender, EmptySnapshotStillHasEveryFamilyAndAllSeverities) {
  const std::string text = render_metrics(MetricsSnapshot{});
  for (std::string_view family :
       {"vigil_build_info", "vigil_start_time_seconds", "vigil_check_up", "vigil_check_state",
        "vigil_check_severity", "vigil_check_runs_total", "vigil_check_failures_total",
        "vigil_probe_duration_seconds", "vigil_incidents_open", "vigil_incidents_opened_total",
        "vigil_mitigations_total", "vigil_pages_total", "vigil_protection_read_errors_total",
        "vigil_fleet_etcd_up", "vigil_fleet_slot_held", "vigil_fleet_slot_requests_total"}) {
    const std::string name(family);
    EXPECT_TRUE(contains(text, "# HELP " + name + " ")) << name;
    EXPECT_TRUE(contains(text, "# TYPE " + name + " ")) << name;
  }
  EXPECT_TRUE(contains(text, "vigil_incidents_open{severity=\"SEV1\"} 0\n"));
  EXPECT_TRUE(contains(text, "vigil_incidents_open{severity=\"SEV2\"} 0\n"));
  EXPECT_TRUE(contains(text, "vigil_incidents_open{severity=\"SEV3\"} 0\n"));
  EXPECT_TRUE(contains(text, "vigil_start_time_seconds 0\n"));
  EXPECT_EQ(text.back(), '\n') << "the last line must end with a line feed";
}

// A fleet member: etcd's state, the slot held now (1) and the one given back (0: a series that
// stays while the action was ever asked for), and the answers by action.
TEST(MetricsRender, FleetFamiliesForAMember) {
  MetricsSnapshot s;
  MetricsSnapshot::Fleet f;
  f.name = "web";
  f.etcd_up = true;
  f.held = {"restart:app"};
  f.answers[{"restart:app", "granted"}] = 2;
  f.answers[{"restart:app", "full"}] = 5;
  f.answers[{"rollback:app", "unavailable"}] = 1;
  s.fleet = f;
  const std::string text = render_metrics(s);
  EXPECT_TRUE(contains(text, "\nvigil_fleet_etcd_up{fleet=\"web\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "\nvigil_fleet_slot_held{fleet=\"web\",action=\"restart:app\"} 1\n"));
  EXPECT_TRUE(contains(text, "\nvigil_fleet_slot_held{fleet=\"web\",action=\"rollback:app\"} 0\n"));
  EXPECT_TRUE(contains(text,
                       "\nvigil_fleet_slot_requests_total{fleet=\"web\",action=\"restart:app\","
                       "answer=\"full\"} 5\n"));
  EXPECT_TRUE(contains(text,
                       "\nvigil_fleet_slot_requests_total{fleet=\"web\",action=\"restart:app\","
                       "answer=\"granted\"} 2\n"));
  EXPECT_TRUE(
      contains(text,
               "\nvigil_fleet_slot_requests_total{fleet=\"web\",action=\"rollback:app\",answer="
               "\"unavailable\"} 1\n"));
  s.fleet->etcd_up = false;
  EXPECT_TRUE(contains(render_metrics(s), "\nvigil_fleet_etcd_up{fleet=\"web\"} 0\n"));
  // Without [fleet], the families are there with no samples.
  s.fleet.reset();
  EXPECT_FALSE(contains(render_metrics(s), "vigil_fleet_etcd_up{"));
}

TEST(MetricsRender, LabelValuesAreEscaped) {
  MetricsSnapshot s;
  s.version = "1.0\"x";
  s.checks.push_back({"a\"b\\c\nd", "http", "ok", std::nullopt, nullptr, 0, 0});
  s.mitigations[{"re\\start", "fail\ned"}] = 3;
  const std::string text = render_metrics(s);
  EXPECT_TRUE(contains(text, "vigil_build_info{version=\"1.0\\\"x\"} 1\n")) << text;
  EXPECT_TRUE(contains(text, "vigil_check_up{check=\"a\\\"b\\\\c\\nd\",probe=\"http\"} 1\n"))
      << text;
  EXPECT_TRUE(
      contains(text, "vigil_mitigations_total{action=\"re\\\\start\",outcome=\"fail\\ned\"} 3\n"))
      << text;
  // No raw line feed inside a sample: every line is a comment or starts with a metric name.
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    ASSERT_NE(end, std::string::npos);
    const std::string_view line(text.data() + start, end - start);
    EXPECT_TRUE(line.rfind("# ", 0) == 0 || line.rfind("vigil_", 0) == 0) << line;
    start = end + 1;
  }
}

TEST(MetricsRender, UnrecognisedStateIsReportedAsUnknown) {
  MetricsSnapshot s;
  s.checks.push_back({"x", "unit", "weird", std::nullopt, nullptr, 0, 0});
  const std::string text = render_metrics(s);
  EXPECT_TRUE(contains(text, "vigil_check_state{check=\"x\",probe=\"unit\",state=\"unknown\"} 1"));
  EXPECT_FALSE(contains(text, "weird"));
  EXPECT_TRUE(contains(text, "vigil_check_up{check=\"x\",probe=\"unit\"} 0"));
}

TEST(MetricsRender, FractionalStartTime) {
  MetricsSnapshot s;
  s.start_time_seconds = 1700000000.25;
  EXPECT_TRUE(contains(render_metrics(s), "vigil_start_time_seconds 1700000000.25\n"));
}

TEST(MetricsHistogram, BoundsAreInclusiveAndCountsCumulative) {
  LatencyHistogram h;
  h.observe(milliseconds(5));      // exactly on the first bound: in le="0.005"
  h.observe(milliseconds(6));      // le="0.01"
  h.observe(milliseconds(10000));  // exactly on the last finite bound
  h.observe(milliseconds(10001));  // +Inf only
  h.observe(milliseconds(-3));     // counted as zero
  const auto c = h.cumulative();
  ASSERT_EQ(c.size(), LatencyHistogram::kBounds.size() + 1);
  EXPECT_EQ(c[0], 2u);   // -3 (as 0) and 5 ms
  EXPECT_EQ(c[1], 3u);   // + 6 ms
  EXPECT_EQ(c[10], 4u);  // + 10 s
  EXPECT_EQ(c[11], 5u);  // + 10.001 s
  for (std::size_t i = 1; i < c.size(); ++i) EXPECT_LE(c[i - 1], c[i]) << i;
  EXPECT_EQ(c.back(), h.count());
  EXPECT_EQ(h.sum(), milliseconds(5 + 6 + 10000 + 10001));
}

TEST(MetricsHistogram, InfBucketEqualsCountInRenderedText) {
  LatencyHistogram h;
  for (int i = 0; i < 100; ++i) h.observe(milliseconds(i * 137));
  MetricsSnapshot s;
  s.checks.push_back({"c", "journal", "ok", std::nullopt, &h, 100, 0});
  const std::string text = render_metrics(s);
  EXPECT_TRUE(contains(text, "{check=\"c\",probe=\"journal\",le=\"+Inf\"} 100\n")) << text;
  EXPECT_TRUE(contains(text,
                       "vigil_probe_duration_seconds_count{check=\"c\",probe=\"journal\"} "
                       "100\n"));
  // 137 ms * (0 + 1 + ... + 99) = 678.15 s
  EXPECT_TRUE(contains(text,
                       "vigil_probe_duration_seconds_sum{check=\"c\",probe=\"journal\"} "
                       "678.15\n"))
      << text;
}

TEST(MetricsHistogram, EmptyHistogram) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.sum(), milliseconds(0));
  for (std::uint64_t n : h.cumulative()) EXPECT_EQ(n, 0u);
}

TEST(MetricsListenAddress, AcceptsLoopback) {
  Result<ListenAddress> a = parse_listen_address("127.0.0.1:9717");
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->ip.to_string(), "127.0.0.1");
  EXPECT_EQ(a->port, 9717);

  Result<ListenAddress> b = parse_listen_address("[::1]:0");
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->ip.family, IpAddress::Family::v6);
  EXPECT_EQ(b->port, 0);

  Result<ListenAddress> c = parse_listen_address("127.1.2.3:65535");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->port, 65535);
}

TEST(MetricsListenAddress, RefusesNonLoopback) {
  for (std::string_view text : {"0.0.0.0:9717", "192.0.2.1:9", "[::]:9717", "10.0.0.1:80",
                                "[2001:db8::1]:9717", "[fe80::1]:9717"}) {
    Result<ListenAddress> r = parse_listen_address(text);
    ASSERT_FALSE(r) << text;
    EXPECT_TRUE(contains(r.error().message, "not a loopback address")) << r.error().message;
  }
}

TEST(MetricsListenAddress, RefusesMalformed) {
  for (std::string_view text :
       {"", "127.0.0.1", "127.0.0.1:", ":9717", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+1",
        "127.0.0.1:97x", "::1:9717", "[::1]", "[::1]9717", "[::1:9717", "localhost:9717",
        "127.0.0.1 :9717", "127.0.0.1:123456"}) {
    Result<ListenAddress> r = parse_listen_address(text);
    EXPECT_FALSE(r) << "\"" << text << "\" parsed";
    if (!r) {
      EXPECT_TRUE(contains(r.error().message, "metrics address")) << r.error().message;
    }
  }
  EXPECT_TRUE(contains(parse_listen_address("::1:9717").error().message, "[::1]:9717"));
}

TEST(MetricsListenAddress, ErrorQuotesHostileInputSafely) {
  const std::string hostile = "\n" + std::string(200, 'a') + ":1";
  Result<ListenAddress> r = parse_listen_address(hostile);
  ASSERT_FALSE(r);
  EXPECT_FALSE(contains(r.error().message, "\n"));
  EXPECT_LT(r.error().message.size(), 200u);
}

}  // namespace
}  // namespace vigil
