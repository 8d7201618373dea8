// judge_http and body_head: the pure part of the HTTP probe, fed with hand-made responses.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>

#include "agent/config/config.h"
#include "agent/load_config.h"
#include "agent/sys/http.h"
#include "probes/http.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;

sys::HttpResponse Answer(long status, std::string body = "",
                         milliseconds total = milliseconds(12)) {
  sys::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.total = total;
  return r;
}

sys::HttpResponse TransportFailure(FailureKind kind, std::string error) {
  sys::HttpResponse r;
  r.transport = kind;
  r.error = std::move(error);
  return r;
}

// The HTTP settings of a one-check config with `extra` TOML lines, compiled as the agent does
// (so body_regex comes with its RE2).
HttpSettings Settings(std::string_view extra) {
  const std::string text =
      "[[check]]\nname = \"web\"\nprobe = \"http\"\n"
      "url = \"http://127.0.0.1:8080/\"\n" +
      std::string(extra) + "\n";
  const LoadResult r = parse_config(text, "vigil.toml");
  for (const ConfigError& e : r.errors) ADD_FAILURE() << e.to_string();
  if (!r.config || r.config->checks.size() != 1 || r.config->checks[0].http() == nullptr) {
    ADD_FAILURE() << "no HTTP check in:\n" << text;
    return HttpSettings{};
  }
  return *r.config->checks[0].http();
}

// ---------------------------------------------------------------------------------------------
// Transport failures

TEST(JudgeHttp, TransportFailurePassesThroughWithWords) {
  const HttpSettings s;
  struct Case {
    FailureKind kind;
    const char* words;
  };
  for (const Case& c :
       {Case{FailureKind::refused, "connection refused"}, Case{FailureKind::timeout, "timed out"},
        Case{FailureKind::reset, "connection reset"},
        Case{FailureKind::dns, "name did not resolve"}, Case{FailureKind::tls, "TLS failed"},
        Case{FailureKind::protocol, "invalid HTTP answer"},
        Case{FailureKind::error, "request failed"}}) {
    const HttpVerdict v = judge_http(s, TransportFailure(c.kind, "curl says why"));
    EXPECT_EQ(v.failure, c.kind) << c.words;
    EXPECT_EQ(v.summary, std::string(c.words) + ": curl says why");
  }
}

TEST(JudgeHttp, TransportFailureWinsOverStatusAndBody) {
  sys::HttpResponse r = TransportFailure(
      FailureKind::refused, "Failed to connect to 127.0.0.1 port 8080: Connection refused");
  r.status = 200;
  r.body = "ok";
  const HttpVerdict v = judge_http(Settings("body_contains = \"ok\""), r);
  EXPECT_EQ(v.failure, FailureKind::refused);
  EXPECT_EQ(v.summary,
            "connection refused: Failed to connect to 127.0.0.1 port 8080: Connection refused");
}

// ---------------------------------------------------------------------------------------------
// Status

TEST(JudgeHttp, OkByDefault) {
  const HttpVerdict v = judge_http(HttpSettings{}, Answer(200));
  EXPECT_EQ(v.failure, FailureKind::none);
  EXPECT_EQ(v.summary, "HTTP 200 in 12ms");
}

TEST(JudgeHttp, RedirectIsHealthyByDefault) {
  const HttpVerdict v = judge_http(HttpSettings{}, Answer(302));
  EXPECT_EQ(v.failure, FailureKind::none);
  EXPECT_EQ(v.summary, "HTTP 302 in 12ms");
}

TEST(JudgeHttp, ServerErrorIsHttp5xx) {
  const HttpVerdict v = judge_http(HttpSettings{}, Answer(503, "", milliseconds(40)));
  EXPECT_EQ(v.failure, FailureKind::http_5xx);
  EXPECT_EQ(v.summary, "HTTP 503 in 40ms (expected 200-399)");
}

TEST(JudgeHttp, ClientErrorIsHttp4xx) {
  const HttpVerdict v = judge_http(HttpSettings{}, Answer(404));
  EXPECT_EQ(v.failure, FailureKind::http_4xx);
  EXPECT_EQ(v.summary, "HTTP 404 in 12ms (expected 200-399)");
}

TEST(JudgeHttp, OtherUnexpectedStatusIsHttpStatus) {
  const HttpSettings s = Settings("expect_status = [200, \"204-206\"]");
  const HttpVerdict v = judge_http(s, Answer(302));
  EXPECT_EQ(v.failure, FailureKind::http_status);
  EXPECT_EQ(v.summary, "HTTP 302 in 12ms (expected 200,204-206)");
  EXPECT_EQ(judge_http(s, Answer(101)).failure, FailureKind::http_status);
  EXPECT_EQ(judge_http(s, Answer(205)).failure, FailureKind::none);
}

