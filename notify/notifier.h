// A notifier kind behind one interface, like probes/probe.h and actions/action.h: how a page is
// rendered in the kind's wire format (../shared/PAGING-FORMATS.md), how its answer is judged, and
// the facts the pager plans by. One object per NotifierKind, made by make_notifiers()
// (notify/register.h); each kind is one file (alertmanager.cpp, pagerduty.cpp, oncall.cpp,
// statuspage.cpp, webhook.cpp).
//
// Sending is not here: every kind speaks plain HTTP, so paging (notify/paging.cpp) sends what
// render() made and hands the answer to judge(), through render()/judge() in notify/page.h.
// Notifiers hold no state: what a kind needs between pages (statuspage's incident id) comes in
// the RenderContext. Pure: no I/O, no clock.
#pragma once

#include <cstddef>

#include "agent/config/config.h"
#include "agent/core/result.h"
#include "notify/page.h"

namespace vigil {

class Notifier {
 public:
  virtual ~Notifier() = default;

  virtual NotifierKind kind() const = 0;

  // The request for page `p` on `n` (`url_index` chooses the Alertmanager peer; the other kinds
  // use their first url). Errors only for what cannot be sent at all.
  virtual Result<RenderedRequest> render(const NotifyConfig& n, std::size_t url_index,
                                         const Page& p, const RenderContext& ctx) const = 0;

  // The answer to one attempt: delivered, retry (when), or permanent. Each kind starts from the
  // shared HTTP rules (judge_http() in notify/judge_util.h) and adds what its answers say.
  virtual Verdict judge(const Page& p, const DeliveryAnswer& a, TimePoint now) const = 0;

  // Its wire format has an acknowledge (the others skip one at render time, so the pager does
  // not even plan it for them).
  virtual bool has_acknowledge() const { return false; }
  // It takes change events (vigil changed the system: a rollback).
  virtual bool takes_change_events() const { return false; }
};

}  // namespace vigil
