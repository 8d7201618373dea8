// The journal matcher and its sliding window: the fuzz input is a stream of journal messages
// (one per line) fed to JournalScanner::scan at increasing times, as the live probe does, with
// expire() between them. The settings come from parse_config, so the RE2 patterns are compiled
// exactly as the agent compiles them.
//
// Lines starting with '@' are directives, not messages: "@+N" moves the clock N seconds on (each
// message line moves it 1 s on), "@-N" moves it back (late entries; the exact model below is
// then switched off), "@x" calls expire() now.
//
// Invariants: a reported key that was not rejected parses as an IP (and is canonical); a count
// is never above the configured one; the prefilter never hides a line the regex matches (the
// scanner agrees with a plain RE2 match of every pattern); and while the clock only moves on, an
// exact model of "count matches per key within the window" (crossed once, recovered by expire,
// new_key and key_id) agrees with KeyedWindow, also for a scanner that must evict keys.
#include <re2/re2.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/ip.h"
#include "agent/load_config.h"
#include "probes/journal.h"
#include "tests/fuzz/fuzz_common.h"

namespace vigil {
namespace {

// The brief's check: sshd's failed logins per source address, 3 within 10 minutes, aimed by
// what journald records itself (unit and uid); plus the five patterns of bench/sshd.toml.
constexpr std::string_view kConfig = R"toml(
[agent]
state_dir = "/tmp"

[[check]]
name = "ssh"
probe = "journal"
unit = "ssh.service"
uid = 0
pattern = '^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
count = 3
window = "10m"

[[check]]
name = "ssh-bench"
probe = "journal"
unit = "ssh.service"
patterns = [
  '^Failed (?:password|publickey) for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+) port \d+',
  '^Invalid user (?P<user>\S*) from (?P<ip>\S+) port \d+',
  '^Connection closed by (?:invalid user |authenticating user )(?P<user>\S*) (?P<ip>\S+) port \d+ \[preauth\]',
  '^Disconnected from (?:invalid user |authenticating user )(?P<user>\S*) (?P<ip>\S+) port \d+ \[preauth\]',
  '^error: maximum authentication attempts exceeded for (?:invalid user )?(?P<user>\S*) from (?P<ip>\S+) port \d+',
]
ignore = 'from 192\.0\.2\.'
key = "ip"
count = 5
window = "2m"
)toml";

const TimePoint kStart = TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 1 / 1));
constexpr std::chrono::hours kSpan{24 * 365 * 100};

const Config& config() {
  static const Config cfg = [] {
    LoadResult r = parse_config(kConfig, "fuzz_journal.toml");
    if (!r.config) {
      for (const ConfigError& e : r.errors) std::fprintf(stderr, "%s\n", e.to_string().c_str());
      std::abort();
    }
    return std::move(*r.config);
  }();
  return cfg;
}

// What KeyedWindow must say, computed the slow, obvious way (valid while times never go back).
class WindowModel {
 public:
  WindowModel(Duration window, int threshold) : window_(window), threshold_(threshold) {}

  struct Expect {
    int count = 0;
    bool crossed = false;
    bool new_key = false;
    std::optional<std::uint32_t> id;  // the id the key had, when it is not new
  };
  Expect add(const std::string& key, TimePoint at) {
    Expect e;
    auto it = keys_.find(key);
    e.new_key = it == keys_.end();
    if (e.new_key) {
      it = keys_.emplace(key, Key{}).first;
    } else {
      e.id = it->second.id;
    }
    Key& k = it->second;
    k.times.push_back(at);
    k.seen = ++clock_;
    int n = 0;
    for (const TimePoint t : k.times) n += t > at - window_ && t <= at ? 1 : 0;
    e.count = std::min(n, threshold_);
    if (e.count >= threshold_ && !k.crossed) {
      k.crossed = true;
      e.crossed = true;
    }
    return e;
  }
  void set_id(const std::string& key, std::uint32_t id) { keys_.at(key).id = id; }

  // The keys expire() must report, least recently seen first; forgets what expire() drops.
  std::vector<std::string> expire(TimePoint now) {
    const TimePoint cutoff = now - window_;
    std::vector<std::pair<std::uint64_t, std::string>> recovered;
    for (auto it = keys_.begin(); it != keys_.end();) {
      Key& k = it->second;
      std::erase_if(k.times, [&](TimePoint t) { return t <= cutoff; });
      if (k.crossed && static_cast<int>(k.times.size()) < threshold_) {
        k.crossed = false;
        recovered.emplace_back(k.seen, it->first);
      }
      it = k.times.empty() ? keys_.erase(it) : std::next(it);
    }
    std::sort(recovered.begin(), recovered.end());
    std::vector<std::string> out;
    for (auto& [seen, key] : recovered) out.push_back(std::move(key));
    return out;
  }

  int count(const std::string& key, TimePoint now) const {
    const auto it = keys_.find(key);
    if (it == keys_.end()) return 0;
    int n = 0;
    for (const TimePoint t : it->second.times) n += t > now - window_ && t <= now ? 1 : 0;
    return std::min(n, threshold_);
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& [key, k] : keys_) out.push_back(key);
    return out;
  }

 private:
  struct Key {
    std::vector<TimePoint> times;
    bool crossed = false;
    std::uint64_t seen = 0;
    std::uint32_t id = 0;
  };
  Duration window_;
  int threshold_;
  std::map<std::string, Key> keys_;
  std::uint64_t clock_ = 0;
};

