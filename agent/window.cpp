#include "agent/window.h"

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

KeyedWindow::Hit KeyedWindow::add(const std::string& key, TimePoint at) {
  List::iterator entry;
  if (const auto found = map_.find(std::string_view(key)); found != map_.end()) {
    entry = found->second;
    lru_.splice(lru_.begin(), lru_, entry);
  } else {
    if (map_.size() >= options_.max_keys) {
      // Reuse the least recently seen entry and its map node for the new key: no allocation
      // under a flood of distinct keys once the buffers have grown. The node leaves the map
      // before the string its view points into changes.
      entry = std::prev(lru_.end());
      auto node = map_.extract(std::string_view(entry->key));
      ++evicted_;
      entry->key = key;
      entry->times.clear();
      entry->crossed = false;
      lru_.splice(lru_.begin(), lru_, entry);
      node.key() = std::string_view(entry->key);
      map_.insert(std::move(node));
    } else {
      lru_.emplace_front();
      entry = lru_.begin();
      entry->key = key;
      map_.emplace(std::string_view(entry->key), entry);
    }
  }

  std::vector<TimePoint>& times = entry->times;
  times.insert(std::upper_bound(times.begin(), times.end(), at), at);
  const int in_span = largest_count_containing(times, at, options_.window);
  const auto keep = static_cast<std::size_t>(options_.threshold);
  if (times.size() > keep) {
    times.erase(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() - keep));
  }

  Hit hit;
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
  std::vector<std::string> recovered;
  // From the least recently seen to the most; `next` stays valid when the entry before it is
  // erased.
  auto next = lru_.end();
  while (next != lru_.begin()) {
    const auto entry = std::prev(next);
    std::vector<TimePoint>& times = entry->times;
    times.erase(times.begin(), std::upper_bound(times.begin(), times.end(), cutoff));
    if (entry->crossed && times.size() < threshold) {
      entry->crossed = false;
      recovered.push_back(entry->key);
    }
    if (times.empty()) {
      map_.erase(std::string_view(entry->key));
      lru_.erase(entry);
    } else {
      next = entry;
    }
  }
  return recovered;
}

int KeyedWindow::count(const std::string& key, TimePoint now) const {
  const auto found = map_.find(std::string_view(key));
  if (found == map_.end()) return 0;
  const std::vector<TimePoint>& times = found->second->times;
  const auto newest = std::upper_bound(times.begin(), times.end(), now);
  const auto oldest = std::upper_bound(times.begin(), times.end(), now - options_.window);
  return oldest < newest ? static_cast<int>(newest - oldest) : 0;
}

}  // namespace vigil
