#include "probes/journal.h"

#include <re2/re2.h>

#include <cstring>

#include "agent/core/ip.h"
#include "agent/sys/log.h"

namespace vigil {
namespace {

bool is_special(char c) { return std::strchr(".^$*+?()[]{}|\\", c) != nullptr; }
bool is_quantifier(char c) { return c == '*' || c == '?' || c == '{' || c == '+'; }

// Why 400: the matched line kept as evidence stays readable in a page.
constexpr std::size_t kEvidenceBytes = 400;

}  // namespace

namespace {

// What a conservative walk over a pattern proves about it: the literal runs every match must
// contain (top level only), and the run right after a leading '^'. Anything the walk does not
// fully understand ((?flags), \Q..\E, a top-level '|', an odd brace) proves nothing: `ok` is
// false and no prefilter is used. A missing prefilter costs speed; a wrong one loses matches.
struct Walk {
  bool ok = true;
  std::vector<std::string> runs;
  std::string prefix;
};

Walk walk(std::string_view p) {
  Walk w;
  const std::size_t n = p.size();
  std::string run;
  int depth = 0;
  std::size_t i = 0;
  bool prefix_open = n > 0 && p[0] == '^';
  if (prefix_open) i = 1;
  auto brk = [&] {
    if (prefix_open) w.prefix = run;
    prefix_open = false;
    if (!run.empty()) w.runs.push_back(run);
    run.clear();
  };
  auto fail = [&] {
    w.ok = false;
    return w;
  };
  while (i < n) {
    const char c = p[i];
    if (c == '\\') {
      if (i + 1 >= n || p[i + 1] == 'Q') return fail();
      const char d = p[i + 1];
      brk();
      i += 2;
      if ((d == 'x' || d == 'p' || d == 'P') && i < n && p[i] == '{') {
        const std::size_t close = p.find('}', i);
        if (close == std::string_view::npos) return fail();
        i = close + 1;
      } else if (d == 'x') {
        i += 2;
      } else if (d == 'p' || d == 'P') {
        i += 1;
      } else if (d >= '0' && d <= '9') {
        for (int k = 0; k < 2 && i < n && p[i] >= '0' && p[i] <= '9'; ++k) ++i;
      }
      continue;
    }
    if (c == '[') {
      brk();
      ++i;
      if (i < n && p[i] == '^') ++i;
      if (i < n && p[i] == ']') ++i;  // a ']' first in a class is a member
      while (i < n && p[i] != ']') {
        if (p[i] == '\\') {
          i += 2;
        } else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
          const std::size_t close = p.find(":]", i + 2);
          if (close == std::string_view::npos) return fail();
          i = close + 2;
        } else {
          ++i;
        }
      }
      if (i >= n) return fail();
      ++i;
      continue;
    }
    if (c == '(' && depth == 0) {
      // A non-capturing group of plain literal alternatives, not quantified, e.g.
      // "(?:invalid user |authenticating user )": every match passes through one alternative,
      // so their common prefix continues the run before the group and their common suffix
      // starts the run after it.
      const std::size_t close = p.find(')', i);
      if (p.substr(i, 3) == "(?:" && close != std::string_view::npos &&
          (close + 1 >= n || !is_quantifier(p[close + 1]))) {
        const std::string_view body = p.substr(i + 3, close - i - 3);
        bool plain = !body.empty();
        for (const char b : body) plain = plain && (b == '|' || !is_special(b));
        if (plain) {
          std::vector<std::string_view> alts;
          for (std::size_t from = 0;;) {
            const std::size_t bar = body.find('|', from);
            alts.push_back(body.substr(from, bar == std::string_view::npos ? bar : bar - from));
            if (bar == std::string_view::npos) break;
            from = bar + 1;
          }
          std::string_view pre = alts[0];
          std::string_view suf = alts[0];
          for (const std::string_view a : alts) {
            std::size_t k = 0;
            while (k < pre.size() && k < a.size() && pre[k] == a[k]) ++k;
            pre = pre.substr(0, k);
            k = 0;
            while (k < suf.size() && k < a.size() &&
                   suf[suf.size() - 1 - k] == a[a.size() - 1 - k]) {
              ++k;
            }
            suf = suf.substr(suf.size() - k);
          }
          if (alts.size() == 1) {
            run += pre;  // one alternative: the group is a plain literal
          } else {
            run += pre;
            brk();
            run = std::string(suf);
          }
          i = close + 1;
          continue;
        }
      }
    }
    if (c == '(') {
      brk();
      if (p.substr(i, 2) == "(?" && p.substr(i, 3) != "(?:" && p.substr(i, 4) != "(?P<") {
        return fail();  // flags such as (?i), (?s), (?U): not worth reasoning about
      }
      ++depth;
      ++i;
      continue;
    }
    if (c == ')') {
      brk();
      --depth;
      ++i;
      continue;
    }
    if (c == '|') {
      if (depth == 0) return fail();  // top-level alternation: nothing is required
      brk();
      ++i;
      continue;
    }
    if (c == '{') {
      brk();
      const std::size_t close = p.find('}', i);
      if (close == std::string_view::npos) return fail();
      // Only {N}, {N,} and {N,M} repeat; RE2 reads any other brace as literal text, and what
      // follows it (a '|' in "{2,|x}") still counts (found by fuzz_prefilter: skipping to the
      // '}' hid a top-level alternation, and the prefix filter then dropped matching lines).
      const std::string_view body = p.substr(i + 1, close - i - 1);
      const std::size_t comma = body.find(',');
      const auto digits = [](std::string_view d) {
        return std::all_of(d.begin(), d.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
      };
      const std::string_view low = body.substr(0, comma);
      const std::string_view high =
          comma == std::string_view::npos ? std::string_view() : body.substr(comma + 1);
      if (low.empty() || !digits(low) || !digits(high)) return fail();
      i = close + 1;
      continue;
    }
    if (is_special(c) || depth > 0 || (i + 1 < n && is_quantifier(p[i + 1]))) {
      // syntax; or inside a group (maybe optional); or made optional/repeated by a quantifier
      brk();
      ++i;
      continue;
    }
    run += c;
    ++i;
  }
  brk();
  return w;
}

}  // namespace

sys::JournalFilter journal_filter(const JournalSettings& j) {
  sys::JournalFilter f;
  f.units = j.units;
  f.identifiers = j.identifiers;
  f.max_priority = j.max_priority;
  f.comms = j.comms;
  f.exes = j.exes;
  f.uids = j.uids;
  f.transports = j.transports;
  return f;
}

std::string required_literal(std::string_view p) {
  const Walk w = walk(p);
  if (!w.ok) return {};
  std::string best;
  for (const std::string& r : w.runs) {
    if (r.size() > best.size()) best = r;
  }
  return best;
}

std::string required_prefix(std::string_view p) {
  const Walk w = walk(p);
  return w.ok ? w.prefix : std::string();
}

JournalScanner::JournalScanner(const JournalSettings& s)
    : settings_(s), window_(KeyedWindow::Options{s.window, s.count, s.max_keys}) {
  for (const JournalPattern& p : s.patterns) {
    std::string prefix = required_prefix(p.source);
    std::string longest = required_literal(p.source);
    prefix_.push_back(!prefix.empty());
    // With a prefix, the longest required run is a second test, when it is another run.
    inner_.push_back(!prefix.empty() && longest != prefix ? longest : std::string());
    literals_.push_back(prefix.empty() ? std::move(longest) : std::move(prefix));
    // Looked up once here, not per line (NamedCapturingGroups is a std::map).
    const auto& groups = p.re->NamedCapturingGroups();
    const auto g = s.key.empty() ? groups.end() : groups.find(s.key);
    key_group_.push_back(g == groups.end() ? 0 : g->second);
  }
}

JournalScanner::Result JournalScanner::scan(std::string_view message, TimePoint at) {
  return scan(message, [at] { return at; });
}

JournalScanner::Result JournalScanner::scan(std::string_view message,
                                            const std::function<TimePoint()>& at) {
  Result out;
  const re2::StringPiece text(message.data(), message.size());
  const JournalPattern* hit = nullptr;
  bool any_candidate = false;
  for (std::size_t i = 0; i < settings_.patterns.size(); ++i) {
    const std::string& lit = literals_[i];
    if (prefix_[i]) {
      // The first byte inline rejects most lines without a call to memcmp.
      if (message.size() < lit.size() || message[0] != lit[0] ||
          std::memcmp(message.data(), lit.data(), lit.size()) != 0) {
        continue;
      }
      const std::string& inner = inner_[i];
      if (!inner.empty() && memmem(message.data() + lit.size(), message.size() - lit.size(),
                                   inner.data(), inner.size()) == nullptr) {
        continue;
      }
    } else if (!lit.empty() &&
               memmem(message.data(), message.size(), lit.data(), lit.size()) == nullptr) {
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
    const int index = key_group_[i];
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
  // Why 256: longer than any unit name, user name or host name a rule keys on; a key is kept
  // per entry and shown in titles and pages, so an attacker's 10 kB capture must not be.
  constexpr std::size_t kMaxKeyBytes = 256;
  if (out.key.size() > kMaxKeyBytes) {
    out.rejected = "a key of " + std::to_string(out.key.size()) + " bytes (at most " +
                   std::to_string(kMaxKeyBytes) + ")";
    out.key.clear();
    return out;
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
    // A plain dotted quad is already canonical (parse_ip refuses leading zeros): keep it as is.
    if (ip->family != IpAddress::Family::v4 || out.key.find(':') != std::string::npos) {
      out.key = ip->to_string();
    }
  }
  out.matched = true;
  const KeyedWindow::Hit h = window_.add(out.key, at());
  out.crossed = h.crossed;
  out.count = h.count;
  out.key_id = h.id;
  out.new_key = h.new_key;
  return out;
}

JournalProbe::JournalProbe(ProbeContext ctx, CheckConfig check)
    : ctx_(ctx), check_(std::move(check)), scanner_(*check_.journal()), tick_(ctx.io) {}

JournalProbe::~JournalProbe() { cancel(); }

void JournalProbe::watch(Done on_observation) {
  on_observation_ = std::move(on_observation);
  const JournalSettings& j = *check_.journal();
  sys::JournalFollower::Options o;
  o.filter = journal_filter(j);
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
  JournalScanner::Result r = scanner_.scan(e.message, [&e] { return e.at(); });
  if (!r.rejected.empty()) {
    // Counted, and logged now and then: a flood of garbage must not flood the log.
    if (rejected_++ % 1000 == 0) {
      const std::string& k = check_.journal()->key;
      sys::log_warning("check '" + check_.name + "': ignored a match whose '" + k + "' " +
                       (k == "ip" && r.rejected.rfind("a key of ", 0) != 0
                            ? "is not an IP address: "
                            : "was refused: ") +
                       r.rejected + " (" + std::to_string(rejected_) + " so far)");
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
  obs.at = e.at();
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
    // Keys failing before a restart that the warm-up did not find at their count again: their
    // window ran out while vigil was down.
    const int threshold = self->check_.journal()->count;
    for (const std::string& key : self->assumed_) {
      if (self->scanner_.count(key, Clock::now()) < threshold) self->recovering_.emplace(key, 0);
    }
    self->assumed_.clear();
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
  auto journal = sys::Journal::open(sys::JournalSource{}, journal_filter(j));
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
    JournalScanner::Result r = scanner_.scan(e.message, [&e] { return e.at(); });
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
