#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/json.h"
#include "notify/outbox.h"
#include "notify/page.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

TimePoint base_time() {
  using namespace std::chrono;
  return sys_days{year{2026} / November / 27} + 1h + 42min + 7s + 123ms;
}

Page full_page() {
  const TimePoint t = base_time();
  Page p;
  p.seq = 42;
  p.target = "am#1";
  p.notifier = "am";
  p.action = PageAction::resolve;
  p.incident = "20261127-014207-checkout";
  p.host = "web-3";
  p.title = "checkout: HTTP 503 (https://shop/health)";
  p.summary = "503 on 5 of 5 probes";
  p.service = "checkout";
  p.team = "payments";
  p.check = "checkout-http";
  p.severity = Severity::sev1;
  p.previous = Severity::sev2;
  p.state = "resolved";
  p.acknowledged = true;
  p.dry_run = true;
  p.text = "rolled back app: B -> A";
  p.evidence = {"line one", "line \"two\"\twith tab", "é ünïcode"};
  p.started = t - 20s;
  p.at = t;
  p.resolved = t + 5min;
  p.details = {{"runbook", "https://wiki/checkout"}, {"region", "eu-1"}};
  // Delivery state: never written.
  p.attempts = 7;
  p.next_try = t + 1h;
  p.last_error = "HTTP 503";
  return p;
}

// --- page_to_json / page_from_json ---

TEST(PageJson, RoundTripsEveryFieldButDeliveryState) {
  const Page p = full_page();
  const std::string text = page_to_json(p);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  Result<Page> back = page_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->seq, 42u);
  EXPECT_EQ(back->target, "am#1");
  EXPECT_EQ(back->notifier, "am");
  EXPECT_EQ(back->action, PageAction::resolve);
  EXPECT_EQ(back->incident, "20261127-014207-checkout");
  EXPECT_EQ(back->host, "web-3");
  EXPECT_EQ(back->title, p.title);
  EXPECT_EQ(back->summary, p.summary);
  EXPECT_EQ(back->service, "checkout");
  EXPECT_EQ(back->team, "payments");
  EXPECT_EQ(back->check, "checkout-http");
  EXPECT_EQ(back->severity, Severity::sev1);
  EXPECT_EQ(back->previous, std::optional<Severity>(Severity::sev2));
  EXPECT_EQ(back->state, "resolved");
  EXPECT_TRUE(back->acknowledged);
  EXPECT_TRUE(back->dry_run);
  EXPECT_EQ(back->text, p.text);
  EXPECT_EQ(back->evidence, p.evidence);
  EXPECT_EQ(back->started, p.started);
  EXPECT_EQ(back->at, p.at);
  EXPECT_EQ(back->resolved, p.resolved);
  EXPECT_EQ(back->details, p.details);
  EXPECT_EQ(back->attempts, 0);
  EXPECT_EQ(back->next_try, TimePoint{});
  EXPECT_EQ(back->last_error, "");

  const Json j = Json::parse(text);
  EXPECT_EQ(j.at("severity"), "SEV1");
  EXPECT_EQ(j.at("previous"), "SEV2");
  EXPECT_EQ(j.at("action"), "resolve");
  EXPECT_EQ(j.at("at"), "2026-11-27T01:42:07.123Z");
  EXPECT_EQ(j.at("started"), "2026-11-27T01:41:47.123Z");
  EXPECT_EQ(j.at("resolved"), "2026-11-27T01:47:07.123Z");
  EXPECT_FALSE(j.contains("attempts"));
  EXPECT_FALSE(j.contains("next_try"));
  EXPECT_FALSE(j.contains("last_error"));
  EXPECT_EQ(j.size(), 22u);
}

TEST(PageJson, AbsentOptionalsStayAbsent) {
  Page p;
  p.action = PageAction::trigger;
  p.severity = Severity::sev3;
  const std::string text = page_to_json(p);
  const Json j = Json::parse(text);
  EXPECT_FALSE(j.contains("previous"));
  EXPECT_FALSE(j.contains("resolved"));
  Result<Page> back = page_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->previous, std::nullopt);
  EXPECT_EQ(back->resolved, std::nullopt);
  EXPECT_EQ(back->severity, Severity::sev3);
  EXPECT_EQ(back->at, TimePoint{});
}

TEST(PageJson, EveryActionRoundTrips) {
  const std::vector<std::pair<PageAction, std::string>> all = {
      {PageAction::trigger, "trigger"},         {PageAction::update, "update"},
      {PageAction::acknowledge, "acknowledge"}, {PageAction::resolve, "resolve"},
      {PageAction::change, "change"},           {PageAction::heartbeat, "heartbeat"}};
  for (const auto& [action, name] : all) {
    Page p;
    p.action = action;
    const std::string text = page_to_json(p);
    EXPECT_EQ(Json::parse(text).at("action"), name);
    Result<Page> back = page_from_json(text);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->action, action) << name;
  }
}

