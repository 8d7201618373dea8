// Incident timelines on disk: the JSON-lines form of a TimelineEvent, RFC 3339 times, and the
// store (append durably, replay through Incident::apply, survive torn and garbage lines).
#include "agent/incidents/timeline.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace vigil {
namespace {

using namespace std::chrono_literals;
using Type = TimelineEvent::Type;

// 2026-11-27T01:42:07.123Z, plus whatever is added.
TimePoint base_time() {
  using namespace std::chrono;
  return sys_days{year{2026} / 11 / 27} + 1h + 42min + 7s + 123ms;
}

TimelineEvent event(Type type, TimePoint at) {
  TimelineEvent e;
  e.type = type;
  e.at = at;
  return e;
}

TimelineEvent every_field() {
  TimelineEvent e = event(Type::severity, base_time());
  e.check = "nginx-http";
  e.key = "10.0.0.7";
  e.text = "SEV3 -> SEV1: \"quoted\", tab\there, newline\nthere, ünïcödé";
  e.severity = Severity::sev1;
  e.previous = Severity::sev3;
  e.state = IncidentState::mitigating;
  e.since = base_time() - 90s;
  e.finding = "severity_changed";
  e.failure = "http_5xx";
  e.evidence = {"line one", "", "line three"};
  e.fields = {{"http_status", "503"}, {"service", ""}, {"latency_ms", "12"}};
  return e;
}

void expect_same_event(const TimelineEvent& a, const TimelineEvent& b) {
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.check, b.check);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.text, b.text);
  EXPECT_EQ(a.severity, b.severity);
  EXPECT_EQ(a.previous, b.previous);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.since, b.since);
  EXPECT_EQ(a.finding, b.finding);
  EXPECT_EQ(a.failure, b.failure);
  EXPECT_EQ(a.evidence, b.evidence);
  EXPECT_EQ(a.fields, b.fields);
}

// --- time ---

TEST(TimelineTime, FormatsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(format_time(base_time()), "2026-11-27T01:42:07.123Z");
  // Sub-millisecond digits are truncated, not rounded.
  EXPECT_EQ(format_time(base_time() + 999us), "2026-11-27T01:42:07.123Z");
  EXPECT_EQ(format_time(TimePoint{}), "1970-01-01T00:00:00.000Z");
}

TEST(TimelineTime, RoundTripsWithMillisecondPrecision) {
  for (const TimePoint t : {base_time(), base_time() + 1ms, TimePoint{}, TimePoint{} + 86'399'999ms,
                            base_time() + std::chrono::hours(24 * 365 * 30)}) {
    const std::optional<TimePoint> back = parse_time(format_time(t));
    ASSERT_TRUE(back) << format_time(t);
    EXPECT_EQ(*back, t) << format_time(t);
  }
  // Finer than a millisecond: comes back floored to the millisecond.
  const std::optional<TimePoint> back = parse_time(format_time(base_time() + 456us));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, base_time());
}

TEST(TimelineTime, ParsesWithoutMillisAndOtherFractions) {
  EXPECT_EQ(parse_time("2026-11-27T01:42:07Z"), base_time() - 123ms);
  EXPECT_EQ(parse_time("2026-11-27T01:42:07.5Z"), base_time() + 377ms);
  EXPECT_EQ(parse_time("2026-11-27t01:42:07.123z"), base_time());
  EXPECT_EQ(parse_time("2026-11-27T01:42:07.123000001Z"), base_time() + 1ns);
}

TEST(TimelineTime, RefusesWhatIsNotRfc3339Utc) {
  for (const char* bad :
       {"", "garbage", "2026-11-27", "2026-11-27T01:42:07", "2026-11-27T01:42:07.123",
        "2026-11-27T01:42:07+01:00", "2026-11-27 01:42:07Z", "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T01:60:00Z",
        "2026-11-27T01:42:60Z", "2026-11-27T01:42:07.Z", "2026-11-27T01:42:07.1234567890Z",
        "2026-11-27T01:42:07.123ZZ", "9999-12-31T23:59:59Z", "+026-11-27T01:42:07Z"}) {
    EXPECT_FALSE(parse_time(bad)) << bad;
  }
}

