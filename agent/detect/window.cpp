#include "agent/detect/window.h"

#include <algorithm>
#include <iterator>

namespace vigil {
namespace {

KeyedWindow::Options clamped(KeyedWindow::Options options) {
  // A window of 0 would be the empty span (at, at] and never count anything.
  options.window = std::max(options.window, Duration(1));
  // A threshold below 1 would have "crossed" before the first match.
  options.threshold = std::max(options.threshold, 1);
  // Room for at least the key being added.
  options.max_keys = std::max<std::size_t>(options.max_keys, 1);
  return options;
}

// The largest number of `times` (sorted) within one span (end - window, end] that contains `at`.
// Such a span ends at some `end` in [at, at + window); the count is largest when `end` is one of
// the recorded times, so only those are tried. O(times.size()).
int largest_count_containing(const std::vector<TimePoint>& times, TimePoint at, Duration window) {
  int best = 0;
  std::size_t first = 0;  // the oldest time inside (end - window, end]
  for (std::size_t last = 0; last < times.size(); ++last) {
    const TimePoint end = times[last];
    // Equal times belong to the same span; try it once, ending at the last of them.
    if (last + 1 < times.size() && times[last + 1] == end) continue;
    if (end < at) continue;
    if (end - at >= window) break;
    while (times[first] <= end - window) ++first;
    best = std::max(best, static_cast<int>(last - first + 1));
  }
  return best;
}

}  // namespace

KeyedWindow::KeyedWindow(Options options) : options_(clamped(options)) {}

std::uint32_t KeyedWindow::find(std::string_view key, std::uint32_t hash) const {
  return index_.find(key, hash,
                     [this](std::uint32_t e) { return std::string_view(entries_[e].key); });
}

void KeyedWindow::unlink(std::uint32_t e) {
  Entry& x = entries_[e];
  List& l = list_of(x);
  if (x.newer != kNone)
    entries_[x.newer].older = x.older;
  else
    l.newest = x.older;
  if (x.older != kNone)
    entries_[x.older].newer = x.newer;
  else
    l.oldest = x.newer;
  x.newer = x.older = kNone;
  --l.size;
}

void KeyedWindow::push_newest(std::uint32_t e) {
  Entry& x = entries_[e];
  List& l = list_of(x);
  x.older = l.newest;
  x.newer = kNone;
  if (l.newest != kNone) entries_[l.newest].newer = e;
  l.newest = e;
  if (l.oldest == kNone) l.oldest = e;
  ++l.size;
}

void KeyedWindow::promote(std::uint32_t e) {
  unlink(e);
  entries_[e].repeat = true;
  push_newest(e);
  // Repeat keys keep a fifth of the room for newcomers to be seen twice.
  const std::size_t cap = std::max<std::size_t>(1, options_.max_keys - options_.max_keys / 5);
  if (repeats_.size > cap) {
    const std::uint32_t old = repeats_.oldest;
    unlink(old);
    entries_[old].repeat = false;
    push_newest(old);
  }
}

KeyedWindow::Hit KeyedWindow::add(std::string_view key, TimePoint at) {
  const std::uint32_t hash = StringIndex::hash(key);
  std::uint32_t e = find(key, hash);
  const bool new_key = e == kNone;
  if (!new_key) {
    if (!entries_[e].repeat) {
      promote(e);
    } else if (e != repeats_.newest) {
      unlink(e);
      push_newest(e);
    }
  } else {
    if (index_.size() >= options_.max_keys) {
      // Reuse the evicted record and its buffers for the new key: no allocation under a flood of
      // distinct keys once they have grown. Keys seen once go first.
      e = probation_.oldest != kNone ? probation_.oldest : repeats_.oldest;
      index_.erase(entries_[e].hash, e);
      unlink(e);
      entries_[e].repeat = false;
      ++evicted_;
      // A key that had crossed is reported by the next expire(), so its finding recovers
      // instead of staying open (and escalating) with nobody left to close it.
      if (entries_[e].crossed) dropped_.push_back(std::move(entries_[e].key));
      entries_[e].times.clear();
      entries_[e].crossed = false;
    } else if (!free_.empty()) {
      e = free_.back();
      free_.pop_back();
    } else {
      e = static_cast<std::uint32_t>(entries_.size());
      entries_.emplace_back();
    }
    entries_[e].key.assign(key);
    entries_[e].hash = hash;
    index_.insert(hash, e);
    push_newest(e);
  }
  Entry* entry = &entries_[e];

  std::vector<TimePoint>& times = entry->times;
  const auto keep = static_cast<std::size_t>(options_.threshold);
  int in_span = 0;
  if (times.empty() || times.back() <= at) {
    // In order (the usual case): the best span ends at `at`; count back from the newest.
    if (times.size() == keep) {
      std::move(times.begin() + 1, times.end(), times.begin());
      times.back() = at;
    } else {
      times.push_back(at);
    }
    const TimePoint start = at - options_.window;
    for (auto t = times.rbegin(); t != times.rend() && *t > start; ++t) ++in_span;
  } else {
    times.insert(std::upper_bound(times.begin(), times.end(), at), at);
    in_span = largest_count_containing(times, at, options_.window);
    if (times.size() > keep) {
      times.erase(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() - keep));
    }
  }

  Hit hit;
  hit.id = e;
  hit.new_key = new_key;
  hit.count = std::min(in_span, options_.threshold);
  if (hit.count >= options_.threshold && !entry->crossed) {
    entry->crossed = true;
    hit.crossed = true;
  }
  return hit;
}

std::vector<std::string> KeyedWindow::expire(TimePoint now) {
  const TimePoint cutoff = now - options_.window;
  const auto threshold = static_cast<std::size_t>(options_.threshold);
  std::vector<std::string> recovered = std::move(dropped_);
  dropped_.clear();
  // From the least recently seen to the most, keys seen once first. Only `e` itself can be
  // unlinked in the loop, and its newer neighbour was read before.
  std::uint32_t next = kNone;
  for (const List* l : {&probation_, &repeats_}) {
    for (std::uint32_t e = l->oldest; e != kNone; e = next) {
      Entry& entry = entries_[e];
      next = entry.newer;
      std::vector<TimePoint>& times = entry.times;
      times.erase(times.begin(), std::upper_bound(times.begin(), times.end(), cutoff));
      if (entry.crossed && times.size() < threshold) {
        entry.crossed = false;
        recovered.push_back(entry.key);
      }
      if (times.empty()) {
        index_.erase(entry.hash, e);
        unlink(e);
        entry.key.clear();
        entry.crossed = false;
        entry.repeat = false;
        free_.push_back(e);
      }
    }
  }
  return recovered;
}

int KeyedWindow::count(std::string_view key, TimePoint now) const {
  const std::uint32_t e = find(key, StringIndex::hash(key));
  if (e == kNone) return 0;
  const std::vector<TimePoint>& times = entries_[e].times;
  const auto newest = std::upper_bound(times.begin(), times.end(), now);
  const auto oldest = std::upper_bound(times.begin(), times.end(), now - options_.window);
  return oldest < newest ? static_cast<int>(newest - oldest) : 0;
}

}  // namespace vigil
