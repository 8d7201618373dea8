// Paging, the component (notify/paging.h), with a fake clock and a fake HTTP sender: what it
// queues, sends, records and retries, turn by turn. The real IncidentBook, pager and outbox (in a
// temporary state directory); requests are answered by the test, nothing goes on the network.
#include "notify/paging.h"
#include "agent/load_config.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace vigil {
namespace {

using namespace std::chrono_literals;

constexpr const char* kConfig = R"(
[agent]
state_dir = "STATE"
hostname = "web1"

[paging]
heartbeat_every = "1m"

[[notify]]
kind = "alertmanager"
urls = ["http://127.0.0.1:9093", "http://127.0.0.2:9093/"]
heartbeat = true

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:9000/hook"
max_per_minute = 1

[[check]]
name = "app"
probe = "http"
url = "http://127.0.0.1:8080/health"

[[check]]
name = "api"
probe = "http"
url = "http://127.0.0.1:8081/health"
)";

struct Sent {
  sys::HttpRequest request;
  sys::HttpClient::Callback done;
};

class PagingTest : public ::testing::Test {
 protected:
  PagingTest() : book(TriageSettings{"web1", 1h}) {
    std::string tmpl = ::testing::TempDir() + "vigil-paging-XXXXXX";
    EXPECT_NE(::mkdtemp(tmpl.data()), nullptr);
    state = tmpl;
    std::string text = kConfig;
    text.replace(text.find("STATE"), 5, state);
    LoadResult r = parse_config(text, "test.toml");
    EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].to_string());
    cfg = *r.config;
  }
  ~PagingTest() override { std::filesystem::remove_all(state); }

  std::unique_ptr<Paging> make() {
    Paging::Hooks h;
    // Like the daemon's scribe: what is written is also handed back to paging.
    h.record = [this](std::vector<IncidentBook::Change> changes) {
      for (const auto& c : changes) recorded.push_back(c.event);
      paging->recorded(changes);
    };
    h.send = [this](const sys::HttpRequest& request, sys::HttpClient::Callback done) {
      sent.push_back(Sent{request, std::move(done)});
      return static_cast<sys::HttpClient::RequestId>(sent.size());
    };
    h.close_circuit = [this](const std::string& key) {
      closed_circuits.push_back(key);
      return false;
    };
    h.clock = [this] { return now; };
    return std::make_unique<Paging>(book, cfg, std::move(h));
  }
  Paging& p() {
    if (!paging) {
      paging = make();
      paging->load(now);
      paging->reconcile();
    }
    return *paging;
  }

  // Fires `check` now, as the daemon does: the changes are recorded, then the turn ends.
  std::string fire(const std::string& check, Severity sev = Severity::sev1) {
    Finding f;
    f.check = check;
    f.kind = Finding::Kind::firing;
    f.severity = sev;
    f.at = now;
    f.since = now;
    f.reason = "HTTP 503";
    f.observation.check = check;
    f.observation.failure = FailureKind::http_5xx;
    std::vector<IncidentBook::Change> changes = book.on_finding(*cfg.find_check(check), f);
    std::string id;
    for (const auto& c : changes) id = c.incident;
    p().recorded(changes);
    return id;
  }

  static sys::HttpResponse answer(long status, std::string body = "") {
    sys::HttpResponse r;
    r.transport = FailureKind::none;
    r.status = status;
    r.body = std::move(body);
    return r;
  }
  // Answers sent[i] (each request once).
  void reply(std::size_t i, sys::HttpResponse r) {
    ASSERT_LT(i, sent.size());
    auto done = std::move(sent[i].done);
    ASSERT_TRUE(done) << "request " << i << " answered twice";
    sent[i].done = nullptr;
    done(std::move(r));
  }
  std::vector<std::string> urls() const {
    std::vector<std::string> out;
    for (const Sent& s : sent) out.push_back(s.request.url);
    return out;
  }
  bool recorded_text(const std::string& text) const {
    for (const TimelineEvent& e : recorded) {
      if (e.text == text) return true;
    }
    return false;
  }

  std::string state;
  Config cfg;
  IncidentBook book;
  TimePoint now = TimePoint{} + 1'700'000'000s;
  std::vector<TimelineEvent> recorded;
  std::vector<Sent> sent;
  std::vector<std::string> closed_circuits;
  std::unique_ptr<Paging> paging;
};