// --- JSON lines ---

TEST(TimelineJson, RoundTripsEveryField) {
  const TimelineEvent e = every_field();
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << "one event, one line";
  EXPECT_EQ(line.rfind(R"({"at":"2026-11-27T01:42:07.123Z","type":"severity",)", 0), 0u) << line;
  EXPECT_NE(line.find(R"("severity":"SEV1")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("state":"mitigating")"), std::string::npos) << line;
  const Result<TimelineEvent> back = from_json_line(line);
  ASSERT_TRUE(back) << back.error().message;
  expect_same_event(e, *back);
}

TEST(TimelineJson, LeavesOutEmptyAndAbsentFields) {
  const std::string line = to_json_line(event(Type::note, base_time()));
  EXPECT_EQ(line, R"({"at":"2026-11-27T01:42:07.123Z","type":"note"})");
  const Result<TimelineEvent> back = from_json_line(line);
  ASSERT_TRUE(back) << back.error().message;
  expect_same_event(event(Type::note, base_time()), *back);
}

TEST(TimelineJson, ErrorsSayWhatIsWrong) {
  const auto error_of = [](std::string_view line) {
    const Result<TimelineEvent> r = from_json_line(line);
    return r ? std::string("(no error)") : r.error().message;
  };
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"note"})"), "(no error)");

  const std::string bad_json = error_of(R"({"at": "2026-11-27T01:42:07Z", "type": note})");
  EXPECT_EQ(bad_json.rfind("bad JSON: parse error at line 1, column ", 0), 0u) << bad_json;
  EXPECT_EQ(bad_json.find("[json.exception"), std::string::npos) << bad_json;
  EXPECT_EQ(error_of(""), error_of("")) << "stable";
  EXPECT_EQ(error_of("").rfind("bad JSON: ", 0), 0u);
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42)").rfind("bad JSON: ", 0), 0u);

  EXPECT_EQ(error_of(R"(["at","type"])"), "not a JSON object");
  EXPECT_EQ(error_of(R"({"type":"note"})"), R"(missing "at")");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z"})"), R"(missing "type")");
  EXPECT_EQ(error_of(R"({"at":"yesterday","type":"note"})"),
            R"(bad "at" time "yesterday" (expected RFC 3339 UTC))");
  EXPECT_EQ(error_of(R"({"at":1764207727,"type":"note"})"), R"("at" is not a string)");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"explosion"})"),
            R"(unknown event type "explosion")");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"severity","severity":"SEV9"})"),
            R"(unknown severity "SEV9" (expected SEV1..SEV3))");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"severity","previous":"high"})"),
            R"(unknown previous "high" (expected SEV1..SEV3))");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"state","state":"panicking"})"),
            R"(unknown state "panicking")");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"note","text":5})"),
            R"("text" is not a string)");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"evidence","evidence":"x"})"),
            R"("evidence" is not an array)");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"evidence","evidence":["x",1]})"),
            R"("evidence" holds a non-string)");
  EXPECT_EQ(error_of(R"({"at":"2026-11-27T01:42:07Z","type":"note","fields":{"a":null}})"),
            R"("fields": "a" is not a string)");
  // A hostile value is quoted, but not at length.
  EXPECT_LT(error_of(R"({"at":"2026-11-27T01:42:07Z","type":")" + std::string(10'000, 'x') + "\"}")
                .size(),
            200u);
}

