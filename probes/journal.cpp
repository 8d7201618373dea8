#include "probes/journal.h"

#include <re2/re2.h>

#include <cstring>

#include "agent/ip.h"
#include "agent/sys/log.h"

namespace vigil {
namespace {

bool is_special(char c) { return std::strchr(".^$*+?()[]{}|\\", c) != nullptr; }
bool is_quantifier(char c) { return c == '*' || c == '?' || c == '{' || c == '+'; }

// Why 400: the matched line kept as evidence stays readable in a page.
constexpr std::size_t kEvidenceBytes = 400;

}  // namespace

std::string required_literal(std::string_view p) {
  if (p.find("(?i") != std::string_view::npos) return {};  // case-insensitive: no literal
  std::string best, run;
  int depth = 0;
  bool in_class = false;
  auto flush = [&] {
    if (run.size() > best.size()) best = run;
    run.clear();
  };
  for (std::size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (in_class) {
      if (c == '\\') ++i;
      if (c == ']') in_class = false;
      continue;
    }
    if (c == '\\') {  // an escape: \d, \S, \. ... ends a run (kept simple and safe)
      flush();
      ++i;
      continue;
    }
    if (c == '[') {
      flush();
      in_class = true;
      continue;
    }
    if (c == '(') {
      flush();
      ++depth;
      continue;
    }
    if (c == ')') {
      flush();
      --depth;
      continue;
    }
    if (c == '|') {
      if (depth == 0) return {};  // top-level alternation: no literal is required
      flush();
      continue;
    }
    if (depth > 0 || is_special(c)) {
      flush();
      continue;
    }
    // A literal char at top level, unless a quantifier makes it optional or repeated.
    if (i + 1 < p.size() && is_quantifier(p[i + 1])) {
      flush();
      continue;
    }
    run += c;
  }
  flush();
  return best;
}

JournalScanner::JournalScanner(const JournalSettings& s)
    : settings_(s), window_(KeyedWindow::Options{s.window, s.count, s.max_keys}) {
  for (const JournalPattern& p : s.patterns) literals_.push_back(required_literal(p.source));
}

JournalScanner::Result JournalScanner::scan(std::string_view message, TimePoint at) {
  Result out;
  const re2::StringPiece text(message.data(), message.size());
  const JournalPattern* hit = nullptr;
  bool any_candidate = false;
  for (std::size_t i = 0; i < settings_.patterns.size(); ++i) {
    const std::string& lit = literals_[i];
    if (!lit.empty() && memmem(message.data(), message.size(), lit.data(), lit.size()) == nullptr) {
      continue;
    }
    any_candidate = true;
    const JournalPattern& p = settings_.patterns[i];
    if (settings_.key.empty()) {
      if (re2::RE2::PartialMatch(text, *p.re)) {
        hit = &p;
        break;
      }
      continue;
    }
    // Capture only the key group.
    const auto& groups = p.re->NamedCapturingGroups();
    const int index = groups.at(settings_.key);
    std::vector<re2::StringPiece> caps(static_cast<std::size_t>(index) + 1);
    if (p.re->Match(text, 0, text.size(), re2::RE2::UNANCHORED, caps.data(),
                    static_cast<int>(caps.size()))) {
      hit = &p;
      out.key = std::string(caps[static_cast<std::size_t>(index)].data(),
                            caps[static_cast<std::size_t>(index)].size());
      break;
    }
  }
  if (!any_candidate) ++prefiltered_;
  if (hit == nullptr) return out;
  for (const JournalPattern& ig : settings_.ignore) {
    if (re2::RE2::PartialMatch(text, *ig.re)) return out;
  }
  if (settings_.key == "ip") {
    // Text from the journal is hostile until proven an address: parse strictly, pass on only
    // the canonical form.
    ::vigil::Result<IpAddress> ip = parse_ip(out.key);
    if (!ip) {
      out.rejected = ip.error().message;
      out.key.clear();
      return out;
    }
    out.key = ip->to_string();
  }
  out.matched = true;
  const KeyedWindow::Hit h = window_.add(out.key, at);
  out.crossed = h.crossed;
  out.count = h.count;
  return out;
}

JournalProbe::JournalProbe(ProbeContext ctx, CheckConfig check)
    : ctx_(ctx), check_(std::move(check)), scanner_(*check_.journal()), tick_(ctx.io) {}

JournalProbe::~JournalProbe() { cancel(); }

void JournalProbe::watch(Done on_observation) {
  on_observation_ = std::move(on_observation);
  const JournalSettings& j = *check_.journal();
  sys::JournalFollower::Options o;
  o.filter = sys::JournalFilter{j.units, j.identifiers, j.max_priority};
  o.cursor_file = ctx_.state_dir + "/journal/" + check_.name + ".cursor";
  o.catch_up = j.catch_up;
  o.warm_up = j.window;
  follower_ = std::make_unique<sys::JournalFollower>(ctx_.io, std::move(o));
  auto started = follower_->start([this](const sys::JournalEntry& e) { entry(e); });
  if (!started) {
    sys::log_error("check '" + check_.name + "': " + started.error().message);
  }
  arm_tick();
}

void JournalProbe::entry(const sys::JournalEntry& e) {
  JournalScanner::Result r = scanner_.scan(e.message, e.at);
  if (!r.rejected.empty()) {
    // Counted, and logged now and then: a flood of garbage must not flood the log.
    if (rejected_++ % 1000 == 0) {
      sys::log_warning("check '" + check_.name + "': ignored a match whose '" +
                       check_.journal()->key + "' is not an IP address: " + r.rejected + " (" +
                       std::to_string(rejected_) + " so far)");
    }
    return;
  }
  if (scanner_.evicted() > warned_evicted_) {
    sys::log_warning("check '" + check_.name + "': more than " +
                     std::to_string(check_.journal()->max_keys) +
                     " keys within the window; the least recently seen were dropped (" +
                     std::to_string(scanner_.evicted()) + " so far)");
    // Warn again only after ten times as many.
    warned_evicted_ = scanner_.evicted() * 10;
  }
  if (!r.crossed || !on_observation_ || e.warm_up) return;
  recovering_.erase(r.key);
  Observation obs;
  obs.check = check_.name;
  obs.key = r.key;
  obs.at = e.at;
  obs.failure = FailureKind::journal_match;
  const JournalSettings& j = *check_.journal();
  obs.summary = j.count == 1
                    ? "journal: " + std::string(e.message.substr(0, kEvidenceBytes))
                    : std::to_string(r.count) + " matches within " + format_duration(j.window) +
                          (r.key.empty() ? "" : " from " + r.key) +
                          ", last: " + std::string(e.message.substr(0, kEvidenceBytes));
  obs.evidence.emplace_back(e.message.substr(0, kEvidenceBytes));
  on_observation_(obs);
}

void JournalProbe::arm_tick() {
  tick_.expires_after(check_.interval);
  tick_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self || !self->on_observation_) return;
    for (const std::string& key : self->scanner_.expire(Clock::now())) {
      self->recovering_.emplace(key, 0);
    }
    // A key below its count reports healthy for recover_after ticks, so its finding recovers.
    for (auto it = self->recovering_.begin(); it != self->recovering_.end();) {
      Observation ok;
      ok.check = self->check_.name;
      ok.key = it->first;
      ok.at = Clock::now();
      const JournalSettings& j = *self->check_.journal();
      ok.summary = (j.count == 1 ? std::string("no match")
                                 : "fewer than " + std::to_string(j.count) + " matches") +
                   " within " + format_duration(j.window);
      self->on_observation_(ok);
      if (++it->second >= self->check_.recover_after) {
        it = self->recovering_.erase(it);
      } else {
        ++it;
      }
    }
    self->arm_tick();
  });
}

