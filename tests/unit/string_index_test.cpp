// StringIndex against std::unordered_map as the reference, under random inserts and erases
// (erase is where open addressing goes wrong: a backward shift that strands a key).
#include "agent/detect/string_index.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace vigil {
namespace {

TEST(StringIndex, EmptyFindsNothing) {
  const StringIndex index;
  EXPECT_EQ(
      index.find("x", StringIndex::hash("x"), [](std::uint32_t) { return std::string_view(); }),
      StringIndex::npos);
  EXPECT_EQ(index.size(), 0u);
}

TEST(StringIndex, AgreesWithUnorderedMapUnderChurn) {
  std::vector<std::string> keys;  // position -> key ("" = free)
  std::vector<std::uint32_t> free;
  std::unordered_map<std::string, std::uint32_t> reference;
  StringIndex index;
  const auto key_of = [&](std::uint32_t i) { return std::string_view(keys[i]); };
  std::mt19937 rng(7);
  // A small key space forces collisions, long probe runs and wrap-around at the table's end.
  std::uniform_int_distribution<int> pick(0, 300);
  for (int step = 0; step < 200'000; ++step) {
    const std::string k = "10.0." + std::to_string(pick(rng)) + ".1";
    const std::uint32_t h = StringIndex::hash(k);
    const std::uint32_t found = index.find(k, h, key_of);
    const auto ref = reference.find(k);
    ASSERT_EQ(found == StringIndex::npos, ref == reference.end()) << "step " << step << " " << k;
    if (found != StringIndex::npos) {
      ASSERT_EQ(found, ref->second);
      if (step % 3 != 0) {  // erase two times in three
        index.erase(h, found);
        keys[found].clear();
        free.push_back(found);
        reference.erase(ref);
      }
    } else {
      std::uint32_t at;
      if (!free.empty()) {
        at = free.back();
        free.pop_back();
        keys[at] = k;
      } else {
        at = static_cast<std::uint32_t>(keys.size());
        keys.push_back(k);
      }
      index.insert(h, at);
      reference.emplace(k, at);
    }
    ASSERT_EQ(index.size(), reference.size());
  }
  for (const auto& [k, at] : reference) {
    EXPECT_EQ(index.find(k, StringIndex::hash(k), key_of), at) << k;
  }
}

TEST(StringIndex, EraseOfAnUnknownPositionIsANoOp) {
  StringIndex index;
  std::vector<std::string> keys{"a"};
  index.insert(StringIndex::hash("a"), 0);
  index.erase(StringIndex::hash("b"), 5);
  EXPECT_EQ(index.size(), 1u);
  EXPECT_EQ(index.find("a", StringIndex::hash("a"),
                       [&](std::uint32_t i) { return std::string_view(keys[i]); }),
            0u);
}

}  // namespace
}  // namespace vigil