TEST(TimelineJson, IgnoresUnknownKeys) {
  const Result<TimelineEvent> r =
      from_json_line(R"({"at":"2026-11-27T01:42:07Z","type":"ack","by":"alice","v":2})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->type, Type::ack);
}

TEST(TimelineJson, InvalidUtf8IsReplacedNotThrown) {
  TimelineEvent e = event(Type::evidence, base_time());
  e.text = "sshd: bad \xff\xfe user \xc3";  // stray bytes and a truncated sequence
  e.evidence = {"\x80 continuation first", "surrogate \xed\xa0\x80 encoded", "fine ü"};
  e.fields = {{"user\xff", "\xc0\xaf"}};  // invalid bytes in a key too; overlong '/'
  std::string line;
  ASSERT_NO_THROW(line = to_json_line(e));
  const Result<TimelineEvent> back = from_json_line(line);
  ASSERT_TRUE(back) << back.error().message;
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(back->text.rfind("sshd: bad " + fffd, 0), 0u);
  EXPECT_NE(back->text.find(" user " + fffd), std::string::npos);
  EXPECT_EQ(back->text.find('\xff'), std::string::npos);
  ASSERT_EQ(back->evidence.size(), 3u);
  EXPECT_EQ(back->evidence[0], fffd + " continuation first");
  EXPECT_EQ(back->evidence[1].find('\xed'), std::string::npos);
  EXPECT_EQ(back->evidence[2], "fine ü") << "valid UTF-8 is kept as it is";
  ASSERT_EQ(back->fields.size(), 1u);
  EXPECT_EQ(back->fields.begin()->first, "user" + fffd);
}

TEST(TimelineJson, ControlCharactersAreEscapedOntoOneLine) {
  TimelineEvent e = event(Type::note, base_time());
  e.text = std::string("a\nb\rc\0d\x1b[31me", 11);
  const std::string line = to_json_line(e);
  EXPECT_EQ(line.find_first_of(std::string("\n\r\0\x1b", 4)), std::string::npos) << line;
  const Result<TimelineEvent> back = from_json_line(line);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->text, e.text);
}

