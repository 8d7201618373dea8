// KeyedWindow: "at least N matches within a window, per captured key" (fail2ban's maxretry /
// findtime), with memory bounded both per key and in the number of keys. Pure: no clock of its
// own (times come with each call), so it is tested without sleeping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/duration.h"
#include "agent/observation.h"

namespace vigil {

class KeyedWindow {
 public:
  // Values out of range are clamped (window to at least 1ms, threshold and max_keys to at least
  // 1); the config layer is where bad values are reported to the operator.
  struct Options {
    // fail2ban's default findtime: long enough to catch a slow password guesser, short enough
    // that a user mistyping now and then never adds up.
    Duration window = std::chrono::minutes(10);
    // fail2ban's default maxretry: a human rarely fails five times in ten minutes, a script does.
    int threshold = 5;
    // Bounds memory under a spoofed-source flood (each key costs ~150 bytes plus 8 per kept
    // timestamp), while far exceeding the sources one host sees in a window.
    std::size_t max_keys = 10'000;
  };

  struct Hit {
    int count = 0;         // matches of the key within the window, at most `threshold`
    bool crossed = false;  // true on the one add() at which the key reaches `threshold`
  };

  explicit KeyedWindow(Options options);

  // Keys are looked up through views into the LRU list's own strings, so a copy would point
  // into the original; moving keeps the list nodes and so stays valid.
  KeyedWindow(const KeyedWindow&) = delete;
  KeyedWindow& operator=(const KeyedWindow&) = delete;
  KeyedWindow(KeyedWindow&&) = default;
  KeyedWindow& operator=(KeyedWindow&&) = default;

  // Records one match of `key` at `at` and makes the key the most recently seen. Returns the
  // number of the key's matches within (at - window, at], capped at threshold; when `at` arrives
  // out of order (older than matches already recorded), the count is the largest number of
  // matches within any window-long span that contains `at`, so a late match still completes a
  // burst. `crossed` is true exactly once when the count reaches threshold, and again only after
  // expire() reported the key as back below it. A new key beyond max_keys evicts the least
  // recently seen key (forgotten without a recovered report; see evicted()).
  Hit add(const std::string& key, TimePoint at);

  // Drops every match at or before now - window (outside (now - window, now]) and erases keys
  // left with none. Returns the keys that had crossed and are now below threshold, least
  // recently seen first, so the caller can report them recovered. O(number of keys).
  std::vector<std::string> expire(TimePoint now);

  // The number of the key's recorded matches within (now - window, now]; 0 for an unknown key.
  // Never more than threshold: only the newest `threshold` matches are kept per key.
  int count(const std::string& key, TimePoint now) const;

  // The number of keys tracked, at most max_keys.
  std::size_t size() const { return map_.size(); }

  // How many keys were evicted to stay within max_keys since construction. A rising value means
  // the window is under a flood of distinct keys; the caller logs it.
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    std::string key;
    std::vector<TimePoint> times;  // sorted oldest first; at most threshold entries
    bool crossed = false;
  };
  using List = std::list<Entry>;

  Options options_;
  List lru_;  // most recently seen first
  // Keyed by views of Entry::key inside lru_; list nodes never move, so the views stay valid.
  std::unordered_map<std::string_view, List::iterator> map_;
  std::uint64_t evicted_ = 0;
};

}  // namespace vigil
