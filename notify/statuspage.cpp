// Statuspage: the public face of an incident (no evidence, no host names, no internals). A
// trigger creates the incident, whose id the answer carries (the outbox keeps it for the updates
// and the resolve that follow, which patch it).
#include <cctype>
#include <cstdio>
#include <string>
#include <utility>

#include "notify/judge_util.h"
#include "notify/kinds.h"
#include "notify/render_util.h"

namespace vigil {
namespace {

constexpr std::string_view kDefaultStatuspage = "https://api.statuspage.io";

// One URL path segment: unreserved characters kept, everything else percent-encoded.
std::string path_segment(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", u);
      out += buf;
    }
  }
  return out;
}

std::string_view public_status(const Page& p) {
  if (p.action == PageAction::resolve || p.state == "resolved") return "resolved";
  if (p.state == "mitigating") return "identified";
  if (p.state == "verifying") return "monitoring";
  return "investigating";  // detected, triaged, escalated
}

std::string public_body(const Page& p, std::string_view status) {
  std::string body;
  if (status == "investigating") {
    body = p.service.empty() ? "We are investigating a problem."
                             : "We are investigating problems with " + p.service + ".";
  } else if (status == "identified") {
    body = "The cause is identified and a fix is being applied.";
  } else if (status == "monitoring") {
    body = "A fix has been applied and we are monitoring the results.";
  } else {
    body = "This incident has been resolved.";
  }
  // vigil's own words (p.text: "rolled back app: B -> A", "still triaged") stay internal.
  return body;
}

std::string_view statuspage_impact(Severity s) {
  switch (s) {
    case Severity::sev1:
      return "critical";
    case Severity::sev2:
      return "major";
    case Severity::sev3:
      return "minor";
  }
  return "minor";
}

Result<RenderedRequest> render_statuspage(const NotifyConfig& n, const Page& p,
                                          const RenderContext& ctx) {
  switch (p.action) {
    case PageAction::acknowledge:
      return skipped("statuspage: an acknowledgement is not public news");
    case PageAction::change:
      return skipped("statuspage: change events are for PagerDuty");
    case PageAction::heartbeat:
      return skipped("statuspage: no heartbeat on a public page");
    case PageAction::trigger:
    case PageAction::update:
    case PageAction::resolve:
      break;
  }
  if (n.page_id.empty()) return make_error("statuspage " + n.name + ": no page_id");
  const std::string base =
      without_trailing_slash(n.urls.empty() ? std::string(kDefaultStatuspage) : n.urls.front()) +
      "/v1/pages/" + path_segment(n.page_id) + "/incidents";
  const std::string_view status = public_status(p);
  Json incident = {{"status", std::string(status)}, {"body", public_body(p, status)}};
  RenderedRequest r;
  if (p.action == PageAction::trigger) {
    // Never the incident title: it carries URLs, addresses and journal lines.
    const std::string& what = p.service.empty() ? p.check : p.service;
    incident["name"] =
        cut_utf8(what.empty() ? "Service disruption" : what + ": service disruption", kSummaryMax);
    incident["impact_override"] = std::string(statuspage_impact(p.severity));
    if (!n.component_ids.empty()) incident["component_ids"] = n.component_ids;
    r = json_request(HttpMethod::post, base, dump(Json{{"incident", std::move(incident)}}));
  } else {
    if (ctx.remote_id.empty()) {
      return make_error("statuspage: no incident id yet for " + p.incident);
    }
    r = json_request(HttpMethod::patch, base + "/" + path_segment(ctx.remote_id),
                     dump(Json{{"incident", std::move(incident)}}));
  }
  r.headers.emplace_back("Authorization", "OAuth " + n.secret);
  return r;
}

// The top-level "id" of a JSON object, read as a stream so an answer cut after the first bytes
// (the HTTP client keeps only those) still gives it: Statuspage puts "id" first.
class TopLevelId : public nlohmann::json_sax<Json> {
 public:
  std::string id;

  bool null() override { return scalar(); }
  bool boolean(bool /*unused*/) override { return scalar(); }
  bool number_integer(number_integer_t v) override { return found(std::to_string(v)); }
  bool number_unsigned(number_unsigned_t v) override { return found(std::to_string(v)); }
  bool number_float(number_float_t /*unused*/, const string_t& /*unused*/) override {
    return scalar();
  }
  bool string(string_t& v) override { return found(v); }
  bool binary(binary_t& /*unused*/) override { return scalar(); }
  bool start_object(std::size_t /*unused*/) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t /*unused*/) override { return open(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    want_ = depth_ == 1 && k == "id";
    return true;
  }
  bool parse_error(std::size_t /*unused*/, const std::string& /*unused*/,
                   const nlohmann::detail::exception& /*unused*/) override {
    return false;
  }

 private:
  bool scalar() {
    want_ = false;
    return true;
  }
  bool found(std::string v) {
    if (!want_) return true;
    want_ = false;
    if (v.empty()) return true;
    id = std::move(v);
    return false;  // done: stop reading
  }
  bool open() {
    want_ = false;
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  bool want_ = false;
};

std::string top_level_id(const std::string& body) {
  TopLevelId reader;
  Json::sax_parse(body, &reader);
  return reader.id;
}

class StatuspageNotifier final : public Notifier {
 public:
  NotifierKind kind() const override { return NotifierKind::statuspage; }
  Result<RenderedRequest> render(const NotifyConfig& n, std::size_t /*url_index*/, const Page& p,
                                 const RenderContext& ctx) const override {
    return render_statuspage(n, p, ctx);
  }
  Verdict judge(const Page& p, const DeliveryAnswer& a, TimePoint now) const override {
    Verdict v =
        judge_http(a, now, {"check the API key", "check the url, page_id and component_ids"});
    if (v.kind != Verdict::Kind::delivered || p.action != PageAction::trigger) return v;
    v.remote_id = top_level_id(a.body);
    if (v.remote_id.empty()) {
      // The incident exists, so retrying would post it again publicly; without its id no
      // update or resolve can follow: say so loudly, for a human to close it by hand.
      v.kind = Verdict::Kind::permanent;
      v.why = with_excerpt("HTTP " + std::to_string(a.status) +
                               ": statuspage created the incident but its answer has no id",
                           a.body);
      v.retry_after = parse_retry_after(a.retry_after, now);
    }
    return v;
  }
};

}  // namespace

std::unique_ptr<Notifier> make_statuspage_notifier() {
  return std::make_unique<StatuspageNotifier>();
}

}  // namespace vigil
