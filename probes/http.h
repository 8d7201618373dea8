// The HTTP probe: GET or HEAD a URL through the loop's HTTP client; judge status and body;
// re-probe a failure `confirm` times, `confirm_interval` apart, before reporting it.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "probes/probe.h"

namespace vigil {

// Pure: turns one HTTP response into an observation's verdict (failure kind + summary).
struct HttpVerdict {
  FailureKind failure = FailureKind::none;
  std::string summary;
};
HttpVerdict judge_http(const HttpSettings& settings, const sys::HttpResponse& response);

// The first bytes of a body, made safe for a log line or a page (control bytes become '.').
std::string body_head(const std::string& body, std::size_t limit);

class HttpProbe : public Probe, public std::enable_shared_from_this<HttpProbe> {
 public:
  HttpProbe(ProbeContext ctx, CheckConfig check);
  ~HttpProbe() override;
  void run(Done done) override;
  void cancel() override;
  bool running() const override { return static_cast<bool>(done_); }

 private:
  void attempt();
  void on_response(sys::HttpResponse&& response);

  ProbeContext ctx_;
  CheckConfig check_;
  sys::PreparedHttpRequest request_;
  boost::asio::steady_timer confirm_timer_;
  Done done_;
  sys::HttpClient::RequestId request_id_ = 0;
  int attempts_ = 0;
  bool confirming_ = false;  // confirm_timer_ has a wait pending
  TimePoint started_{};
};

}  // namespace vigil