TEST(JudgeHttp, ErrorStatusesKeepTheirKindUnderCustomExpectations) {
  const HttpSettings s = Settings("expect_status = 200");
  EXPECT_EQ(judge_http(s, Answer(500)).failure, FailureKind::http_5xx);
  EXPECT_EQ(judge_http(s, Answer(401)).failure, FailureKind::http_4xx);
}

TEST(JudgeHttp, ExpectedErrorStatusIsHealthy) {
  // A check may watch for a deliberate 503 (a maintenance page, a drained node).
  const HttpSettings s = Settings("expect_status = [\"2xx\", 503]");
  const HttpVerdict v = judge_http(s, Answer(503));
  EXPECT_EQ(v.failure, FailureKind::none);
  EXPECT_EQ(v.summary, "HTTP 503 in 12ms");
}

// ---------------------------------------------------------------------------------------------
// Body

TEST(JudgeHttp, BodyContainsPresent) {
  const HttpVerdict v =
      judge_http(Settings("body_contains = \"healthy\""), Answer(200, "{\"status\":\"healthy\"}"));
  EXPECT_EQ(v.failure, FailureKind::none);
  EXPECT_EQ(v.summary, "HTTP 200 in 12ms");
}

TEST(JudgeHttp, BodyContainsMissing) {
  const HttpVerdict v =
      judge_http(Settings("body_contains = \"healthy\""), Answer(200, "{\"status\":\"degraded\"}"));
  EXPECT_EQ(v.failure, FailureKind::body);
  EXPECT_EQ(v.summary, "HTTP 200 in 12ms but the body lacks \"healthy\"");
}

TEST(JudgeHttp, StatusIsJudgedBeforeBody) {
  const HttpVerdict v = judge_http(Settings("body_contains = \"healthy\""), Answer(500, "oops"));
  EXPECT_EQ(v.failure, FailureKind::http_5xx);
}

TEST(JudgeHttp, BodyRegexMatches) {
  const HttpSettings s = Settings(R"(body_regex = '"status":\s*"up"')");
  ASSERT_NE(s.body_regex_compiled, nullptr);
  const HttpVerdict v = judge_http(s, Answer(200, "{\"db\": 1, \"status\":  \"up\"}"));
  EXPECT_EQ(v.failure, FailureKind::none);
  EXPECT_EQ(v.summary, "HTTP 200 in 12ms");
}

TEST(JudgeHttp, BodyRegexDoesNotMatch) {
  const HttpSettings s = Settings(R"(body_regex = '"status":\s*"up"')");
  ASSERT_NE(s.body_regex_compiled, nullptr);
  const HttpVerdict v = judge_http(s, Answer(200, "{\"status\": \"down\"}"));
  EXPECT_EQ(v.failure, FailureKind::body);
  EXPECT_EQ(v.summary, R"(HTTP 200 in 12ms but the body does not match /"status":\s*"up"/)");
}

TEST(JudgeHttp, BodyContainsAndRegexMustBothHold) {
  const HttpSettings s = Settings("body_contains = \"ok\"\nbody_regex = '^v[0-9]+'");
  EXPECT_EQ(judge_http(s, Answer(200, "v2 ok")).failure, FailureKind::none);
  EXPECT_EQ(judge_http(s, Answer(200, "v2 fine")).summary,
            "HTTP 200 in 12ms but the body lacks \"ok\"");
  EXPECT_EQ(judge_http(s, Answer(200, "ok v2")).summary,
            "HTTP 200 in 12ms but the body does not match /^v[0-9]+/");
}

// ---------------------------------------------------------------------------------------------
// body_head

TEST(BodyHead, ReplacesControlBytes) {
  EXPECT_EQ(body_head("a\nb\tc\rd\x7f"
                      "e\x1b[0m",
                      256),
            "a.b.c.d.e.[0m");
  EXPECT_EQ(body_head(std::string("nul\0byte", 8), 256), "nul.byte");
}

TEST(BodyHead, KeepsPrintableAndNonAsciiBytes) {
  EXPECT_EQ(body_head("<h1>Service Unavailable</h1>", 256), "<h1>Service Unavailable</h1>");
  EXPECT_EQ(body_head("caf\xc3\xa9", 256), "caf\xc3\xa9");
}

TEST(BodyHead, Truncates) {
  EXPECT_EQ(body_head("0123456789", 4), "0123");
  EXPECT_EQ(body_head("0123456789", 10), "0123456789");
  EXPECT_EQ(body_head("0123456789", 0), "");
  EXPECT_EQ(body_head(std::string(1000, 'x'), 256), std::string(256, 'x'));
}

TEST(BodyHead, EmptyBody) { EXPECT_EQ(body_head("", 256), ""); }

}  // namespace
}  // namespace vigil