TEST_F(PagingTest, AFindingIsPagedAtTheEndOfItsTurnToEveryPeerAndTheWebhook) {
  fire("app");
  EXPECT_TRUE(p().pending());
  EXPECT_TRUE(sent.empty());  // nothing before the turn ends
  p().drain(now);
  EXPECT_FALSE(p().pending());
  EXPECT_EQ(urls(), (std::vector<std::string>{"http://127.0.0.1:9093/api/v2/alerts",
                                              "http://127.0.0.2:9093/api/v2/alerts",
                                              "http://127.0.0.1:9000/hook"}));
  EXPECT_EQ(sent[0].request.method, HttpMethod::post);
  EXPECT_NE(sent[0].request.body.find("\"alertname\":\"VigilIncident\""), std::string::npos);
  // Two queued-page events (one per notifier), written through the scribe.
  int page_events = 0;
  for (const TimelineEvent& e : recorded) page_events += e.type == TimelineEvent::Type::page;
  EXPECT_EQ(page_events, 2);
  const nlohmann::json j = p().json(now);
  EXPECT_EQ(j["queued"], 3);
  EXPECT_EQ(j["in_flight"], 3);
}

TEST_F(PagingTest, PageEventsCallForNoFurtherPages) {
  fire("app");
  p().drain(now);
  // The page events went back through recorded() (the scribe hook above): nothing new waits.
  EXPECT_FALSE(p().pending());
  const std::size_t n = sent.size();
  p().drain(now);
  EXPECT_EQ(sent.size(), n);
}

TEST_F(PagingTest, NothingIsPlannedBeforeTheOutboxIsReconciled) {
  paging = make();
  paging->load(now);
  fire("app");
  paging->drain(now);
  paging->page_all(now);
  EXPECT_TRUE(sent.empty());
  EXPECT_TRUE(recorded.empty());
  paging->reconcile();
  paging->page_all(now);
  EXPECT_EQ(sent.size(), 3u);
}

TEST_F(PagingTest, ADeliveredPageIsRecordedAndLeavesTheOutbox) {
  fire("app");
  p().drain(now);
  now += 2s;
  for (std::size_t i = 0; i < 3; ++i) reply(i, answer(200));
  EXPECT_TRUE(recorded_text("page delivered to alertmanager#0 (trigger)"));
  EXPECT_TRUE(recorded_text("page delivered to hook (trigger)"));
  const nlohmann::json j = p().json(now);
  EXPECT_EQ(j["queued"], 0);
  EXPECT_EQ(j["in_flight"], 0);
  EXPECT_EQ(j["delivered_total"], 3);
  EXPECT_EQ(p().counts().at({"alertmanager", "delivered"}), 2u);
}

TEST_F(PagingTest, ARefusedPageIsNotRetriedAndAFailedOneIsRetriedAfterItsBackoff) {
  fire("app");
  p().drain(now);
  reply(0, answer(400, "bad alert"));
  reply(1, answer(503));
  EXPECT_TRUE(p().json(now)["failed_total"] == 1);
  bool refused = false;
  for (const TimelineEvent& e : recorded) {
    refused |= e.text.rfind("page to alertmanager#0 refused, not retried: HTTP 400", 0) == 0;
  }
  EXPECT_TRUE(refused);
  // am#1 waits its backoff (0.5-1 s for the first failure), then goes again; am#0 never does.
  const std::size_t n = sent.size();
  p().deliver(now);
  EXPECT_EQ(sent.size(), n);
  now += 1s;
  p().deliver(now);
  ASSERT_EQ(sent.size(), n + 1);
  EXPECT_EQ(sent.back().request.url, "http://127.0.0.2:9093/api/v2/alerts");
}