TEST(PageJson, InvalidUtf8IsReplacedAndStaysOneLine) {
  Page p;
  p.evidence = {"bad \xff\xfe bytes", "two\nlines"};
  p.text = "ctl \x01 char";
  p.details = {{"k\xc3", "v\xc3"}};
  const std::string text = page_to_json(p);
  EXPECT_EQ(text.find('\n'), std::string::npos);
  Result<Json> j = parse_json(text);  // valid JSON, so valid UTF-8
  ASSERT_TRUE(j) << j.error().message;
  Result<Page> back = page_from_json(text);
  ASSERT_TRUE(back) << back.error().message;
  ASSERT_EQ(back->evidence.size(), 2u);
  EXPECT_EQ(back->evidence[0], "bad \xEF\xBF\xBD\xEF\xBF\xBD bytes");
  EXPECT_EQ(back->evidence[1], "two\nlines");
  EXPECT_EQ(back->text, "ctl \x01 char");
  EXPECT_EQ(back->details.count("k\xEF\xBF\xBD"), 1u);
}

TEST(PageJson, StrictTypesWithClearErrors) {
  const std::string ok = R"("action":"trigger","severity":"SEV2")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[]", "page: not a JSON object"},
      {R"({"severity":"SEV1"})", "page: missing 'action'"},
      {R"({"action":"trigger"})", "page: missing 'severity'"},
      {R"({"action":"trigger","severity":"SEV9"})",
       R"(page: 'severity' must be SEV1..SEV3 (got "SEV9"))"},
      {R"({"action":"trigger","severity":1})", "page: 'severity' must be a string"},
      {R"({"action":"explode","severity":"SEV1"})",
       "page: 'action' must be trigger, update, acknowledge, resolve, change or heartbeat "
       R"((got "explode"))"},
      {"{" + ok + R"(,"seq":-1})", "page: 'seq' must be a non-negative integer"},
      {"{" + ok + R"(,"seq":"7"})", "page: 'seq' must be a non-negative integer"},
      {"{" + ok + R"(,"seq":1.5})", "page: 'seq' must be a non-negative integer"},
      {"{" + ok + R"(,"title":5})", "page: 'title' must be a string"},
      {"{" + ok + R"(,"acknowledged":"yes"})", "page: 'acknowledged' must be true or false"},
      {"{" + ok + R"(,"dry_run":1})", "page: 'dry_run' must be true or false"},
      {"{" + ok + R"(,"evidence":["a",1]})", "page: 'evidence' must be an array of strings"},
      {"{" + ok + R"(,"evidence":"a"})", "page: 'evidence' must be an array of strings"},
      {"{" + ok + R"(,"details":{"a":1}})",
       R"(page: 'details' must be an object of strings ("a" is not))"},
      {"{" + ok + R"(,"at":"yesterday"})",
       R"(page: 'at' must be an RFC 3339 UTC time (got "yesterday"))"},
      {"{" + ok + R"(,"resolved":"2026-13-01T00:00:00Z"})",
       R"(page: 'resolved' must be an RFC 3339 UTC time (got "2026-13-01T00:00:00Z"))"},
      {"{" + ok + R"(,"previous":"SEV0"})", R"(page: 'previous' must be SEV1..SEV3 (got "SEV0"))"},
  };
  for (const auto& [text, want] : cases) {
    Result<Page> p = page_from_json(text);
    ASSERT_FALSE(p) << text;
    EXPECT_EQ(p.error().message, want) << text;
  }
  Result<Page> bad = page_from_json("{");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.rfind("page: bad JSON: ", 0), 0u) << bad.error().message;
}

TEST(PageJson, UnknownKeysIgnoredAndNullOptionalsAbsent) {
  Result<Page> p =
      page_from_json(R"({"action":"update","severity":"sev2","future":{"x":[1]},"previous":null,)"
                     R"("resolved":null,"seq":9})");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->action, PageAction::update);
  EXPECT_EQ(p->severity, Severity::sev2);
  EXPECT_EQ(p->previous, std::nullopt);
  EXPECT_EQ(p->resolved, std::nullopt);
  EXPECT_EQ(p->seq, 9u);
}

// --- the outbox ---

class OutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "vigil-outbox-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/state/vigil";  // does not exist yet: the first write creates it
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  std::string path() const { return dir_ + "/outbox.jsonl"; }

  std::vector<std::string> lines() const {
    std::ifstream in(path(), std::ios::binary);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::string contents() const {
    std::ifstream in(path(), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void write_raw(const std::string& bytes) const {
    std::ofstream out(path(), std::ios::binary | std::ios::app);
    out << bytes;
  }

  static Page page(std::string target, std::string incident, PageAction action,
                   Severity severity = Severity::sev2) {
    Page p;
    p.target = std::move(target);
    p.notifier = p.target.substr(0, p.target.find('#'));
    p.incident = std::move(incident);
    p.action = action;
    p.severity = severity;
    p.title = "checkout: HTTP 503";
    p.at = base_time();
    return p;
  }

  static std::vector<std::uint64_t> seqs(const std::vector<const Page*>& pages) {
    std::vector<std::uint64_t> out;
    for (const Page* p : pages) out.push_back(p->seq);
    return out;
  }
  static std::vector<std::uint64_t> seqs(const std::vector<Page>& pages) {
    std::vector<std::uint64_t> out;
    for (const Page& p : pages) out.push_back(p.seq);
    return out;
  }

  std::string root_, dir_;
};

TEST_F(OutboxTest, LoadWithoutFileIsEmptyAndCreatesNothing) {
  Outbox box(dir_, 100);
  Result<Outbox::LoadReport> r = box.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 0u);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_TRUE(r->warnings.empty());
  EXPECT_EQ(box.size(), 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_));
  EXPECT_EQ(box.next_due(), std::nullopt);
  EXPECT_EQ(box.oldest(), std::nullopt);
  EXPECT_EQ(box.path(), dir_ + "/outbox.jsonl");
}

