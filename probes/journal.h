// The journal probe: journal entries of the watched units / identifiers, matched by RE2 patterns
// behind a literal prefilter, counted per captured key in a sliding window (fail2ban's
// maxretry/findtime), or any single match of a severe pattern. Shared by the live probe and
// `vigil replay`.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "agent/detect/window.h"
#include "agent/sys/journal.h"
#include "probes/probe.h"

namespace vigil {

// The longest run of literal text every match of `pattern` must contain, or "" when none can
// be proven (alternation at top level, case-insensitive flags, ...). Used as a memmem prefilter.
std::string required_literal(std::string_view pattern);
// The literal a pattern anchored with '^' must start with ("^Failed (x|y)" -> "Failed "), or "".
// Checked with one memcmp at the start of the line, the cheapest prefilter there is.
std::string required_prefix(std::string_view pattern);

// The sd-journal matches that select a check's entries (units or identifiers, narrowed by the
// trusted fields and the priority).
sys::JournalFilter journal_filter(const JournalSettings& j);

// Pure: one journal message in, what it means out. Keeps the per-key windows.
class JournalScanner {
 public:
  explicit JournalScanner(const JournalSettings& settings);

  struct Result {
    bool matched = false;      // a pattern matched and no ignore pattern did
    std::string key;           // the captured key ("" when the check has none)
    bool crossed = false;      // this match made the key reach `count` within `window`
    int count = 0;             // matches of the key within the window
    std::string rejected;      // why the captured key was refused (e.g. not an IP)
    std::uint32_t key_id = 0;  // see KeyedWindow::Hit::id and new_key
    bool new_key = false;
  };
  Result scan(std::string_view message, TimePoint at);
  // The same, asking for the time only when a line matches (reading it costs a journal lookup).
  Result scan(std::string_view message, const std::function<TimePoint()>& at);
  // Keys that fell below `count` by `now` (they had crossed before).
  std::vector<std::string> expire(TimePoint now) { return window_.expire(now); }
  // Matches of `key` within the window ending at `now`, at most `count`.
  int count(const std::string& key, TimePoint now) const { return window_.count(key, now); }
  std::uint64_t evicted() const { return window_.evicted(); }
  std::uint64_t prefiltered() const { return prefiltered_; }

 private:
  const JournalSettings& settings_;
  std::vector<std::string> literals_;  // per pattern; "" = no prefilter
  std::vector<bool> prefix_;           // per pattern: the literal is the line's start
  std::vector<std::string> inner_;     // per prefixed pattern: another required run, or ""
  std::vector<int> key_group_;         // per pattern: the capture index of the key group
  KeyedWindow window_;
  std::uint64_t prefiltered_ = 0;  // messages skipped without running a regex
};

class JournalProbe : public Probe, public std::enable_shared_from_this<JournalProbe> {
 public:
  JournalProbe(ProbeContext ctx, CheckConfig check);
  ~JournalProbe() override;

  bool event_driven() const override { return true; }
  void watch(Done on_observation) override;
  // test-check: scans the last `window` of the journal once and reports the worst key.
  void run(Done done) override;
  void cancel() override;
  bool running() const override { return static_cast<bool>(on_observation_); }
  void assume_failing(const std::string& key) override { assumed_.insert(key); }

 private:
  void entry(const sys::JournalEntry& e);
  void arm_tick();

  ProbeContext ctx_;
  CheckConfig check_;
  JournalScanner scanner_;
  std::unique_ptr<sys::JournalFollower> follower_;
  boost::asio::steady_timer tick_;
  Done on_observation_;
  std::map<std::string, int> recovering_;  // key -> healthy ticks reported so far
  std::set<std::string> assumed_;          // failing before a restart; checked on the first tick
  std::uint64_t rejected_ = 0;
  std::uint64_t warned_evicted_ = 0;
};

}  // namespace vigil