TEST_F(PagingTest, ATargetsRateLimitDelaysPagesAndNeverDropsThem) {
  fire("app");
  fire("api");
  p().drain(now);
  // The webhook takes one page a minute: the second incident's waits.
  int to_hook = 0;
  for (const std::string& u : urls()) to_hook += u == "http://127.0.0.1:9000/hook";
  EXPECT_EQ(to_hook, 1);
  p().deliver(now + 59s);
  to_hook = 0;
  for (const std::string& u : urls()) to_hook += u == "http://127.0.0.1:9000/hook";
  EXPECT_EQ(to_hook, 1);
  p().deliver(now + 60s);
  to_hook = 0;
  for (const std::string& u : urls()) to_hook += u == "http://127.0.0.1:9000/hook";
  EXPECT_EQ(to_hook, 2);
}

TEST_F(PagingTest, AnAlertmanagerSilenceAcknowledgesTheIncident) {
  const std::string id = fire("app");
  p().drain(now);
  sent.clear();
  p().poll_silences(now);
  ASSERT_EQ(sent.size(), 1u);  // one peer is asked; silences are gossiped
  EXPECT_NE(sent[0].request.url.find("/api/v2/alerts?active=false&silenced=true"),
            std::string::npos);
  EXPECT_NE(sent[0].request.url.find("host%3D%22web1%22"), std::string::npos);
  reply(0, answer(200,
                  R"([{"labels":{"incident":")" + id + R"("},"status":{"silencedBy":["s-1"]}}])"));
  EXPECT_TRUE(recorded_text("acknowledged by Alertmanager silence s-1"));
  EXPECT_EQ(closed_circuits, std::vector<std::string>{book.find(id)->dedupe_key});
  // Not asked again before the next poll is due.
  p().poll_silences(now + 1s);
  EXPECT_EQ(sent.size(), 1u);
}

TEST_F(PagingTest, HostileSilenceAnswersAreIgnored) {
  const std::string id = fire("app");
  p().drain(now);
  sent.clear();
  p().poll_silences(now);
  reply(0, answer(200, R"([{"labels":{"incident":7},"status":{"silencedBy":["s"]}},
                           {"labels":{"incident":"no-such"},"status":{"silencedBy":["s"]}},
                           {"labels":"x"}, 3, {"labels":{"incident":")" +
                           id + R"("},"status":{"silencedBy":[]}}])"));
  EXPECT_TRUE(closed_circuits.empty());
  EXPECT_FALSE(paged_state(*book.find(id)).acknowledged);
}

TEST_F(PagingTest, HeartbeatsGoToEveryPeerOncePerPeriod) {
  p().send_heartbeats(now);
  EXPECT_EQ(urls(), (std::vector<std::string>{"http://127.0.0.1:9093/api/v2/alerts",
                                              "http://127.0.0.2:9093/api/v2/alerts"}));
  EXPECT_NE(sent[0].request.body.find("VigilHeartbeat"), std::string::npos);
  p().send_heartbeats(now + 59s);
  EXPECT_EQ(sent.size(), 2u);
  p().send_heartbeats(now + 60s);
  EXPECT_EQ(sent.size(), 4u);
}

TEST_F(PagingTest, QueuedPagesSurviveARestartAndAreNotPlannedAgain) {
  fire("app");
  p().drain(now);
  paging.reset();  // vigil stops with three pages unanswered
  sent.clear();
  recorded.clear();
  paging = make();
  paging->load(now);
  paging->reconcile();
  EXPECT_EQ(paging->json(now)["queued"], 3);
  paging->page_all(now);  // the timeline says what was queued: no second trigger is planned
  EXPECT_TRUE(recorded.empty());
  paging->deliver(now);
  EXPECT_EQ(sent.size(), 3u);
}

}  // namespace
}  // namespace vigil