TEST_F(OutboxTest, AddSurvivesRestartWithOrderSeqsAndRefs) {
  {
    Outbox box(dir_, 100);
    ASSERT_TRUE(box.load());
    Page first = full_page();
    first.seq = 999;  // assigned by the outbox, whatever the caller put there
    Result<Outbox::Added> a = box.add({first, page("pd", "inc-1", PageAction::trigger),
                                       page("hook", "inc-2", PageAction::trigger)});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->seqs, (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(lines().size(), 3u);
    Result<Outbox::Added> b = box.add({page("pd", "inc-1", PageAction::resolve)});
    ASSERT_TRUE(b) << b.error().message;
    EXPECT_EQ(b->seqs, (std::vector<std::uint64_t>{4}));
    ASSERT_TRUE(box.set_ref("status", "inc-1", "p0abc"));
    EXPECT_EQ(box.ref("status", "inc-1"), "p0abc");
    EXPECT_EQ(box.ref("status", "inc-2"), "");
    EXPECT_EQ(lines().size(), 5u);
  }
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0027, 0u);  // at most 0750 (the umask may take more)

  Outbox box(dir_, 100);
  Result<Outbox::LoadReport> r = box.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 4u);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(box.size(), 4u);
  EXPECT_EQ(seqs(box.due(base_time())), (std::vector<std::uint64_t>{1, 2, 3}));
  const Page* p1 = box.find(1);
  ASSERT_NE(p1, nullptr);
  EXPECT_EQ(p1->seq, 1u);
  EXPECT_EQ(p1->target, "am#1");
  EXPECT_EQ(p1->evidence, full_page().evidence);
  EXPECT_EQ(p1->resolved, full_page().resolved);
  EXPECT_EQ(p1->attempts, 0);  // delivery state starts over
  ASSERT_NE(box.find(4), nullptr);
  EXPECT_EQ(box.find(4)->action, PageAction::resolve);
  EXPECT_EQ(box.ref("status", "inc-1"), "p0abc");
  Result<Outbox::Added> c = box.add({page("pd", "inc-3", PageAction::trigger)});
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->seqs, (std::vector<std::uint64_t>{5}));
}

TEST_F(OutboxTest, SeqsNeverRepeatAfterTheNewestIsDone) {
  {
    Outbox box(dir_, 100);
    ASSERT_TRUE(box.load());
    ASSERT_TRUE(box.add({page("pd", "a", PageAction::trigger), page("pd", "b", PageAction::trigger),
                         page("pd", "c", PageAction::trigger)}));
    Result<bool> d = box.done(3, "delivered");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_TRUE(*d);
  }
  for (int restart = 0; restart < 2; ++restart) {  // the second load reads a compacted file
    Outbox box(dir_, 100);
    Result<Outbox::LoadReport> r = box.load();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->pages, 2u);
    EXPECT_EQ(lines().size(), 3u);  // two adds and the high-water mark
  }
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  Result<Outbox::Added> a = box.add({page("pd", "d", PageAction::trigger)});
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->seqs, (std::vector<std::uint64_t>{4}));
}

TEST_F(OutboxTest, DoneRemovesDurably) {
  {
    Outbox box(dir_, 100);
    ASSERT_TRUE(box.load());
    ASSERT_TRUE(
        box.add({page("pd", "a", PageAction::trigger), page("pd", "b", PageAction::trigger)}));
    box.begin(1);
    Result<bool> d = box.done(1, "delivered");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_TRUE(*d);
    EXPECT_EQ(box.find(1), nullptr);
    EXPECT_EQ(box.size(), 1u);
    ASSERT_EQ(lines().size(), 3u);
    EXPECT_EQ(lines()[2], R"({"v":1,"op":"done","seq":1,"why":"delivered"})");
    // Unknown or already done: success, nothing written.
    Result<bool> again = box.done(1, "delivered");
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
    Result<bool> unknown = box.done(99, "delivered");
    ASSERT_TRUE(unknown);
    EXPECT_FALSE(*unknown);
    EXPECT_EQ(lines().size(), 3u);
  }
  Outbox box(dir_, 100);
  Result<Outbox::LoadReport> r = box.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 1u);
  EXPECT_EQ(box.find(1), nullptr);
  ASSERT_NE(box.find(2), nullptr);
  EXPECT_EQ(box.find(2)->incident, "b");
}

