#include "probes/http.h"

#include <re2/re2.h>

#include <array>
#include <charconv>
#include <string_view>
#include <utility>

namespace vigil {
namespace {

// Why 256: enough of an error page to recognise it in a page or a log line, small enough to
// keep per observation.
constexpr std::size_t kBodyHeadBytes = 256;
// Why 120: the part of an error body that fits on one log line next to the verdict.
constexpr std::size_t kSummaryBodyBytes = 120;

std::string status_ranges(const HttpSettings& s) {
  std::string out;
  for (const StatusRange& r : s.expect_status) {
    if (!out.empty()) out += ",";
    out += r.low == r.high ? std::to_string(r.low)
                           : std::to_string(r.low) + "-" + std::to_string(r.high);
  }
  return out;
}

std::string_view transport_words(FailureKind k) {
  switch (k) {
    case FailureKind::refused:
      return "connection refused";
    case FailureKind::timeout:
      return "timed out";
    case FailureKind::reset:
      return "connection reset";
    case FailureKind::dns:
      return "name did not resolve";
    case FailureKind::tls:
      return "TLS failed";
    case FailureKind::protocol:
      return "invalid HTTP answer";
    default:
      return "request failed";
  }
}

// "HTTP 200 in 12ms": the start of every answered verdict, built without temporaries (it is
// written a thousand times a second).
std::string status_in(long status, Duration total) {
  std::string out;  // "HTTP 200 in 12ms" fits the string's own buffer in all but odd cases
  std::array<char, 24> num;
  out += "HTTP ";
  out.append(num.data(), std::to_chars(num.data(), num.data() + num.size(), status).ptr);
  out += " in ";
  out.append(num.data(), std::to_chars(num.data(), num.data() + num.size(), total.count()).ptr);
  out += "ms";
  return out;
}

}  // namespace

std::string body_head(const std::string& body, std::size_t limit) {
  std::string out = body.substr(0, limit);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '.';
  }
  return out;
}

HttpVerdict judge_http(const HttpSettings& s, const sys::HttpResponse& r) {
  if (r.transport != FailureKind::none) {
    return {r.transport, std::string(transport_words(r.transport)) + ": " + r.error};
  }
  if (!s.status_expected(r.status)) {
    FailureKind k = FailureKind::http_status;
    if (r.status >= 500 && r.status <= 599) k = FailureKind::http_5xx;
    if (r.status >= 400 && r.status <= 499) k = FailureKind::http_4xx;
    // The start of an error page often names the cause ("connection pool exhausted").
    const std::string head = body_head(r.body, kSummaryBodyBytes);
    return {k, status_in(r.status, r.total) + " (expected " + status_ranges(s) + ")" +
                   (head.empty() ? "" : ": \"" + head + "\"")};
  }
  if (!s.body_contains.empty() && r.body.find(s.body_contains) == std::string::npos) {
    return {FailureKind::body,
            status_in(r.status, r.total) + " but the body lacks \"" + s.body_contains + "\""};
  }
  if (s.body_regex_compiled && !re2::RE2::PartialMatch(r.body, *s.body_regex_compiled)) {
    return {FailureKind::body,
            status_in(r.status, r.total) + " but the body does not match /" + s.body_regex + "/"};
  }
  return {FailureKind::none, status_in(r.status, r.total)};
}

HttpProbe::HttpProbe(ProbeContext ctx, CheckConfig check)
    : ctx_(ctx), check_(std::move(check)), confirm_timer_(ctx.io) {
  const HttpSettings& h = *check_.http();
  sys::HttpRequest request;
  request.url = h.url;
  request.method = h.method;
  request.headers = h.headers;
  request.timeout = check_.timeout;
  request.verify_tls = h.verify_tls;
  request_ = ctx_.http.prepare(std::move(request));
}

HttpProbe::~HttpProbe() { cancel(); }

void HttpProbe::run(Done done) {
  cancel();
  done_ = std::move(done);
  attempts_ = 0;
  started_ = Clock::now();
  attempt();
}

void HttpProbe::cancel() {
  if (request_id_ != 0) ctx_.http.cancel(request_id_);
  request_id_ = 0;
  // Only when armed: run() cancels first, and a cancel costs the timer queue a lock and a scan.
  if (confirming_) confirm_timer_.cancel();
  confirming_ = false;
  done_ = nullptr;
}

void HttpProbe::attempt() {
  ++attempts_;
  request_id_ = ctx_.http.start(request_, [weak = weak_from_this()](sys::HttpResponse r) {
    if (auto self = weak.lock()) self->on_response(std::move(r));
  });
}

void HttpProbe::on_response(sys::HttpResponse&& response) {
  request_id_ = 0;
  HttpVerdict verdict = judge_http(*check_.http(), response);
  if (verdict.failure != FailureKind::none && attempts_ <= check_.confirm) {
    // Confirm before reporting: one lost packet must not page anyone.
    confirm_timer_.expires_after(check_.confirm_interval);
    confirming_ = true;
    confirm_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->confirming_ = false;
        if (self->done_) self->attempt();
      }
    });
    return;
  }
  Observation obs;
  obs.check = check_.name;
  // When the run began: for a failure, the first failing attempt (confirmations come after).
  obs.at = started_;
  obs.failure = verdict.failure;
  obs.summary = std::move(verdict.summary);
  if (verdict.failure != FailureKind::none && attempts_ > 1) {
    obs.summary += " (confirmed by " + std::to_string(attempts_) + " attempts)";
  } else if (verdict.failure == FailureKind::none && attempts_ > 1) {
    obs.summary += " (after " + std::to_string(attempts_ - 1) + " failed attempt" +
                   (attempts_ > 2 ? "s" : "") + ")";
  }
  obs.latency = response.total;
  obs.http.status = response.status;
  obs.http.total = response.total;
  obs.http.connect = response.connect;
  obs.http.tls = response.tls;
  obs.http.first_byte = response.first_byte;
  obs.http.body_head = body_head(response.body, kBodyHeadBytes);
  obs.http.error = std::move(response.error);
  obs.http.attempts = attempts_;
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(std::move(obs));
}

}  // namespace vigil