// What the scanner must say about a line, from plain RE2 matches: the key of the first pattern
// that matches, unless an ignore pattern matches too.
struct Direct {
  bool hit = false;
  std::string key;
};
Direct direct_match(const JournalSettings& j, std::string_view line) {
  Direct d;
  const re2::StringPiece text(line.data(), line.size());
  for (const JournalPattern& p : j.patterns) {
    const int group = p.re->NamedCapturingGroups().at(j.key);
    std::vector<re2::StringPiece> caps(static_cast<std::size_t>(group) + 1);
    if (p.re->Match(text, 0, text.size(), re2::RE2::UNANCHORED, caps.data(),
                    static_cast<int>(caps.size()))) {
      d.hit = true;
      d.key = std::string(caps.back().data(), caps.back().size());
      break;
    }
  }
  if (!d.hit) return d;
  for (const JournalPattern& ig : j.ignore) {
    if (re2::RE2::PartialMatch(text, *ig.re)) d.hit = false;
  }
  return d;
}

// One scanner under test, with what is checked about it.
struct Subject {
  const JournalSettings& settings;
  JournalScanner scanner;
  std::optional<WindowModel> model;  // nullopt: keys get evicted, so only the bounds are checked
  std::map<std::string, std::uint32_t> ids;

  Subject(const JournalSettings& s, bool exact)
      : settings(s),
        scanner(s),
        model(exact ? std::optional(WindowModel(s.window, s.count)) : std::nullopt) {}

  void scan(std::string_view line, TimePoint at, bool in_order) {
    const JournalScanner::Result r = scanner.scan(line, at);
    const Direct d = direct_match(settings, line);
    // The prefilter must never hide a match, nor the scanner invent one.
    FUZZ_CHECK(d.hit == (r.matched || !r.rejected.empty()));
    FUZZ_CHECK(!(r.matched && !r.rejected.empty()));
    FUZZ_CHECK(r.count >= 0 && r.count <= settings.count);
    if (!r.rejected.empty()) {
      FUZZ_CHECK(r.key.empty());
      FUZZ_CHECK(!parse_ip(d.key).has_value());
      FUZZ_CHECK(fuzz::printable_ascii(r.rejected));
      return;
    }
    if (!r.matched) {
      // (key may hold the capture of a line an ignore pattern dropped: not reported.)
      FUZZ_CHECK(!r.crossed && r.count == 0);
      return;
    }
    // The key is an address, in canonical form, and the one the regex captured.
    const Result<IpAddress> ip = parse_ip(r.key);
    FUZZ_CHECK(ip.has_value());
    FUZZ_CHECK(ip->to_string() == r.key);
    const Result<IpAddress> captured = parse_ip(d.key);
    FUZZ_CHECK(captured.has_value() && *captured == *ip);
    FUZZ_CHECK(r.count >= 1);
    FUZZ_CHECK(!r.crossed || r.count == settings.count);
    FUZZ_CHECK(scanner.count(r.key, at) <= settings.count);
    if (!model || !in_order) return;
    const WindowModel::Expect e = model->add(r.key, at);
    FUZZ_CHECK(r.count == e.count);
    FUZZ_CHECK(r.crossed == e.crossed);
    FUZZ_CHECK(r.new_key == e.new_key);
    if (e.id) FUZZ_CHECK(r.key_id == *e.id);
    model->set_id(r.key, r.key_id);
  }

  void expire(TimePoint now, bool in_order) {
    const std::vector<std::string> recovered = scanner.expire(now);
    for (const std::string& key : recovered) {
      FUZZ_CHECK(parse_ip(key).has_value());
      FUZZ_CHECK(scanner.count(key, now) < settings.count);
    }
    if (!model || !in_order) return;
    FUZZ_CHECK(recovered == model->expire(now));
    for (const std::string& key : model->keys()) {
      FUZZ_CHECK(scanner.count(key, now) == model->count(key, now));
    }
  }
};

}  // namespace
}  // namespace vigil

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const Config& cfg = config();
  const JournalSettings& ssh = *cfg.checks[0].journal();
  const JournalSettings& bench = *cfg.checks[1].journal();
  // The same check with room for two keys only: the eviction path, under the same bounds.
  static const JournalSettings tiny = [&] {
    JournalSettings s = ssh;
    s.max_keys = 2;
    return s;
  }();
  Subject subjects[] = {{ssh, true}, {bench, true}, {tiny, false}};

  const std::string_view text = fuzz::as_text(data, size);
  TimePoint now = kStart;
  bool in_order = true;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && line[0] == '@') {
      if (line.size() >= 2 && (line[1] == '+' || line[1] == '-')) {
        long long n = 0;
        for (std::size_t i = 2; i < line.size() && i < 9 && line[i] >= '0' && line[i] <= '9'; ++i)
          n = n * 10 + (line[i] - '0');
        const TimePoint next = now + std::chrono::seconds(line[1] == '+' ? n : -n);
        // Within a century of the start: far from TimePoint's limits (the harness's own).
        if (next > kStart - kSpan && next < kStart + kSpan) {
          if (next < now) in_order = false;
          now = next;
        }
      }
      for (Subject& s : subjects) s.expire(now, in_order);
      continue;
    }
    now += std::chrono::seconds(1);
    for (Subject& s : subjects) s.scan(line, now, in_order);
  }
  for (Subject& s : subjects) s.expire(now + std::chrono::hours(1), in_order);
  return 0;
}