TEST_F(OutboxTest, TornLastLineIsSkippedAndTheNextAddStartsAFreshLine) {
  const std::string fragment = R"({"v":1,"op":"add","page":{"seq":2,"tar)";
  {
    Outbox box(dir_, 100);
    ASSERT_TRUE(box.load());
    ASSERT_TRUE(box.add({page("pd", "a", PageAction::trigger)}));
    write_raw(fragment);  // a crash in the middle of the next write
  }
  {
    Outbox box(dir_, 100);
    Result<Outbox::LoadReport> r = box.load();
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->pages, 1u);
    EXPECT_EQ(r->skipped, 1);
    ASSERT_EQ(r->warnings.size(), 1u);
    EXPECT_EQ(
        r->warnings[0].rfind(path() + ":2: torn last line (no newline), skipped: bad JSON", 0), 0u)
        << r->warnings[0];
    EXPECT_EQ(lines().size(), 1u);  // compacted at load: the fragment is gone

    // Torn while running (no load in between): the next add must not glue onto it.
    write_raw(fragment);
    Result<Outbox::Added> a = box.add({page("pd", "b", PageAction::trigger)});
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->seqs, (std::vector<std::uint64_t>{2}));
    const std::vector<std::string> l = lines();
    ASSERT_EQ(l.size(), 3u);
    EXPECT_EQ(l[1], fragment);
    EXPECT_EQ(l[2].rfind(R"({"v":1,"op":"add","page":{"seq":2,)", 0), 0u) << l[2];
    EXPECT_EQ(contents().back(), '\n');
  }
  Outbox box(dir_, 100);
  Result<Outbox::LoadReport> r = box.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 2u);
  EXPECT_EQ(r->skipped, 1);
  ASSERT_EQ(r->warnings.size(), 1u);
  EXPECT_EQ(r->warnings[0].rfind(path() + ":2: unreadable line, skipped: bad JSON", 0), 0u)
      << r->warnings[0];
  EXPECT_EQ(seqs(box.due(base_time())), (std::vector<std::uint64_t>{1, 2}));
}

TEST_F(OutboxTest, BadLinesAnywhereAreSkippedWithTheirLineNumbers) {
  std::filesystem::create_directories(dir_);
  Page a = page("pd", "a", PageAction::trigger);
  a.seq = 3;
  Page b = page("pd", "b", PageAction::trigger);
  b.seq = 5;
  write_raw(R"({"v":1,"op":"add","page":)" + page_to_json(a) + "}\n");
  write_raw("garbage\n");
  write_raw("\n");  // blank: ignored, but counted as a line
  write_raw(R"({"v":2,"op":"add","page":{"seq":4}})"
            "\n");
  write_raw(R"({"v":1,"op":"launch"})"
            "\n");
  write_raw(R"({"v":1,"op":"add","page":{"seq":6,"action":"trigger","severity":"SEV7"}})"
            "\n");
  write_raw(R"({"op":"done","seq":3})"
            "\n");
  write_raw(R"({"v":1,"op":"add","page":)" + page_to_json(b) + "}\n");

  Outbox box(dir_, 100);
  Result<Outbox::LoadReport> r = box.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 2u);
  EXPECT_EQ(r->skipped, 5);
  ASSERT_EQ(r->warnings.size(), 5u);
  EXPECT_EQ(r->warnings[0].rfind(path() + ":2: unreadable line, skipped: bad JSON: ", 0), 0u)
      << r->warnings[0];
  EXPECT_EQ(r->warnings[1],
            path() + ":4: record version 2 is newer than this vigil's (1), skipped");
  EXPECT_EQ(r->warnings[2], path() + ":5: unreadable line, skipped: unknown op \"launch\"");
  EXPECT_EQ(r->warnings[3], path() +
                                ":6: unreadable line, skipped: page: 'severity' must be "
                                "SEV1..SEV3 (got \"SEV7\")");
  EXPECT_EQ(r->warnings[4], path() + ":7: unreadable line, skipped: no \"v\"");
  EXPECT_NE(box.find(3), nullptr);
  EXPECT_NE(box.find(5), nullptr);
  EXPECT_EQ(lines().size(), 2u);  // compacted
  Result<Outbox::Added> added = box.add({page("pd", "c", PageAction::trigger)});
  ASSERT_TRUE(added);
  EXPECT_EQ(added->seqs, (std::vector<std::uint64_t>{6}));  // max seen (5) + 1
}

