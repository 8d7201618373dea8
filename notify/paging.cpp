// Paging (notify/paging.h): plan_pages() says what, the outbox keeps it on disk until a target
// accepted it, and the HTTP sender (curl multi on the loop) delivers it. Every queued page is a
// timeline event, so a restart neither re-pages nor forgets a resolve (see notify/pager.h).
#include "notify/paging.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <tuple>

#include "agent/core/json.h"
#include "agent/core/time.h"
#include "agent/sys/log.h"

namespace vigil {

namespace {

// Alertmanager silences are read this often (an ack by silence shows up within this).
constexpr Duration kSilencePoll{10'000};
// A retried page is logged on its first failure and then every this many attempts.
constexpr int kLogEvery = 10;

// "am#1" -> 1; a target without '#' is peer 0.
std::size_t peer_index(const std::string& target) {
  const auto hash = target.rfind('#');
  if (hash == std::string::npos) return 0;
  std::size_t i = 0;
  const char* b = target.data() + hash + 1;
  const char* e = target.data() + target.size();
  if (std::from_chars(b, e, i).ec != std::errc{}) return 0;
  return i;
}

std::string percent_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

template <typename D>
std::string seconds_text(D d) {
  const auto ds = std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 100;
  return std::to_string(ds / 10) + "." + std::to_string(ds % 10) + "s";
}

// A page's delivery, as a timeline event: type page with a `delivery` field (and no `notifier`,
// so the pager does not take it for a queued page).
TimelineEvent delivery_event(const Page& p, const std::string& outcome, const std::string& text,
                             TimePoint at) {
  TimelineEvent e;
  e.at = at;
  e.type = TimelineEvent::Type::page;
  e.text = text;
  e.fields["delivery"] = outcome;
  e.fields["target"] = p.target;
  e.fields["action"] = std::string(to_string(p.action));
  return e;
}

}  // namespace

void Paging::load(TimePoint started) {
  started_ = started;
  auto loaded = outbox_.load();
  if (!loaded) {
    sys::log_error("outbox: " + loaded.error().message +
                   "; pages cannot be queued durably until it is fixed");
  } else {
    for (const std::string& w : loaded->warnings) sys::log_warning("outbox: " + w);
    if (loaded->pages > 0) {
      sys::log_info("outbox: " + std::to_string(loaded->pages) +
                    " page(s) queued before the restart; delivering them");
    }
  }
}

void Paging::reconcile() {
  std::set<std::tuple<std::string, std::string, PageAction>> seen;
  for (const Page* p : outbox_.queued()) {
    if (p->action != PageAction::trigger && p->action != PageAction::resolve &&
        p->action != PageAction::acknowledge) {
      continue;  // updates and change events are not what the pager counts
    }
    if (!seen.insert({p->incident, p->notifier, p->action}).second) continue;
    const Incident* inc = book_.find(p->incident);
    if (inc == nullptr) continue;
    const PagedState st = paged_state(*inc);
    const auto t = st.targets.find(p->notifier);
    if (t != st.targets.end() &&
        ((p->action == PageAction::trigger && t->second.triggered) ||
         (p->action == PageAction::resolve && t->second.resolved) ||
         (p->action == PageAction::acknowledge && t->second.acknowledged))) {
      continue;
    }
    PlannedPage pp;
    pp.page = *p;
    TimelineEvent e = page_event(pp);
    e.text += " (queued before vigil stopped; its record restored)";
    hooks_.record(book_.record(p->incident, std::move(e)));
  }
  ready_ = true;
}

Paging::Paging(IncidentBook& book, const Config& config, Hooks hooks)
    : book_(book),
      config_(config),
      hooks_(std::move(hooks)),
      outbox_(config.agent.state_dir, config.paging.outbox_max) {}

void Paging::recorded(const std::vector<IncidentBook::Change>& changes) {
  // The incident's own pages first, then PagerDuty change events for rollbacks (sent only where
  // it was paged). A page event itself calls for no page.
  for (const IncidentBook::Change& c : changes) {
    if (c.event.type == TimelineEvent::Type::mitigation)
      held_changes_.emplace_back(c.incident, c.event);
  }
  for (const IncidentBook::Change& c : changes) {
    if (c.event.type != TimelineEvent::Type::page &&
        std::find(to_page_.begin(), to_page_.end(), c.incident) == to_page_.end()) {
      to_page_.push_back(c.incident);
    }
  }
}

void Paging::drain(TimePoint now) {
  // Paging records page events, which call for no further pages; change events are only held
  // for mitigation events. So this ends after one round in practice.
  while (pending()) {
    std::vector<std::string> ids;
    ids.swap(to_page_);
    for (const std::string& id : ids) page(id, now);
    flush_change_pages(now);
  }
}

void Paging::flush_change_pages(TimePoint now) {
  std::vector<std::pair<std::string, TimelineEvent>> held;
  held.swap(held_changes_);
  for (const auto& [id, e] : held) {
    if (const Incident* inc = book_.find(id)) {
      if (auto change = change_pages(config_, *inc, e); !change.empty()) {
        queue(*inc, std::move(change), now);
      }
    }
  }
}

void Paging::page(const std::string& incident, TimePoint now) {
  if (!ready_ || config_.notify.empty()) return;
  const Incident* inc = book_.find(incident);
  if (inc == nullptr) return;
  PagerInput in;
  in.config = &config_;
  in.incident = inc;
  in.now = now;
  for (const NotifyConfig& n : config_.notify) {
    const auto it = last_sent_.find({n.name, inc->id});
    if (it != last_sent_.end()) in.last_sent[n.name] = it->second;
  }
  std::vector<PlannedPage> planned = plan_pages(in);
  if (!planned.empty()) queue(*inc, std::move(planned), now);
}

void Paging::page_all(TimePoint now) {
  if (!ready_) return;
  std::vector<std::string> ids;
  for (const Incident* inc : book_.open()) ids.push_back(inc->id);
  for (const Incident& inc : book_.recently_resolved()) ids.push_back(inc.id);
  for (const std::string& id : ids) page(id, now);
}

void Paging::forget_gone() {
  for (auto it = last_sent_.begin(); it != last_sent_.end();) {
    it = book_.find(it->first.second) == nullptr ? last_sent_.erase(it) : std::next(it);
  }
}

void Paging::persist() {
  // Pages queued in memory only (a full disk): written as soon as the disk takes them.
  if (outbox_.unsaved() && outbox_.persist()) {
    sys::log_info("outbox written again: every queued page is on disk");
  }
}

void Paging::queue(const Incident& inc, std::vector<PlannedPage> planned, TimePoint now) {
  const std::string id = inc.id;  // `inc` lives in the book, which record() below changes
  std::vector<Page> pages;
  for (const PlannedPage& pp : planned) {
    const NotifyConfig* n = config_.find_notify(pp.page.notifier);
    if (n == nullptr) continue;
    if (n->kind == NotifierKind::alertmanager) {
      // One queue per peer, as Prometheus does: a peer that is down delays no other.
      for (std::size_t i = 0; i < n->urls.size(); ++i) {
        Page p = pp.page;
        p.target = n->name + "#" + std::to_string(i);
        pages.push_back(std::move(p));
      }
    } else {
      Page p = pp.page;
      p.target = n->name;
      pages.push_back(std::move(p));
    }
  }
  // Under dry-run (config or --dry-run) every page says so, whatever the incident did.
  if (config_.agent.dry_run == DryRun::yes) {
    for (Page& p : pages) p.dry_run = true;
  }
  if (pages.empty()) return;
  auto added = outbox_.add(std::move(pages));
  if (!added) {
    // Nothing recorded, so the pager plans the same pages again on the next tick.
    sys::log(sys::LogLevel::err,
             "incident " + id + ": pages not queued: " + added.error().message +
                 "; retried every second",
             {{"VIGIL_INCIDENT", id}});
    return;
  }
  if (!added->not_durable.empty()) {
    // A full disk must not silence the pager: the pages go out from memory; only a stop of
    // vigil before the disk has room again could lose them (housekeeping writes them then).
    sys::log(sys::LogLevel::err,
             "incident " + id + ": " + std::to_string(added->seqs.size()) +
                 " page(s) queued in memory only (" + added->not_durable +
                 "); sending them anyway, and writing the outbox again once the disk has room",
             {{"VIGIL_INCIDENT", id}});
  }
  pages_queued_ += added->seqs.size();
  for (const PlannedPage& pp : planned) ++page_counts_[{pp.page.notifier, "queued"}];
  for (const Page& d : added->dropped) {
    ++page_counts_[{d.notifier, "dropped"}];
    sys::log(sys::LogLevel::err,
             "outbox full (" + std::to_string(config_.paging.outbox_max) + " pages): dropped the " +
                 std::string(to_string(d.severity)) + " " + std::string(to_string(d.action)) +
                 " page of incident " + d.incident + " to " + d.target,
             {{"VIGIL_INCIDENT", d.incident}});
  }
  // The page events in one batch (one write, one fdatasync). A crash between the outbox write
  // above and this one is mended at the next start (reconcile_outbox), so nothing is paged twice.
  std::vector<IncidentBook::Change> events;
  for (const PlannedPage& pp : planned) {
    last_sent_[{pp.page.notifier, id}] = now;
    if (pp.quiet) continue;
    for (auto& c : book_.record(id, page_event(pp))) events.push_back(std::move(c));
  }
  hooks_.record(std::move(events));
  deliver(now);
}

void Paging::deliver(TimePoint now) {
  if (!ready_ || stopping_) return;
  // Most urgent first, so a rate-limited target serves a SEV1 trigger before SEV3 re-sends:
  // severity, then events before updates, then age.
  std::vector<const Page*> ready = outbox_.due(now);
  std::stable_sort(ready.begin(), ready.end(), [](const Page* a, const Page* b) {
    const bool au = a->action == PageAction::update, bu = b->action == PageAction::update;
    if (a->severity != b->severity) return a->severity < b->severity;
    if (au != bu) return bu;
    return a->seq < b->seq;
  });
  std::vector<std::uint64_t> due;
  for (const Page* p : ready) due.push_back(p->seq);
  for (const std::uint64_t seq : due) {
    const Page* p = outbox_.find(seq);
    // Gone, or started by a nested deliver() (a request that failed synchronously).
    if (p == nullptr || outbox_.in_flight(seq)) continue;
    const NotifyConfig* n = config_.find_notify(p->notifier);
    const std::size_t peer = peer_index(p->target);
    if (n == nullptr || peer >= n->urls.size()) {
      sys::log_warning("page to " + p->target + " for incident " + p->incident +
                       " dropped: that notifier is no longer in the configuration");
      (void)outbox_.done(seq, "notifier removed");
      continue;
    }
    auto& recent = sent_recently_[p->target];
    while (!recent.empty() && now - recent.front() >= std::chrono::minutes(1)) recent.pop_front();
    if (static_cast<int>(recent.size()) >= n->max_per_minute) continue;  // waits, never dropped

    RenderContext ctx;
    ctx.now = now;
    ctx.link_base = config_.paging.link_base;
    ctx.remote_id = outbox_.ref(p->target, p->incident);
    ctx.heartbeat_every = config_.paging.heartbeat_every;
    ctx.fleet = config_.fleet.name;
    auto req = render(*n, peer, *p, ctx);
    if (!req) {
      ++pages_failed_;
      sys::log(sys::LogLevel::err,
               "page to " + p->target + " for incident " + p->incident +
                   " cannot be sent: " + req.error().message,
               {{"VIGIL_INCIDENT", p->incident}});
      hooks_.record(book_.record(
          p->incident,
          delivery_event(*p, "failed",
                         "page to " + p->target + " cannot be sent: " + req.error().message, now)));
      (void)outbox_.done(seq, "failed: " + req.error().message);
      continue;
    }
    if (req->skip) {
      (void)outbox_.done(seq, "skipped: " + req->skip_why);
      continue;
    }
    sys::HttpRequest hr;
    hr.url = req->url;
    hr.method = req->method;
    hr.headers = req->headers;
    hr.body = std::move(req->body);
    hr.timeout = n->timeout;
    hr.verify_tls = n->verify_tls;
    hr.body_limit = 4096;
    outbox_.begin(seq);
    recent.push_back(now);
    const auto id = hooks_.send(hr, [this, seq](sys::HttpResponse resp) {
      sending_.erase(seq);
      delivered(seq, resp);
    });
    if (id != 0) sending_[seq] = id;
  }
}

void Paging::delivered(std::uint64_t seq, const sys::HttpResponse& resp) {
  const Page* found = outbox_.find(seq);
  if (found == nullptr) return;
  const Page p = *found;
  const TimePoint now = hooks_.clock();
  const NotifyConfig* n = config_.find_notify(p.notifier);
  if (n == nullptr) {
    (void)outbox_.done(seq, "notifier removed");
    return;
  }
  DeliveryAnswer a;
  a.transport_ok = resp.transport == FailureKind::none;
  a.error = resp.error;
  a.status = resp.status;
  a.retry_after = resp.retry_after;
  a.body = resp.body;
  const Verdict v = judge(*n, p, a, now);
  const std::string what =
      std::string(to_string(p.action)) + " page of incident " + p.incident + " to " + p.target;
  if (v.kind == Verdict::Kind::delivered) {
    ++pages_delivered_;
    ++page_counts_[{p.notifier, "delivered"}];
    if (!v.remote_id.empty()) {
      if (auto r = outbox_.set_ref(p.target, p.incident, v.remote_id); !r) {
        sys::log_error("outbox: " + r.error().message);
      }
    }
    if (auto r = outbox_.done(seq, "delivered"); !r) sys::log_error("outbox: " + r.error().message);
    // The target answers: what waits for it after failed attempts goes now.
    if (const std::size_t woken = outbox_.wake(p.target, now); woken > 0) {
      sys::log_info(p.target + " accepts pages again: " + std::to_string(woken) +
                    " queued page(s) to it are sent now");
    }
    // A resolved status page incident is never patched again: its id is no longer needed.
    if (p.action == PageAction::resolve && n->kind == NotifierKind::statuspage) {
      if (auto r = outbox_.forget_ref(p.target, p.incident); !r) {
        sys::log_error("outbox: " + r.error().message);
      }
    }
    const std::string late = now - p.at > std::chrono::seconds(5)
                                 ? ", " + seconds_text(now - p.at) + " after it was queued"
                                 : "";
    if (p.attempts > 0) {
      sys::log_info(what + " delivered after " + std::to_string(p.attempts + 1) + " attempts" +
                    late);
    }
    if (p.action != PageAction::update && !p.incident.empty()) {
      hooks_.record(
          book_.record(p.incident, delivery_event(p, "delivered",
                                                  "page delivered to " + p.target + " (" +
                                                      std::string(to_string(p.action)) + ")" + late,
                                                  now)));
    }
  } else if (v.kind == Verdict::Kind::permanent) {
    ++pages_failed_;
    ++page_counts_[{p.notifier, "failed"}];
    sys::log(sys::LogLevel::err, what + " REFUSED, not retried: " + v.why,
             {{"VIGIL_INCIDENT", p.incident}});
    if (!p.incident.empty()) {
      hooks_.record(book_.record(
          p.incident,
          delivery_event(p, "failed", "page to " + p.target + " refused, not retried: " + v.why,
                         now)));
    }
    (void)outbox_.done(seq, "failed: " + v.why);
  } else {
    ++page_counts_[{p.notifier, "retried"}];
    const int attempts = p.attempts + 1;
    std::uniform_real_distribution<double> jitter(0.0, 1.0);
    const Duration wait = backoff(attempts, jitter(rng_), v.retry_after);
    outbox_.retry(seq, now + wait, v.why);
    if (attempts == 1 || attempts % kLogEvery == 0) {
      sys::log(sys::LogLevel::warning,
               what + " failed (attempt " + std::to_string(attempts) + "): " + v.why +
                   "; retrying in " + seconds_text(wait) + ", it stays queued on disk",
               {{"VIGIL_INCIDENT", p.incident}});
    }
  }
  deliver(now);
}

void Paging::send_heartbeats(TimePoint now) {
  if (now < heartbeat_at_) return;
  heartbeat_at_ = now + config_.paging.heartbeat_every;
  auto note = [this](const std::string& target, const sys::HttpResponse& resp) {
    const bool ok = resp.transport == FailureKind::none && resp.status >= 200 && resp.status < 300;
    const std::string why =
        resp.transport != FailureKind::none ? resp.error : "HTTP " + std::to_string(resp.status);
    if (ok && heartbeat_failing_.erase(target) > 0) {
      const std::size_t woken = outbox_.wake(target, hooks_.clock());
      sys::log_info("heartbeat to " + target + " works again" +
                    (woken > 0 ? "; " + std::to_string(woken) + " queued page(s) to it are sent now"
                               : std::string()));
    } else if (!ok && heartbeat_failing_.insert(target).second) {
      sys::log_warning("heartbeat to " + target + " failed: " + why +
                       "; central will see vigil as dead if this goes on");
    }
  };
  for (const NotifyConfig& n : config_.notify) {
    if (n.kind != NotifierKind::alertmanager || !n.heartbeat) continue;
    Page hb;
    hb.notifier = n.name;
    hb.action = PageAction::heartbeat;
    hb.host = config_.agent.hostname;
    hb.started = started_;
    hb.at = now;
    RenderContext ctx;
    ctx.now = now;
    ctx.link_base = config_.paging.link_base;
    ctx.heartbeat_every = config_.paging.heartbeat_every;
    ctx.fleet = config_.fleet.name;
    for (std::size_t i = 0; i < n.urls.size(); ++i) {
      auto req = render(n, i, hb, ctx);
      if (!req || req->skip) continue;
      sys::HttpRequest hr;
      hr.url = req->url;
      hr.method = req->method;
      hr.headers = req->headers;
      hr.body = std::move(req->body);
      hr.timeout = n.timeout;
      hr.verify_tls = n.verify_tls;
      hr.body_limit = 1024;
      const std::string target = n.name + "#" + std::to_string(i);
      hooks_.send(hr, [note, target](sys::HttpResponse resp) { note(target, resp); });
    }
  }
  if (!config_.paging.heartbeat_url.empty()) {
    sys::HttpRequest hr;
    hr.url = config_.paging.heartbeat_url;
    hr.timeout = Duration{10'000};
    hr.body_limit = 1024;
    hooks_.send(hr, [note](sys::HttpResponse resp) { note("heartbeat_url", resp); });
  }
}

void Paging::acknowledge(const std::string& id, const std::string& text,
                         std::map<std::string, std::string> fields, TimePoint now) {
  const Incident* inc = book_.find(id);
  if (inc == nullptr || !inc->open()) return;
  TimelineEvent e;
  e.at = now;
  e.type = TimelineEvent::Type::ack;
  e.text = text;
  e.fields = std::move(fields);
  const std::string key = inc->dedupe_key;
  hooks_.record(book_.record(id, e));
  if (hooks_.close_circuit(key)) {
    TimelineEvent n;
    n.at = now;
    n.type = TimelineEvent::Type::note;
    n.text =
        "circuit closed by the ack: automatic mitigations may run again on the next failure "
        "(this incident's ladder stays where it is)";
    hooks_.record(book_.record(id, n));
  }
}

void Paging::poll_silences(TimePoint now) {
  if (now < silences_at_) return;
  silences_at_ = now + kSilencePoll;
  // Only worth asking when an open, unacknowledged incident was paged to an Alertmanager.
  std::set<std::string> notifiers;
  for (const Incident* inc : book_.open()) {
    const PagedState st = paged_state(*inc);
    if (st.acknowledged) continue;
    for (const auto& [name, t] : st.targets) {
      const NotifyConfig* n = config_.find_notify(name);
      if (n != nullptr && n->kind == NotifierKind::alertmanager && t.triggered) {
        notifiers.insert(name);
      }
    }
  }
  for (const std::string& name : notifiers) {
    const NotifyConfig* n = config_.find_notify(name);
    // Silences are gossiped to every peer: asking one is enough; take turns so a dead peer
    // does not hide them for long.
    const std::size_t peer =
        static_cast<std::size_t>(now.time_since_epoch().count() / kSilencePoll.count()) %
        n->urls.size();
    std::string base = n->urls[peer];
    while (!base.empty() && base.back() == '/') base.pop_back();
    sys::HttpRequest hr;
    hr.url = base +
             "/api/v2/alerts?active=false&silenced=true&inhibited=true&unprocessed=false"
             "&filter=" +
             percent_encode("alertname=\"VigilIncident\"") +
             "&filter=" + percent_encode("host=\"" + config_.agent.hostname + "\"");
    hr.timeout = n->timeout;
    hr.verify_tls = n->verify_tls;
    hr.body_limit = 1024 * 1024;
    hooks_.send(hr, [this](sys::HttpResponse resp) {
      if (resp.transport != FailureKind::none || resp.status != 200) return;
      auto parsed = parse_json(resp.body);
      if (!parsed || !parsed->is_array()) return;
      const TimePoint at = hooks_.clock();
      for (const nlohmann::json& a : *parsed) {
        if (!a.is_object()) continue;
        const auto labels = a.find("labels");
        const auto status = a.find("status");
        if (labels == a.end() || status == a.end() || !labels->is_object() ||
            !status->is_object()) {
          continue;
        }
        // Alertmanager's answer is network input: a non-string label must not throw.
        const auto label = labels->find("incident");
        const std::string id =
            label != labels->end() && label->is_string() ? label->get<std::string>() : "";
        const auto by = status->find("silencedBy");
        if (id.empty() || by == status->end() || !by->is_array() || by->empty()) continue;
        const Incident* inc = book_.find(id);
        if (inc == nullptr || !inc->open() || paged_state(*inc).acknowledged) continue;
        const std::string silence = (*by)[0].is_string() ? (*by)[0].get<std::string>() : "";
        acknowledge(id, "acknowledged by Alertmanager silence " + silence,
                    {{"by", "alertmanager"}, {"silence", silence}}, at);
      }
    });
  }
}

nlohmann::json Paging::json(TimePoint now) const {
  nlohmann::json j = {{"queued", outbox_.size()},
                      {"queued_sev1", outbox_.size(Severity::sev1)},
                      {"queued_sev2", outbox_.size(Severity::sev2)},
                      {"queued_sev3", outbox_.size(Severity::sev3)},
                      {"in_flight", sending_.size()},
                      {"queued_total", pages_queued_},
                      {"delivered_total", pages_delivered_},
                      {"failed_total", pages_failed_},
                      {"dropped_total", outbox_.dropped_total()},
                      {"heartbeat_failing", heartbeat_failing_}};
  if (const auto oldest = outbox_.oldest()) {
    j["oldest"] = format_time(*oldest);
    j["oldest_age_seconds"] = std::chrono::duration<double>(now - *oldest).count();
  }
  nlohmann::json names = nlohmann::json::array();
  for (const NotifyConfig& n : config_.notify) names.push_back(n.name);
  j["notifiers"] = names;
  return j;
}

}  // namespace vigil