TEST(TimelineJson, TenKilobyteLineSurvives) {
  TimelineEvent e = event(Type::evidence, base_time());
  e.text = std::string(10'000, 'x') + "é\xff";
  e.evidence = {std::string(10'000, 'y')};
  std::string line;
  ASSERT_NO_THROW(line = to_json_line(e));
  EXPECT_GT(line.size(), 20'000u);
  const Result<TimelineEvent> back = from_json_line(line);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->text, std::string(10'000, 'x') + "é\xEF\xBF\xBD");
  EXPECT_EQ(back->evidence, e.evidence);
}

// --- ids ---

TEST(TimelineIds, RefusesWhatIsNotAPlainFileName) {
  EXPECT_TRUE(valid_incident_id("20261127-014207-nginx"));
  EXPECT_TRUE(valid_incident_id("20261127-014207-sshd-10.0.0.7-2"));
  EXPECT_TRUE(valid_incident_id("a"));
  EXPECT_TRUE(valid_incident_id("A_b.c-d"));
  EXPECT_TRUE(valid_incident_id(std::string(128, 'a')));
  for (const std::string& bad :
       {std::string(), std::string("../x"), std::string("a/b"), std::string(".hidden"),
        std::string("."), std::string(".."), std::string("-rf"), std::string("_x"),
        std::string(200, 'a'), std::string(129, 'a'), std::string("a b"), std::string("a\nb"),
        std::string("a\0b", 3), std::string("é"), std::string("a:b"), std::string("/abs")}) {
    EXPECT_FALSE(valid_incident_id(bad)) << bad;
  }
}

// --- the store ---

class IncidentStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-timeline-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state/incidents";  // does not exist yet: append() creates it
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  std::string path(const std::string& id) const { return dir_ + "/" + id + ".jsonl"; }
  void write_raw(const std::string& id, const std::string& bytes) const {
    std::ofstream out(path(id), std::ios::binary | std::ios::app);
    out << bytes;
  }

  // A whole incident: opened, two members firing, evidence, severity, triaged, flapping,
  // mitigation, a member recovering, a downgrade, the other recovering, resolved.
  static std::vector<TimelineEvent> story() {
    const TimePoint t = base_time();
    std::vector<TimelineEvent> v;
    TimelineEvent o = event(Type::opened, t);
    o.check = "nginx-http";
    o.since = t - 20s;
    o.text = "incident opened: nginx: HTTP 503";
    o.fields = {{"host", "web1"},
                {"service", "nginx"},
                {"team", "web"},
                {"dedupe_key", "web1/service/nginx"},
                {"title", "nginx: HTTP 503"},
                {"maintenance", "no"}};
    v.push_back(o);
    TimelineEvent f = event(Type::finding, t);
    f.check = "nginx-http";
    f.finding = "firing";
    f.severity = Severity::sev2;
    f.since = t - 20s;
    f.failure = "http_5xx";
    f.text = "HTTP 503 in 12ms";
    f.fields = {{"http_status", "503"}, {"latency_ms", "12"}};
    v.push_back(f);
    TimelineEvent ev = event(Type::evidence, t);
    ev.check = "nginx-http";
    ev.text = "evidence from nginx-http";
    ev.evidence = {"nginx.service: active (running)", "upstream timed out \xff"};
    v.push_back(ev);
    TimelineEvent s = event(Type::severity, t);
    s.severity = Severity::sev2;
    s.text = "declared SEV2";
    v.push_back(s);
    TimelineEvent tr = event(Type::state, t);
    tr.state = IncidentState::triaged;
    tr.text = "triaged as SEV2, team web";
    v.push_back(tr);
    TimelineEvent f2 = event(Type::finding, t + 30s);
    f2.check = "nginx-unit";
    f2.key = "nginx.service";
    f2.finding = "firing";
    f2.severity = Severity::sev1;
    f2.since = t + 25s;
    f2.failure = "unit_failed";
    f2.text = "nginx.service failed";
    v.push_back(f2);
    TimelineEvent s2 = event(Type::severity, t + 30s);
    s2.severity = Severity::sev1;
    s2.previous = Severity::sev2;
    s2.text = "SEV2 -> SEV1";
    v.push_back(s2);
    TimelineEvent fl = event(Type::flapping, t + 40s);
    fl.check = "nginx-http";
    fl.severity = Severity::sev2;
    fl.fields = {{"flapping", "yes"}};
    v.push_back(fl);
    TimelineEvent m = event(Type::mitigation, t + 41s);
    m.text = "restart nginx.service";
    m.fields = {{"action", "restart"}, {"target", "nginx.service"}, {"outcome", "started"}};
    v.push_back(m);
    TimelineEvent mi = event(Type::state, t + 41s);
    mi.state = IncidentState::mitigating;
    v.push_back(mi);
    TimelineEvent r2 = event(Type::finding, t + 60s);
    r2.check = "nginx-unit";
    r2.key = "nginx.service";
    r2.finding = "recovered";
    r2.severity = Severity::sev1;
    r2.text = "nginx.service active";
    v.push_back(r2);
    TimelineEvent s3 = event(Type::severity, t + 60s);
    s3.severity = Severity::sev2;
    s3.previous = Severity::sev1;
    v.push_back(s3);
    TimelineEvent m1 = event(Type::mitigation, t + 65s);
    m1.text = "restart nginx.service did not help";
    m1.fields = {{"action", "restart"}, {"target", "nginx.service"}, {"outcome", "failed"}};
    v.push_back(m1);
    TimelineEvent fl2 = event(Type::flapping, t + 70s);
    fl2.check = "nginx-http";
    fl2.fields = {{"flapping", "no"}};
    v.push_back(fl2);
    TimelineEvent r1 = event(Type::finding, t + 80s);
    r1.check = "nginx-http";
    r1.finding = "recovered";
    r1.severity = Severity::sev2;
    r1.text = "HTTP 200 in 3ms";
    v.push_back(r1);
    TimelineEvent res = event(Type::state, t + 80s);
    res.state = IncidentState::resolved;
    res.text = "resolved";
    v.push_back(res);
    return v;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(IncidentStoreTest, ReplaysToTheSameIncidentAsInMemory) {
  IncidentStore store(dir_);
  Incident expected;
  expected.id = "20261127-014207-nginx";
  for (const TimelineEvent& e : story()) {
    expected.apply(e);
    const Result<bool> r = store.append(expected.id, e);
    ASSERT_TRUE(r) << r.error().message;
  }
  const Result<IncidentStore::Loaded> loaded = store.load(expected.id);
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->skipped, 0);
  EXPECT_TRUE(loaded->warnings.empty());
  const Incident& got = loaded->incident;
  EXPECT_EQ(got.id, expected.id);
  EXPECT_EQ(got.host, "web1");
  EXPECT_EQ(got.dedupe_key, expected.dedupe_key);
  EXPECT_EQ(got.service, expected.service);
  EXPECT_EQ(got.team, expected.team);
  EXPECT_EQ(got.title, expected.title);
  EXPECT_EQ(got.severity, expected.severity);
  EXPECT_EQ(got.peak, expected.peak);
  EXPECT_EQ(got.peak, Severity::sev1);
  EXPECT_EQ(got.state, expected.state);
  EXPECT_EQ(got.state, IncidentState::resolved);
  EXPECT_EQ(got.maintenance, expected.maintenance);
  EXPECT_EQ(got.started, expected.started);
  EXPECT_EQ(got.detected, expected.detected);
  EXPECT_EQ(got.triaged, expected.triaged);
  EXPECT_EQ(got.mitigated, expected.mitigated);
  EXPECT_EQ(got.resolved, expected.resolved);
  EXPECT_EQ(got.raised, expected.raised);
  EXPECT_EQ(got.raised, 1);
  ASSERT_EQ(got.members.size(), expected.members.size());
  ASSERT_EQ(got.members.size(), 2u);
  for (const auto& [k, m] : expected.members) {
    const auto it = got.members.find(k);
    ASSERT_NE(it, got.members.end()) << k.first << " " << k.second;
    EXPECT_EQ(it->second.firing, m.firing);
    EXPECT_EQ(it->second.flapping, m.flapping);
    EXPECT_EQ(it->second.severity, m.severity);
    EXPECT_EQ(it->second.failure, m.failure);
    EXPECT_EQ(it->second.summary, m.summary);
    EXPECT_EQ(it->second.since, m.since);
  }
  ASSERT_EQ(got.timeline.size(), expected.timeline.size());
  for (std::size_t i = 0; i < got.timeline.size(); ++i) {
    // The evidence line with an invalid byte comes back replaced; everything else is equal.
    EXPECT_EQ(to_json_line(got.timeline[i]), to_json_line(expected.timeline[i])) << i;
  }
}

TEST_F(IncidentStoreTest, CreatesTheDirectoryAndFilePrivately) {
  const mode_t old = ::umask(022);
  IncidentStore store(dir_ + "/");
  EXPECT_EQ(store.dir(), dir_);
  EXPECT_FALSE(store.exists("a"));
  const Result<bool> r = store.append("a", story()[0]);
  ::umask(old);
  ASSERT_TRUE(r) << r.error().message;
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u);
  ASSERT_EQ(::stat(path("a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_TRUE(store.exists("a"));

  std::ifstream in(path("a"), std::ios::binary);
  const std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, to_json_line(story()[0]) + "\n");
}

TEST_F(IncidentStoreTest, TornLastLineIsSkipped) {
  IncidentStore store(dir_);
  const std::vector<TimelineEvent> events = story();
  for (std::size_t i = 0; i < 5; ++i) ASSERT_TRUE(store.append("torn", events[i]));
  const std::string whole = to_json_line(events[5]);
  write_raw("torn", whole.substr(0, whole.size() / 2));  // the crash: half a line, no newline

  Result<IncidentStore::Loaded> loaded = store.load("torn");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->skipped, 1);
  EXPECT_EQ(loaded->incident.timeline.size(), 5u);
  EXPECT_EQ(loaded->incident.state, IncidentState::triaged);
  ASSERT_EQ(loaded->warnings.size(), 1u);
  EXPECT_NE(loaded->warnings[0].find("torn.jsonl:6: torn last line"), std::string::npos)
      << loaded->warnings[0];

  // After the restart the next event starts a line of its own: it is not lost with the fragment.
  ASSERT_TRUE(store.append("torn", events[6]));
  loaded = store.load("torn");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->skipped, 1);
  EXPECT_EQ(loaded->incident.timeline.size(), 6u);
  EXPECT_EQ(loaded->incident.severity, Severity::sev1);
}

TEST_F(IncidentStoreTest, WholeLastLineWithoutNewlineIsKept) {
  IncidentStore store(dir_);
  const std::vector<TimelineEvent> events = story();
  ASSERT_TRUE(store.append("nl", events[0]));
  write_raw("nl", to_json_line(events[1]));  // only the '\n' was lost
  const Result<IncidentStore::Loaded> loaded = store.load("nl");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->skipped, 0);
  EXPECT_EQ(loaded->incident.timeline.size(), 2u);
}

TEST_F(IncidentStoreTest, GarbageMiddleLineIsSkippedAndReported) {
  IncidentStore store(dir_);
  const std::vector<TimelineEvent> events = story();
  ASSERT_TRUE(store.append("mid", events[0]));
  ASSERT_TRUE(store.append("mid", events[1]));
  write_raw("mid", "\x01garbage{\"at\":\n");
  write_raw("mid", "\n");  // a blank line is neither an event nor an error
  write_raw("mid", R"({"at":"2026-11-27T01:42:07Z","type":"meteor"})"
                   "\n");
  ASSERT_TRUE(store.append("mid", events[2]));

  const Result<IncidentStore::Loaded> loaded = store.load("mid");
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->skipped, 2);
  EXPECT_EQ(loaded->incident.timeline.size(), 3u);
  ASSERT_EQ(loaded->warnings.size(), 2u);
  EXPECT_NE(loaded->warnings[0].find("mid.jsonl:3: unreadable line, skipped: bad JSON"),
            std::string::npos)
      << loaded->warnings[0];
  EXPECT_NE(loaded->warnings[1].find(
                R"(mid.jsonl:5: unreadable line, skipped: unknown event type "meteor")"),
            std::string::npos)
      << loaded->warnings[1];
}

TEST_F(IncidentStoreTest, UnknownFieldValuesAreNotFatal) {
  IncidentStore store(dir_);
  ASSERT_TRUE(store.append("odd", story()[0]));
  TimelineEvent s = event(Type::severity, base_time());
  s.severity = Severity::sev1;
  s.fields = {{"raised", "lots"}};  // written by no vigil today: ignored, never a crash
  ASSERT_TRUE(store.append("odd", s));
  Result<IncidentStore::Loaded> loaded = Error{};
  ASSERT_NO_THROW(loaded = store.load("odd"));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ(loaded->incident.severity, Severity::sev1);
  EXPECT_EQ(loaded->incident.raised, 0);
}

// A batch (what the daemon writes for one incident at a time) gives the same file as one event
// per call, in order, and a batch may also start a new timeline.
TEST_F(IncidentStoreTest, BatchAppendEqualsOneByOne) {
  IncidentStore store(dir_);
  const std::vector<TimelineEvent> events = story();
  ASSERT_TRUE(
      store.append("batch", std::vector<TimelineEvent>(events.begin(), events.begin() + 3)));
  ASSERT_TRUE(store.append("batch", std::vector<TimelineEvent>(events.begin() + 3, events.end())));
  ASSERT_TRUE(store.append("batch", std::vector<TimelineEvent>{}));  // nothing to write
  for (const TimelineEvent& e : events) ASSERT_TRUE(store.append("single", e));
  const auto a = store.load("batch");
  const auto b = store.load("single");
  ASSERT_TRUE(a && b);
  ASSERT_EQ(a->incident.timeline.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(to_json_line(a->incident.timeline[i]), to_json_line(b->incident.timeline[i])) << i;
  }
  // A batch that does not start with "opened" cannot create a timeline.
  EXPECT_FALSE(store.append("nope", std::vector<TimelineEvent>(events.begin() + 1, events.end())));
}

TEST_F(IncidentStoreTest, FirstEventMustBeOpened) {
  IncidentStore store(dir_);
  // append() refuses to start a timeline with anything else...
  const Result<bool> r = store.append("x", story()[1]);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("must start with an \"opened\" event"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(store.exists("x"));

  // ... and load() refuses such a file.
  ASSERT_TRUE(store.append("y", story()[0]));  // creates the directory
  write_raw("x", to_json_line(story()[1]) + "\n" + to_json_line(story()[0]) + "\n");
  const Result<IncidentStore::Loaded> loaded = store.load("x");
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message.find(R"(x.jsonl:1: the first event is "finding", not "opened")"),
            std::string::npos)
      << loaded.error().message;

  write_raw("empty", "");
  const Result<IncidentStore::Loaded> empty = store.load("empty");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("empty.jsonl: no event"), std::string::npos);
}

TEST_F(IncidentStoreTest, RefusesBadIdsAndMissingFiles) {
  IncidentStore store(dir_);
  for (const std::string& bad : {std::string("../x"), std::string("a/b"), std::string(),
                                 std::string(".hidden"), std::string(200, 'a')}) {
    const Result<bool> r = store.append(bad, story()[0]);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("invalid incident id"), std::string::npos);
    EXPECT_FALSE(store.load(bad));
    EXPECT_FALSE(store.exists(bad));
  }
  EXPECT_FALSE(std::filesystem::exists(root_ + "/state/x.jsonl"));
  const Result<IncidentStore::Loaded> missing = store.load("nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("cannot read " + path("nope") + ": "), std::string::npos)
      << missing.error().message;
}

TEST_F(IncidentStoreTest, ListsIdsSorted) {
  IncidentStore store(dir_);
  EXPECT_TRUE(store.list().empty()) << "no directory yet";
  for (const char* id : {"20261127-014207-web", "20261126-000000-db", "b", "A", "c-2"}) {
    ASSERT_TRUE(store.append(id, story()[0]));
  }
  write_raw("notes", "");  // a .jsonl too, just not written by append()
  {
    std::ofstream(dir_ + "/readme.txt") << "x";
    std::ofstream(dir_ + "/.hidden.jsonl") << "x";
    std::ofstream(dir_ + "/x.jsonl.tmp") << "x";
  }
  std::filesystem::create_directory(dir_ + "/dir.jsonl");
  std::filesystem::create_symlink(path("b"), dir_ + "/link.jsonl");
  EXPECT_EQ(store.list(), (std::vector<std::string>{"20261126-000000-db", "20261127-014207-web",
                                                    "A", "b", "c-2", "notes"}));
  EXPECT_FALSE(store.exists("link"));
  EXPECT_FALSE(store.append("link", story()[1])) << "O_NOFOLLOW";
}

// Issue 13: retention. Resolved timelines older than the cutoff go, then the least recently
// written beyond the count; the ones to keep (open incidents) never, however old.
TEST_F(IncidentStoreTest, PruneDeletesByAgeThenByCountAndKeepsOpenOnes) {
  IncidentStore store(dir_);
  const std::vector<std::string> ids = {"20260101-000000-a", "20260102-000000-b",
                                        "20260103-000000-c", "20260104-000000-d",
                                        "20260105-000000-e"};
  const TimePoint t0 = base_time();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(store.append(ids[i], event(Type::opened, t0)));
    // Last written i days after t0.
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                          (t0 + std::chrono::hours(24 * static_cast<int>(i))).time_since_epoch())
                          .count();
    const timespec times[2] = {{secs, 0}, {secs, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, path(ids[i]).c_str(), times, 0), 0);
  }
  // Older than day 2: a and b, but a is open.
  EXPECT_EQ(store.prune(t0 + std::chrono::hours(36), 100, {ids[0]}),
            (std::vector<std::string>{ids[1]}));
  EXPECT_EQ(store.list(), (std::vector<std::string>{ids[0], ids[2], ids[3], ids[4]}));
  // At most 2 files: the least recently written resolved ones go (a stays, open).
  EXPECT_EQ(store.prune(TimePoint::min(), 2, {ids[0]}), (std::vector<std::string>{ids[2], ids[3]}));
  EXPECT_EQ(store.list(), (std::vector<std::string>{ids[0], ids[4]}));
  EXPECT_TRUE(store.prune(TimePoint::min(), 2, {ids[0]}).empty());
  // A new version of a file has a new stamp.
  const auto before = store.stamp(ids[4]);
  ASSERT_TRUE(before);
  ASSERT_TRUE(store.append(ids[4], event(Type::note, t0)));
  EXPECT_NE(store.stamp(ids[4]), before);
  EXPECT_FALSE(store.stamp("../etc/passwd"));
}

}  // namespace
}  // namespace vigil