TEST_F(OutboxTest, DueGivesOnlyIdleDueHeadsInSeqOrder) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  const TimePoint now = base_time();
  ASSERT_TRUE(box.add({
      page("pd", "i1", PageAction::trigger),    // 1
      page("pd", "i1", PageAction::resolve),    // 2: behind 1
      page("pd", "i2", PageAction::trigger),    // 3
      page("hook", "i1", PageAction::trigger),  // 4: same incident, other target
      page("pd", "", PageAction::change),       // 5: no incident: one group per target
      page("pd", "", PageAction::change),       // 6: behind 5
  }));
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{1, 3, 4, 5}));
  EXPECT_EQ(box.next_due(), TimePoint{});

  box.begin(1);  // in flight: its group waits, 2 is not due either
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{3, 4, 5}));

  box.retry(3, now + 10s, "HTTP 503");
  ASSERT_NE(box.find(3), nullptr);
  EXPECT_EQ(box.find(3)->attempts, 1);
  EXPECT_EQ(box.find(3)->next_try, now + 10s);
  EXPECT_EQ(box.find(3)->last_error, "HTTP 503");
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(seqs(box.due(now + 9999ms)), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(seqs(box.due(now + 10s)), (std::vector<std::uint64_t>{3, 4, 5}));

  box.begin(4);
  box.begin(5);
  // Heads only: 2 and 6 wait behind pages in flight, so only 3's next_try counts.
  EXPECT_EQ(box.next_due(), now + 10s);

  box.retry(1, now + 3s, "timeout");  // back from flight, waiting
  EXPECT_EQ(box.find(1)->attempts, 1);
  EXPECT_EQ(box.next_due(), now + 3s);
  EXPECT_EQ(seqs(box.due(now + 3s)), (std::vector<std::uint64_t>{1}));

  ASSERT_TRUE(box.done(1, "delivered"));
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{2}));
  ASSERT_TRUE(box.done(5, "delivered"));
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{2, 6}));

  box.begin(2);
  box.begin(3);
  box.begin(6);
  EXPECT_EQ(box.next_due(), std::nullopt);  // everything in flight
  EXPECT_TRUE(box.due(now + 1h).empty());
}

TEST_F(OutboxTest, EventTargetsCoalesceOnlyUpdates) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("pd", "i1", PageAction::trigger),                 // 1
                       page("pd", "i1", PageAction::update),                  // 2
                       page("pd", "i2", PageAction::update)}));               // 3: other incident
  Result<Outbox::Added> a = box.add({page("pd", "i1", PageAction::update)});  // 4
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->superseded, 1u);
  EXPECT_EQ(box.find(2), nullptr);
  EXPECT_NE(box.find(1), nullptr);
  EXPECT_NE(box.find(3), nullptr);
  EXPECT_EQ(lines().back(), R"({"v":1,"op":"done","seq":2,"why":"superseded"})");

  // Never a trigger, acknowledge, change or resolve, and no update is replaced by them.
  Result<Outbox::Added> b = box.add({page("pd", "i1", PageAction::acknowledge),  // 5
                                     page("pd", "i1", PageAction::change),       // 6
                                     page("pd", "i1", PageAction::resolve),      // 7
                                     page("pd", "i1", PageAction::trigger)});    // 8
  ASSERT_TRUE(b);
  EXPECT_EQ(b->superseded, 0u);
  Result<Outbox::Added> c = box.add({page("pd", "i1", PageAction::update)});  // 9
  ASSERT_TRUE(c);
  EXPECT_EQ(c->superseded, 1u);  // 4 only
  EXPECT_EQ(box.find(4), nullptr);
  for (std::uint64_t s : {1, 3, 5, 6, 7, 8, 9}) EXPECT_NE(box.find(s), nullptr) << s;

  // In flight: kept. Within one batch: the later update wins.
  box.begin(9);
  Result<Outbox::Added> d = box.add({page("pd", "i1", PageAction::update),    // 10
                                     page("pd", "i1", PageAction::update)});  // 11
  ASSERT_TRUE(d);
  EXPECT_EQ(d->seqs, (std::vector<std::uint64_t>{10, 11}));
  EXPECT_EQ(d->superseded, 1u);
  EXPECT_NE(box.find(9), nullptr);
  EXPECT_EQ(box.find(10), nullptr);
  EXPECT_NE(box.find(11), nullptr);
  EXPECT_EQ(box.size(), 8u);

  Outbox reloaded(dir_, 100);
  Result<Outbox::LoadReport> r = reloaded.load();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pages, 8u);
  EXPECT_EQ(reloaded.find(10), nullptr);
}

TEST_F(OutboxTest, AlertmanagerTargetsKeepOnlyTheNewestSnapshot) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("am#0", "i1", PageAction::trigger),     // 1
                       page("am#0", "i1", PageAction::update),      // 2: replaces 1
                       page("am#1", "i1", PageAction::trigger),     // 3: the other peer
                       page("am#0", "i2", PageAction::trigger)}));  // 4: other incident
  EXPECT_EQ(box.find(1), nullptr);
  box.begin(2);
  Result<Outbox::Added> a = box.add({page("am#0", "i1", PageAction::resolve)});  // 5
  ASSERT_TRUE(a);
  EXPECT_EQ(a->superseded, 0u);  // 2 is in flight
  // A resolve never replaces the firing page queued before it: an incident that began and
  // ended while the peer was unreachable still reaches it as fired, then resolved.
  Result<Outbox::Added> b = box.add({page("am#1", "i1", PageAction::resolve)});  // 6
  ASSERT_TRUE(b);
  EXPECT_EQ(b->superseded, 0u);
  for (std::uint64_t s : {2, 3, 4, 5, 6}) EXPECT_NE(box.find(s), nullptr) << s;
  EXPECT_EQ(box.size(), 5u);
  EXPECT_EQ(seqs(box.due(base_time())), (std::vector<std::uint64_t>{3, 4}));
  ASSERT_TRUE(box.done(2, "delivered"));
  ASSERT_TRUE(box.done(3, "delivered"));
  EXPECT_EQ(seqs(box.due(base_time())), (std::vector<std::uint64_t>{4, 5, 6}));
}

