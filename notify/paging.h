// Paging, the component: what the scribe recorded in a loop turn comes in (recorded()), and at
// the end of the turn (drain()) the pager (pager.h) plans the pages it calls for; they are queued
// durably in the outbox (outbox.h), each queued page written as a timeline event through the
// scribe, and delivered in the notifier's wire format (page.h) over the HTTP sender it is given,
// with retries, per-target rate limits, heartbeats, and acks read from Alertmanager silences.
//
// One way: the page events it records call for no further pages, and it never calls back into
// whoever recorded the changes. It reads no clock: every entry point takes `now`, and an answer
// is stamped by `Hooks::clock`, so unit tests drive it with a fake clock and a fake sender
// (tests/unit/paging_test.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/incidents/incident.h"
#include "agent/sys/http.h"
#include "notify/outbox.h"
#include "notify/pager.h"

namespace vigil {

class Paging {
 public:
  struct Hooks {
    // The scribe: writes the page events to the timelines and logs them.
    std::function<void(std::vector<IncidentBook::Change>)> record;
    // Sends one request; `done` runs once, on the loop, unless vigil stops first. Returns the
    // request's id (0 when it was answered before returning).
    std::function<sys::HttpClient::RequestId(const sys::HttpRequest&, sys::HttpClient::Callback)>
        send;
    // A human acknowledged the incident with this dedupe key: its mitigation circuit closes.
    // True if one was open.
    std::function<bool(const std::string& dedupe_key)> close_circuit;
    // The time an answer arrives.
    std::function<TimePoint()> clock;
  };

  // `config` is the daemon's: read at every step, so a reload applies at once.
  Paging(IncidentBook& book, const Config& config, Hooks hooks);

  // Reads the outbox (pages queued before a restart are delivered again). `started`: when this
  // vigil started (the heartbeat alert's start).
  void load(TimePoint started);
  // At start, after the incidents are read: a page in the outbox whose timeline event was lost
  // (a crash between the two writes) gets its event now, so it is not planned a second time.
  // Pages are planned and sent only after this.
  void reconcile();
  // No request starts after this.
  void stop() { stopping_ = true; }

  // What the scribe wrote: incidents whose timelines changed (other than by page events) are
  // paged at the end of the turn, and mitigation events become change events where the
  // incident was paged.
  void recorded(const std::vector<IncidentBook::Change>& changes);
  // Something recorded waits for drain().
  bool pending() const { return !to_page_.empty() || !held_changes_.empty(); }
  // The end of a loop turn: pages what the turn's recorded changes call for.
  void drain(TimePoint now);

  // Housekeeping, every second: every incident's pages (re-sends, escalation steps), the outbox
  // written again after a full disk, due deliveries, heartbeats, silences.
  void page_all(TimePoint now);
  void persist();
  void deliver(TimePoint now);
  void send_heartbeats(TimePoint now);
  void poll_silences(TimePoint now);
  // Forgets re-send times of incidents the book no longer holds (once a minute).
  void forget_gone();

  // An ack (CLI or Alertmanager silence): recorded, pages acknowledged, circuit closed.
  void acknowledge(const std::string& id, const std::string& text,
                   std::map<std::string, std::string> fields, TimePoint now);

  // `vigil status`'s "paging" object, and the per-(notifier, outcome) counts for the metrics.
  nlohmann::json json(TimePoint now) const;
  const std::map<std::pair<std::string, std::string>, std::uint64_t>& counts() const {
    return page_counts_;
  }

 private:
  void page(const std::string& incident, TimePoint now);
  void queue(const Incident& inc, std::vector<PlannedPage> planned, TimePoint now);
  void flush_change_pages(TimePoint now);
  void delivered(std::uint64_t seq, const sys::HttpResponse& resp);

  IncidentBook& book_;
  const Config& config_;
  Hooks hooks_;
  Outbox outbox_;
  TimePoint started_{};
  bool ready_ = false;  // the outbox is loaded and reconciled: pages may be queued
  bool stopping_ = false;
  // What recorded() leaves for drain(): incidents whose timelines changed, in order, and the
  // mitigation events to send as change events.
  std::vector<std::string> to_page_;
  std::vector<std::pair<std::string, TimelineEvent>> held_changes_;
  std::map<std::uint64_t, sys::HttpClient::RequestId> sending_;         // seq -> request
  std::map<std::pair<std::string, std::string>, TimePoint> last_sent_;  // (notifier, incident)
  std::map<std::string, std::deque<TimePoint>> sent_recently_;  // target -> sends in the last 60s
  std::mt19937_64 rng_{std::random_device{}()};
  std::uint64_t pages_delivered_ = 0, pages_failed_ = 0, pages_queued_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> page_counts_;  // (notifier, outcome)
  TimePoint heartbeat_at_{}, silences_at_{};
  std::set<std::string> heartbeat_failing_;  // targets whose last heartbeat failed (logged once)
};

}  // namespace vigil