void JournalProbe::run(Done done) {
  // One-shot: scan the last window of the system journal and report the busiest key.
  const JournalSettings& j = *check_.journal();
  Observation obs;
  obs.check = check_.name;
  obs.at = Clock::now();
  auto journal = sys::Journal::open(sys::JournalSource{}, {j.units, j.identifiers, j.max_priority});
  if (!journal) {
    obs.failure = FailureKind::error;
    obs.summary = journal.error().message;
    done(std::move(obs));
    return;
  }
  (*journal)->seek_realtime(Clock::now() - j.window);
  std::map<std::string, int> counts;
  std::string last_line;
  (*journal)->read(SIZE_MAX, [&](const sys::JournalEntry& e) {
    JournalScanner::Result r = scanner_.scan(e.message, e.at);
    if (!r.matched) return;
    ++counts[r.key];
    if (r.crossed && obs.ok()) {
      obs.failure = FailureKind::journal_match;
      obs.key = r.key;
      last_line = std::string(e.message.substr(0, kEvidenceBytes));
    }
  });
  int total = 0;
  for (const auto& [key, n] : counts) total += n;
  obs.summary = std::to_string(total) + " match(es) within the last " + format_duration(j.window) +
                " from " + std::to_string(counts.size()) + " key(s)";
  if (!obs.ok()) {
    obs.summary += "; rule fired for " + (obs.key.empty() ? check_.name : obs.key);
    obs.evidence.push_back(last_line);
  }
  done(std::move(obs));
}

void JournalProbe::cancel() {
  if (follower_) follower_->stop();
  tick_.cancel();
  on_observation_ = nullptr;
}

}  // namespace vigil