TEST_F(OutboxTest, AlertmanagerReplacementKeepsTheOldSeverityToResolve) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  Page raised = page("am#0", "i1", PageAction::update, Severity::sev1);
  raised.previous = Severity::sev2;  // resolves the SEV2 alert in the same request
  ASSERT_TRUE(box.add({raised}));    // 1
  ASSERT_TRUE(box.add({page("am#0", "i1", PageAction::update, Severity::sev1)}));  // 2
  EXPECT_EQ(box.find(1), nullptr);
  ASSERT_NE(box.find(2), nullptr);
  EXPECT_EQ(box.find(2)->previous, Severity::sev2);
}

TEST_F(OutboxTest, BoundDropsUpdatesFirstAndNeverResolvesOrAcks) {
  Outbox box(dir_, 3);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("pd", "a", PageAction::resolve, Severity::sev3),      // 1
                       page("pd", "b", PageAction::trigger, Severity::sev3),      // 2
                       page("pd", "c", PageAction::update, Severity::sev3)}));    // 3
  Result<Outbox::Added> a = box.add({page("pd", "d", PageAction::acknowledge)});  // 4
  ASSERT_TRUE(a);
  EXPECT_EQ(seqs(a->dropped), (std::vector<std::uint64_t>{3}));  // the update, though newer
  Result<Outbox::Added> b = box.add({page("pd", "e", PageAction::resolve)});  // 5
  ASSERT_TRUE(b);
  EXPECT_EQ(seqs(b->dropped), (std::vector<std::uint64_t>{2}));               // then the trigger
  Result<Outbox::Added> c = box.add({page("pd", "f", PageAction::resolve)});  // 6
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->dropped.empty());  // resolves and acks only: past max rather than lose one
  EXPECT_EQ(box.size(), 4u);
}

TEST_F(OutboxTest, BoundDropsSev3ThenSev2NeverSev1) {
  Outbox box(dir_, 3);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("pd", "a", PageAction::trigger, Severity::sev3),                  // 1
                       page("pd", "b", PageAction::trigger, Severity::sev2),                  // 2
                       page("pd", "c", PageAction::trigger, Severity::sev1)}));               // 3
  Result<Outbox::Added> a = box.add({page("pd", "d", PageAction::trigger, Severity::sev3)});  // 4
  ASSERT_TRUE(a);
  EXPECT_EQ(seqs(a->dropped), (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(a->dropped[0].incident, "a");
  EXPECT_EQ(lines().back(), R"({"v":1,"op":"done","seq":1,"why":"dropped: outbox full"})");
  Result<Outbox::Added> b = box.add({page("pd", "e", PageAction::trigger, Severity::sev1)});  // 5
  ASSERT_TRUE(b);
  EXPECT_EQ(seqs(b->dropped), (std::vector<std::uint64_t>{4}));
  Result<Outbox::Added> c = box.add({page("pd", "f", PageAction::trigger, Severity::sev1)});  // 6
  ASSERT_TRUE(c);
  EXPECT_EQ(seqs(c->dropped), (std::vector<std::uint64_t>{2}));
  Result<Outbox::Added> d = box.add({page("pd", "g", PageAction::trigger, Severity::sev1)});  // 7
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->dropped.empty());
  EXPECT_EQ(box.size(), 4u);  // past max rather than lose a SEV1
  EXPECT_EQ(box.size(Severity::sev1), 4u);
  EXPECT_EQ(box.size(Severity::sev2), 0u);
  EXPECT_EQ(box.size(Severity::sev3), 0u);
  EXPECT_EQ(box.dropped_total(), 3u);
  // A new SEV3 with the outbox full of SEV1: it is the one dropped.
  Result<Outbox::Added> e = box.add({page("pd", "h", PageAction::trigger, Severity::sev3)});  // 8
  ASSERT_TRUE(e);
  EXPECT_EQ(e->seqs, (std::vector<std::uint64_t>{8}));
  EXPECT_EQ(seqs(e->dropped), (std::vector<std::uint64_t>{8}));
  EXPECT_EQ(box.find(8), nullptr);
  EXPECT_EQ(box.dropped_total(), 4u);

  Outbox reloaded(dir_, 3);
  Result<Outbox::LoadReport> r = reloaded.load();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->pages, 4u);
  EXPECT_EQ(reloaded.size(Severity::sev1), 4u);
}

