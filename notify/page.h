// Pages (issue 7): what vigil tells the central systems, and how each one wants to hear it.
//
// A Page is a snapshot of an incident taken when the pager decided to page; it is what the outbox
// stores (never a secret, never a rendered request), so a page queued before a reload or a
// reboot is rendered with the notifier's config and secret as they are when it is sent.
// render() turns a Page into one HTTP request in the notifier's documented wire format
// (../shared/PAGING-FORMATS.md); judge() reads the answer: delivered, retry (when), or
// permanent (never retried, logged loudly). Both hand over to the kind's Notifier
// (notify/notifier.h).
//
// Pure: no I/O, no clock (times come in), so every format is tested field by field.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/observation.h"
#include "agent/core/result.h"

namespace vigil {

enum class PageAction {
  trigger,      // the incident is paged here for the first time
  update,       // the same page, new facts: severity or state changed, a re-send, a reminder
  acknowledge,  // a human acknowledged (PagerDuty acknowledge; webhook "acknowledged")
  resolve,      // the incident is resolved (recovery verified)
  change,       // vigil changed the system (a rollback): a PagerDuty change event
  // vigil is alive (incident ""): Alertmanager gets an always-firing VigilHeartbeat alert whose
  // endsAt is 3 heartbeat periods ahead, so it resolves (and a dead-man route fires) when the
  // heartbeats stop. Never queued in the outbox: the next one supersedes a lost one.
  heartbeat,
};
std::string_view to_string(PageAction a);
std::optional<PageAction> parse_page_action(std::string_view text);

struct Page {
  // Outbox bookkeeping. seq: assigned by the outbox, increasing; delivery order per
  // (target, incident). target: the notifier's name, with "#N" for the Nth Alertmanager peer
  // ("am#0", "am#1"): each peer has its own queue, so one peer down delays nobody else.
  std::uint64_t seq = 0;
  std::string target;
  std::string notifier;  // the [[notify]] name
  PageAction action = PageAction::trigger;

  // The incident as it was when paged. Empty `incident` only for tests.
  std::string incident;  // its id: also the dedup key's heart (one key per incident epoch)
  std::string host;
  std::string title;    // "checkout: HTTP 503 (https://…/health)"
  std::string summary;  // one line, what is wrong now; the newest member summary
  std::string service, team;
  std::string check;  // the first failing member's check (Alertmanager label `check`)
  Severity severity = Severity::sev3;
  // The severity the target last got for this incident, when it differs: Alertmanager's labels
  // are the alert's identity, so the old-severity alert is resolved in the same request.
  std::optional<Severity> previous;
  std::string state;  // incident state name ("triaged", "mitigating", "escalated", "resolved")
  bool acknowledged = false;
  bool dry_run = false;  // pages about dry-run decisions are tagged [DRY-RUN]
  std::string text;      // update/change/acknowledge: what happened ("rolled back app: B -> A")
  std::vector<std::string> evidence;           // the evidence lines (bounded by the pager)
  TimePoint started{};                         // impact start
  TimePoint at{};                              // when the page was decided
  std::optional<TimePoint> resolved;           // resolve: when
  std::map<std::string, std::string> details;  // extra facts, custom_details

  // Delivery state (memory only: after a restart every queued page is tried again at once).
  int attempts = 0;
  TimePoint next_try{};
  std::string last_error;
};

// Everything about the world render() needs besides the page and the notifier.
struct RenderContext {
  TimePoint now{};  // the send time (Alertmanager's endsAt for a firing alert is now + 4 x resend)
  std::string link_base;  // [paging] link_base ("" = no URL links)
  // statuspage: the id the Statuspage API gave the incident when it was created ("" before).
  std::string remote_id;
  Duration heartbeat_every{60'000};  // [paging] heartbeat_every
  // [fleet] name ("" = none): Alertmanager's `fleet` label, so one outage seen by many hosts
  // can be grouped into one notification (docs/FLEET.md).
  std::string fleet;
};

struct RenderedRequest {
  HttpMethod method = HttpMethod::post;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // incl. Content-Type
  std::string body;
  // Nothing to send for this page on this target (e.g. acknowledge to Alertmanager), with why;
  // the outbox then counts the page as done.
  bool skip = false;
  std::string skip_why;
};

// The request for page `p` on `n`; `url_index` chooses the Alertmanager peer. Errors only for
// what cannot be sent at all (a statuspage update before its incident exists is not an error:
// the outbox keeps order, so create comes first; a missing id is reported as an error).
Result<RenderedRequest> render(const NotifyConfig& n, std::size_t url_index, const Page& p,
                               const RenderContext& ctx);

// The answer to one attempt.
struct DeliveryAnswer {
  bool transport_ok = false;  // an HTTP answer arrived
  std::string error;          // the transport error otherwise
  long status = 0;
  std::string retry_after;  // the Retry-After header, verbatim ("" if absent)
  std::string body;         // the first bytes of the answer body
};

struct Verdict {
  enum class Kind { delivered, retry, permanent };
  Kind kind = Kind::retry;
  // retry: not before this (from Retry-After: seconds or an HTTP date), else the outbox backs off.
  std::optional<Duration> retry_after;
  std::string why;  // "HTTP 400: invalid event: payload.summary missing", "connection refused"
  std::string remote_id;  // statuspage create: the new incident's id
};
// 2xx: delivered. 400/413/422 (the request itself is wrong): permanent. 429, 5xx, 408, transport
// errors: retry. Other 4xx (401/403/404: a config mistake an operator can fix by a reload):
// retry, slowly, never dropped. `now` reads an HTTP-date Retry-After.
Verdict judge(const NotifyConfig& n, const Page& p, const DeliveryAnswer& a, TimePoint now);

// Backoff for the attempt after `attempts` failures: 1s, 2s, 4s, ... capped at 5 min, with
// `jitter01` (0..1, from the caller's RNG) spreading it over [50%, 100%] of the step so a fleet
// does not retry in lockstep. A Retry-After wins when it is longer (capped at 1 h).
Duration backoff(int attempts, double jitter01, std::optional<Duration> retry_after);

// PagerDuty's dedup key and OnCall's alert_uid: "vigil/HOST/ID" (Alertmanager's `incident`
// label is the bare id; its `host` label says the rest).
std::string dedup_key(const Page& p);

// Page <-> one JSON object (the outbox's record): every field above but the delivery state.
// (notify/page_json.cpp)
std::string page_to_json(const Page& p);
Result<Page> page_from_json(std::string_view text);

}  // namespace vigil
