// KeyedWindow: "at least N matches within a window, per captured key" (fail2ban's maxretry /
// findtime), with memory bounded both per key and in the number of keys. Pure: no clock of its
// own (times come with each call), so it is tested without sleeping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/observation.h"
#include "agent/detect/string_index.h"

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
    // The key's record: the same id for every add() of the key until new_key is true again
    // (after an eviction or expiry), so a caller can keep its own per-key data in a vector
    // indexed by id and look the key up by name only when new_key is true.
    std::uint32_t id = 0;
    bool new_key = false;
  };

  explicit KeyedWindow(Options options);

  // Records one match of `key` at `at` and makes the key the most recently seen. Returns the
  // number of the key's matches within (at - window, at], capped at threshold; when `at` arrives
  // out of order (older than matches already recorded), the count is the largest number of
  // matches within any window-long span that contains `at`, so a late match still completes a
  // burst. `crossed` is true exactly once when the count reaches threshold, and again only after
  // expire() reported the key as back below it. A new key beyond max_keys evicts one (see
  // evicted()); if it had crossed, the next expire() reports it. Which one: keys seen once are
  // evicted before keys seen again (a segmented LRU: the least recently seen of the keys on
  // probation, and only when none is, the least recently seen repeat key), so a flood of
  // addresses that each fail once cannot push out the guesser that keeps coming back. Repeat
  // keys hold at most 4/5 of max_keys; beyond, the least recent of them goes back on probation.
  Hit add(std::string_view key, TimePoint at);

  // Drops every match at or before now - window (outside (now - window, now]) and erases keys
  // left with none. Returns the keys that had crossed and are now below threshold (keys seen
  // once, then keys seen again, each least recently seen first), after those that had crossed
  // and were evicted since the last call
  // (their incidents must not stay open), so the caller can report them recovered.
  // O(number of keys).
  std::vector<std::string> expire(TimePoint now);

  // The number of the key's recorded matches within (now - window, now]; 0 for an unknown key.
  // Never more than threshold: only the newest `threshold` matches are kept per key.
  int count(std::string_view key, TimePoint now) const;

  // The number of keys tracked, at most max_keys.
  std::size_t size() const { return index_.size(); }

  // How many keys were evicted to stay within max_keys since construction. A rising value means
  // the window is under a flood of distinct keys; the caller logs it.
  std::uint64_t evicted() const { return evicted_; }

 private:
  static constexpr std::uint32_t kNone = StringIndex::npos;

  struct Entry {
    std::string key;
    std::vector<TimePoint> times;  // sorted oldest first; at most threshold entries
    bool crossed = false;
    std::uint32_t hash = 0;
    bool repeat = false;          // seen again while tracked: on the protected list
    std::uint32_t newer = kNone;  // LRU neighbours in its list, by position in entries_
    std::uint32_t older = kNone;
  };
  // One LRU list, from the most recently seen to the least.
  struct List {
    std::uint32_t newest = kNone;
    std::uint32_t oldest = kNone;
    std::size_t size = 0;
  };

  std::uint32_t find(std::string_view key, std::uint32_t hash) const;
  List& list_of(const Entry& x) { return x.repeat ? repeats_ : probation_; }
  void unlink(std::uint32_t e);
  void push_newest(std::uint32_t e);
  void promote(std::uint32_t e);  // a key on probation seen again

  Options options_;
  // Records live in one vector (positions are stable; freed ones are reused), each linked in
  // one of two lists (keys seen once, keys seen again), and indexed by key.
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> free_;
  List probation_;
  List repeats_;
  StringIndex index_;
  std::vector<std::string> dropped_;  // crossed keys evicted since the last expire()
  std::uint64_t evicted_ = 0;
};

}  // namespace vigil
