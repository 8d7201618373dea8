// StringIndex: an open-addressing hash index from strings to the positions of the records that
// hold them (the caller owns the records and their keys). Built for the journal's per-line path,
// where std::unordered_map costs three dependent cache misses per lookup (bucket, node, value):
// here a lookup reads one 8-byte slot and then the record itself. Linear probing, at most half
// full, backward-shift deletion (no tombstones, so lookups never slow down with churn).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace vigil {

class StringIndex {
 public:
  static constexpr std::uint32_t npos = UINT32_MAX;

  static std::uint32_t hash(std::string_view key) {
    return static_cast<std::uint32_t>(std::hash<std::string_view>{}(key));
  }

  // The record at `pos` whose key equals `key` (hash(key) == h), or npos. `key_of(pos)` returns
  // the key of record `pos`.
  template <class KeyOf>
  std::uint32_t find(std::string_view key, std::uint32_t h, const KeyOf& key_of) const {
    if (slots_.empty()) return npos;
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot s = slots_[i];
      if (s.pos == npos) return npos;
      if (s.hash == h && key_of(s.pos) == key) return s.pos;
    }
  }

  // Records that `pos` holds a key hashing to `h`; the key must not be in the index.
  void insert(std::uint32_t h, std::uint32_t pos) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(Slot{h, pos});
    ++size_;
  }

  // Forgets the record `pos`, whose key hashes to `h`. No-op when it is not indexed.
  void erase(std::uint32_t h, std::uint32_t pos) {
    if (slots_.empty()) return;
    std::size_t i = h & mask_;
    while (slots_[i].pos != pos) {
      if (slots_[i].pos == npos) return;
      i = (i + 1) & mask_;
    }
    // Backward shift: move later members of the probe run into the hole when their home slot
    // is not between the hole and themselves.
    for (std::size_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
      if (slots_[j].pos == npos) break;
      const std::size_t home = slots_[j].hash & mask_;
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = Slot{};
    --size_;
  }

  std::size_t size() const { return size_; }

 private:
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t pos = npos;
  };

  void place(Slot s) {
    std::size_t i = s.hash & mask_;
    while (slots_[i].pos != npos) i = (i + 1) & mask_;
    slots_[i] = s;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    const std::size_t n = old.empty() ? 16 : old.size() * 2;
    slots_.assign(n, Slot{});
    mask_ = n - 1;
    for (const Slot& s : old) {
      if (s.pos != npos) place(s);
    }
  }

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace vigil