TEST_F(OutboxTest, BoundNeverDropsAPageInFlight) {
  Outbox box(dir_, 2);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("pd", "a", PageAction::trigger, Severity::sev3),     // 1
                       page("pd", "b", PageAction::trigger, Severity::sev3)}));  // 2
  box.begin(1);
  Result<Outbox::Added> a = box.add({page("pd", "c", PageAction::trigger, Severity::sev3),    // 3
                                     page("pd", "d", PageAction::trigger, Severity::sev2)});  // 4
  ASSERT_TRUE(a);
  EXPECT_EQ(seqs(a->dropped), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_NE(box.find(1), nullptr);
  EXPECT_NE(box.find(4), nullptr);
  EXPECT_EQ(box.size(), 2u);
  EXPECT_EQ(box.dropped_total(), 2u);
}

TEST_F(OutboxTest, CompactionShrinksTheFileAndKeepsTheContent) {
  Outbox box(dir_, 1000);
  ASSERT_TRUE(box.load());
  std::vector<Page> batch;
  for (int i = 0; i < 150; ++i) {
    Page p = page("pd", "inc-" + std::to_string(i), PageAction::trigger);
    p.summary = "page " + std::to_string(i);
    batch.push_back(p);
  }
  ASSERT_TRUE(box.add(batch));
  ASSERT_TRUE(box.set_ref("status", "inc-140", "abc123"));
  ASSERT_TRUE(box.set_ref("status", "inc-141", "gone"));
  ASSERT_TRUE(box.forget_ref("status", "inc-141"));
  EXPECT_EQ(lines().size(), 153u);
  // Dead records: 2 per done + 2 for the forgotten ref; live: pages + 1 ref. Compaction when
  // dead > live + 100: 2k + 2 > (150 - k) + 1 + 100, first at k = 84.
  for (std::uint64_t s = 1; s <= 83; ++s) ASSERT_TRUE(box.done(s, "delivered"));
  EXPECT_EQ(lines().size(), 153u + 83u);
  ASSERT_TRUE(box.done(84, "delivered"));
  EXPECT_EQ(lines().size(), 66u + 1u);  // the live adds and the ref
  EXPECT_FALSE(std::filesystem::exists(path() + ".tmp"));
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(box.size(), 66u);
  EXPECT_EQ(box.ref("status", "inc-140"), "abc123");
  ASSERT_TRUE(box.add({page("pd", "late", PageAction::trigger)}));  // appends after compaction
  EXPECT_EQ(lines().size(), 68u);

  Outbox reloaded(dir_, 1000);
  Result<Outbox::LoadReport> r = reloaded.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, 67u);
  EXPECT_EQ(r->skipped, 0);
  EXPECT_EQ(lines().size(), 68u);
  EXPECT_EQ(reloaded.find(84), nullptr);
  ASSERT_NE(reloaded.find(85), nullptr);
  EXPECT_EQ(reloaded.find(85)->summary, "page 84");
  EXPECT_EQ(reloaded.find(85)->incident, "inc-84");
  ASSERT_NE(reloaded.find(151), nullptr);
  EXPECT_EQ(reloaded.find(151)->incident, "late");
  EXPECT_EQ(reloaded.ref("status", "inc-140"), "abc123");
  EXPECT_EQ(reloaded.ref("status", "inc-141"), "");
  EXPECT_EQ(seqs(reloaded.due(base_time())).front(), 85u);
}

TEST_F(OutboxTest, RefsAreSetReplacedAndForgottenDurably) {
  {
    Outbox box(dir_, 100);
    ASSERT_TRUE(box.load());
    ASSERT_TRUE(box.set_ref("status", "i1", "one"));
    ASSERT_TRUE(box.set_ref("status", "i1", "one"));  // unchanged: not written again
    EXPECT_EQ(lines().size(), 1u);
    ASSERT_TRUE(box.set_ref("status", "i1", "two"));
    ASSERT_TRUE(box.set_ref("status", "i2", "three"));
    ASSERT_TRUE(box.forget_ref("status", "i2"));
    ASSERT_TRUE(box.forget_ref("status", "i9"));  // unknown: nothing to write
    EXPECT_EQ(lines().size(), 4u);
    EXPECT_EQ(lines().back(), R"({"v":1,"op":"ref","target":"status","incident":"i2","id":""})");
  }
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  EXPECT_EQ(box.ref("status", "i1"), "two");
  EXPECT_EQ(box.ref("status", "i2"), "");
  EXPECT_EQ(lines().size(), 1u);
}

