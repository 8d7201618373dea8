// The pager (issue 7): decides which pages an incident needs now. Pure: the incident (with its
// timeline), the config and the time in, pages out; the daemon queues them in the outbox and
// writes a `page` timeline event for each one that is not a quiet re-send.
//
// Event-sourced like the mitigation ladder: what was already paged is read back from the
// incident's `page` events (fields notifier, action, state, step; severity), and acks from its
// `ack` events, so a restart neither re-pages nor forgets to resolve.
//
// Rules (docs/PAGING.md):
// - Routing: a notifier pages an incident at its `severity` or worse, of one of its `teams`
//   (none: every team). Evaluated with the severity now, so an incident raised to SEV1 reaches
//   the SEV1-only targets then. Once triggered somewhere, a target gets every update and the
//   resolve, whatever the severity became.
// - One page per incident: trigger once; an `update` when the severity (any target) or the
//   state (statuspage, webhook) differs from what that target last got; `resolve` to every
//   target that was triggered, once the incident is resolved; `acknowledge` once after an ack
//   (PagerDuty, webhook targets; others skip it at render time).
// - Maintenance: an incident marked maintenance pages nothing (but resolves what it paged).
// - Escalation chain (webhook targets named in [[escalation]]): they are paged by the chain,
//   never by routing. Step 0 with the trigger (if its notifier takes the severity; the team
//   check is the chain's own); step k once steps[k].after has passed since step k-1 was paged,
//   unless acknowledged, resolved or in maintenance. Every step paged gets the resolve.
// - Cadence: Alertmanager targets are re-sent every `resend_every` (quiet: no timeline event,
//   from `last_sent`); statuspage targets get an update every `update_every` while open; webhook
//   targets re-page an unacknowledged SEV1 every `update_every`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/config/config.h"
#include "agent/incidents/incident.h"
#include "notify/page.h"

namespace vigil {

// What one incident's timeline says was paged.
struct PagedTarget {
  bool triggered = false;
  bool acknowledged = false;  // an acknowledge page was queued
  bool resolved = false;
  Severity severity = Severity::sev3;  // the last one paged
  std::string state;                   // the last state paged
  TimePoint last{};                    // the last page queued (trigger/update)
  TimePoint first{};                   // the trigger (reminders say for how long)
};
struct PagedState {
  std::map<std::string, PagedTarget> targets;  // by notifier name
  int step = -1;                               // escalation: the highest step paged
  TimePoint step_at{};
  bool acknowledged = false;  // an `ack` event exists
  std::string ack_by;         // its text
};
PagedState paged_state(const Incident& inc);

struct PagerInput {
  const Config* config = nullptr;
  const Incident* incident = nullptr;
  TimePoint now{};
  // When each Alertmanager notifier last had a page queued for this incident (the daemon's
  // memory, since re-sends are quiet); absent: use the timeline's.
  std::map<std::string, TimePoint> last_sent;
};

struct PlannedPage {
  Page page;           // target = notifier name (the daemon fans Alertmanager out per peer)
  bool quiet = false;  // a re-send: queue it, but write no timeline event
  int step = -1;       // the escalation step it pages, if any
};

// Everything `inc` needs paged now, in order.
std::vector<PlannedPage> plan_pages(const PagerInput& in);

// After a mitigation event: a PagerDuty change event for a rollback that ran (action
// rollback:*, outcome ok: once per run, since its `verified` follows the same run), to every
// PagerDuty target that was triggered for the incident. The pages are stamped e.at.
std::vector<PlannedPage> change_pages(const Config& config, const Incident& inc,
                                      const TimelineEvent& mitigation);

// The page snapshot of `inc` for `notifier` (title, summary, evidence bounded to 20 lines of
// 512 bytes, check, severity, state, times).
Page snapshot(const Incident& inc, const NotifyConfig& notifier, PageAction action, TimePoint now);

// The timeline event recording a queued page: type page, text "paged NOTIFIER: ACTION (SEV1)",
// fields notifier, action, state, step (if any); severity set.
TimelineEvent page_event(const PlannedPage& p);

// Whether `n` pages an incident of this severity and team by routing (not by a chain).
bool routes(const NotifyConfig& n, Severity severity, const std::string& team);

}  // namespace vigil