// A full or broken disk must not silence the pager: pages are queued in memory (and said to be),
// sent as usual, and the whole queue is written once the disk takes it again.
TEST_F(OutboxTest, FailedWritesKeepPagesInMemoryUntilTheDiskTakesThem) {
  // Runs as root too: a directory under a regular file cannot be created by anyone.
  const std::string file = root_ + "/file";
  { std::ofstream(file) << "x"; }
  Outbox nowhere(file + "/state", 100);
  Result<Outbox::LoadReport> l = nowhere.load();
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().message, "cannot read " + file + "/state/outbox.jsonl: Not a directory");
  Result<Outbox::Added> a = nowhere.add({page("pd", "a", PageAction::trigger)});
  ASSERT_TRUE(a);
  EXPECT_EQ(a->not_durable, "cannot open " + file + "/state/outbox.jsonl: Not a directory");
  EXPECT_EQ(a->seqs, (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(nowhere.unsaved());
  EXPECT_EQ(seqs(nowhere.due(base_time())), (std::vector<std::uint64_t>{1}));  // still sent
  ASSERT_FALSE(nowhere.persist());
  ASSERT_FALSE(nowhere.set_ref("status", "a", "id"));
  EXPECT_EQ(nowhere.ref("status", "a"), "");

  // The outbox file replaced by a directory: writes fail, the queue goes on in memory.
  Outbox box(dir_, 1);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(box.add({page("pd", "a", PageAction::update, Severity::sev3)}));  // 1
  ASSERT_TRUE(box.set_ref("status", "a", "id1"));
  EXPECT_FALSE(box.unsaved());
  std::filesystem::remove(path());
  std::filesystem::create_directory(path());
  const std::string why = "cannot open " + path() + ": Is a directory";

  // Supersedes 1 and, for the bound of 1, drops the older SEV3 trigger: in memory, as always.
  Result<Outbox::Added> b = box.add({page("pd", "a", PageAction::update, Severity::sev3),
                                     page("pd", "b", PageAction::trigger, Severity::sev3)});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->not_durable, why);
  EXPECT_EQ(b->seqs, (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(box.find(1), nullptr);
  EXPECT_EQ(box.size(), 1u);
  EXPECT_TRUE(box.unsaved());

  Result<bool> s = box.set_ref("status", "a", "id2");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message, why);
  EXPECT_EQ(box.ref("status", "a"), "id1");

  // A delivered page whose record cannot be written is forgotten in memory all the same.
  const std::uint64_t queued = seqs(box.due(base_time())).at(0);
  Result<bool> d = box.done(queued, "delivered");
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message, why);
  EXPECT_EQ(box.find(queued), nullptr);
  Result<Outbox::Added> c = box.add({page("pd", "c", PageAction::trigger, Severity::sev1)});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->seqs, (std::vector<std::uint64_t>{4}));  // seqs never reused
  EXPECT_FALSE(c->not_durable.empty());

  // The disk takes writes again: persist() writes exactly what memory holds.
  std::filesystem::remove(path());
  ASSERT_TRUE(box.persist());
  EXPECT_FALSE(box.unsaved());
  Outbox reloaded(dir_, 10);
  Result<Outbox::LoadReport> r = reloaded.load();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->pages, box.size());
  ASSERT_NE(reloaded.find(4), nullptr);
  EXPECT_EQ(reloaded.find(4)->incident, "c");
  EXPECT_EQ(reloaded.find(queued), nullptr);
  EXPECT_EQ(reloaded.ref("status", "a"), "id1");
  Result<Outbox::Added> e = reloaded.add({page("pd", "e", PageAction::trigger)});
  ASSERT_TRUE(e);
  EXPECT_EQ(e->seqs, (std::vector<std::uint64_t>{5}));
}

// After an outage the first page (or heartbeat) through wakes every page to that target,
// instead of each waiting out its own backoff; other targets and pages in flight are left alone.
TEST_F(OutboxTest, WakeMakesAWaitingTargetsPagesDueNow) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  ASSERT_TRUE(
      box.add({page("am#0", "a", PageAction::trigger), page("am#0", "b", PageAction::trigger),
               page("am#0", "c", PageAction::trigger), page("am#1", "a", PageAction::trigger)}));
  const TimePoint now = base_time();
  for (std::uint64_t seq : {1, 2, 4}) {
    box.begin(seq);
    box.retry(seq, now + std::chrono::minutes(5), "connect timeout");
  }
  box.begin(3);  // in flight
  EXPECT_TRUE(box.due(now).empty());
  EXPECT_EQ(box.wake("am#0", now), 2u);
  EXPECT_EQ(seqs(box.due(now)), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(box.wake("am#0", now), 0u) << "already due";
  EXPECT_EQ(box.find(4)->next_try, now + std::chrono::minutes(5)) << "another peer's queue";
}

TEST_F(OutboxTest, OldestIsTheEarliestQueuedPage) {
  Outbox box(dir_, 100);
  ASSERT_TRUE(box.load());
  Page late = page("pd", "a", PageAction::trigger);
  late.at = base_time() + 1min;
  Page early = page("pd", "b", PageAction::trigger);
  early.at = base_time();
  ASSERT_TRUE(box.add({late, early}));
  EXPECT_EQ(box.oldest(), base_time());
  ASSERT_TRUE(box.done(2, "delivered"));
  EXPECT_EQ(box.oldest(), base_time() + 1min);
  ASSERT_TRUE(box.done(1, "delivered"));
  EXPECT_EQ(box.oldest(), std::nullopt);
}

}  // namespace
}  // namespace vigil
