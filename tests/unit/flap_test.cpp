// FlapDetector: percent state change with hysteresis. Results are written as strings, '+' for a
// healthy result and '-' for a failed one; events as '.' (nothing), 'S' (flapping started: add()
// returned Flapping::started) and 'E' (flapping ended: Flapping::stopped), one per result.
#include "agent/detect/flap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {
namespace {

// Feeds `results` and returns one event character per result, checking on the way that
// flapping() agrees with the events.
std::string feed(FlapDetector& d, std::string_view results) {
  std::string events;
  for (const char c : results) {
    const bool was_flapping = d.flapping();
    const std::optional<Flapping> event = d.add(c == '+' ? Health::healthy : Health::failing);
    if (!event) {
      events += '.';
      EXPECT_EQ(d.flapping(), was_flapping) << "the state changed without an event";
    } else {
      const bool started = *event == Flapping::started;
      events += started ? 'S' : 'E';
      EXPECT_EQ(d.flapping(), started);
      EXPECT_NE(started, was_flapping) << "an event must change the state";
    }
  }
  return events;
}

std::string repeat(std::string_view pattern, int times) {
  std::string s;
  for (int i = 0; i < times; ++i) s += pattern;
  return s;
}

FlapSettings with_window(int window) {
  FlapSettings s;
  s.window = window;
  return s;
}

TEST(FlapDetector, Sequences) {
  struct Case {
    const char* name;
    FlapSettings settings;
    std::string results;
    std::string events;
  };
  const std::vector<Case> cases = {
      {"steady ok never flaps", FlapSettings{}, repeat("+", 60), repeat(".", 60)},
      {"steady failure never flaps", FlapSettings{}, repeat("-", 60), repeat(".", 60)},
      // 2 changes in 19 pairs, about 10 %.
      {"one outage never flaps", FlapSettings{}, repeat("+", 10) + "---" + repeat("+", 30),
       repeat(".", 43)},
      // 6 changes in 19, about 32 %: flapping under Nagios' compiled-in 30 %, not under 50 %.
      {"three short outages in a window never flap", FlapSettings{}, repeat("++++-", 12),
       repeat(".", 60)},
      // 100 % from the second result on, but no decision before the 10th (half of 20).
      {"alternation starts flapping on the 10th result, once", FlapSettings{}, repeat("+-", 20),
       repeat(".", 9) + "S" + repeat(".", 30)},
      // After 20 alternating results, the 15th ok leaves 5 changes (5/19, 26 %): not below
      // 25 %; the 16th leaves 4 (4/19, 21 %).
      {"steady ok after alternation stops flapping on the 16th ok, once", FlapSettings{},
       repeat("+-", 10) + repeat("+", 30),
       repeat(".", 9) + "S" + repeat(".", 25) + "E" + repeat(".", 14)},
      // Window 5: rates are multiples of 1/4, and 2/4 equals high exactly.
      {"a rate equal to high does not start", with_window(5), "+++-+", "....."},
      // Starts at 2/2; then 3/4, 2/4, 1/4 (equal to low: keeps flapping), 0/4 stops.
      {"a rate equal to low does not stop", with_window(5), "+-+-+++++", "..S.....E"},
      // The smallest window decides from the second result: a change starts, a repeat stops.
      {"window 2", with_window(2), "+-+++-", ".S.E.S"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.results.size() != c.events.size()) {
      ADD_FAILURE() << "bad table row: one event per result";
      continue;
    }
    FlapDetector d(c.settings);
    EXPECT_EQ(feed(d, c.results), c.events);
  }
}

TEST(FlapDetector, NoDecisionBeforeHalfTheWindow) {
  struct Case {
    int window;
    int first_decision;  // 1-based result at which strict alternation starts flapping
  };
  const std::vector<Case> cases = {{2, 2}, {3, 2}, {4, 2}, {5, 3}, {20, 10}, {63, 32}, {64, 32}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "window " << c.window);
    FlapDetector d(with_window(c.window));
    for (int i = 1; i <= c.window; ++i) {
      const std::optional<Flapping> event = d.add(i % 2 == 0 ? Health::healthy : Health::failing);
      // The rate is already 100 % from the second result: only the minimum holds it back.
      if (i >= 2) {
        EXPECT_EQ(d.rate(), 1.0);
      }
      if (i < c.first_decision) {
        EXPECT_EQ(event, std::nullopt) << "result " << i;
      } else if (i == c.first_decision) {
        EXPECT_EQ(event, std::optional<Flapping>(Flapping::started)) << "result " << i;
      } else {
        EXPECT_EQ(event, std::nullopt) << "result " << i << ": started only once";
      }
    }
    EXPECT_TRUE(d.flapping());
  }
}

TEST(FlapDetector, HysteresisKeepsTheStateInBothDirections) {
  // Runs of three: 6 changes in 19 pairs (about 32 %, between low and high) once the window is
  // full, and never above 50 % before that.
  const std::string in_band = repeat("+++---", 10);

  // Rising: from steady ok into the band does not start flapping.
  FlapDetector rising(FlapSettings{});
  EXPECT_EQ(feed(rising, repeat("+", 20)), repeat(".", 20));
  EXPECT_EQ(feed(rising, in_band), repeat(".", 60));
  EXPECT_FALSE(rising.flapping());

  // Falling: from flapping down into the band does not stop it.
  FlapDetector falling(FlapSettings{});
  EXPECT_EQ(feed(falling, repeat("+-", 10)), repeat(".", 9) + "S" + repeat(".", 10));
  EXPECT_EQ(feed(falling, in_band), repeat(".", 60));
  EXPECT_TRUE(falling.flapping());

  // The same last 20 results, the same rate, opposite states: only the history differs.
  EXPECT_EQ(rising.rate(), falling.rate());
  EXPECT_EQ(rising.rate(), 6.0 / 19);
  EXPECT_GT(rising.rate(), FlapSettings{}.low);
  EXPECT_LT(rising.rate(), FlapSettings{}.high);
}

TEST(FlapDetector, WindowIsClamped) {
  struct Case {
    int requested;
    int effective;
  };
  const std::vector<Case> cases = {{-5, 2},  {0, 2},   {1, 2},   {2, 2},
                                   {20, 20}, {64, 64}, {65, 64}, {100, 64}};
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "window " << c.requested);
    FlapDetector d(with_window(c.requested));
    EXPECT_EQ(d.results(), 0);
    for (int i = 1; i <= 200; ++i) {
      d.add(Health::healthy);
      EXPECT_EQ(d.results(), std::min(i, c.effective));
    }
  }
}

TEST(FlapDetector, RateOfHandMadeSequences) {
  struct Case {
    int window;
    std::string results;
    int kept;
    double rate;
  };
  const std::vector<Case> cases = {
      {20, "", 0, 0.0},
      {20, "+", 1, 0.0},
      {20, "-", 1, 0.0},
      {20, "+-", 2, 1.0},
      {20, "--", 2, 0.0},
      {20, "++--", 4, 1.0 / 3},
      {20, "+-++", 4, 2.0 / 3},
      {20, "-+-", 3, 1.0},
      {20, "+++-+++", 7, 2.0 / 6},
      {20, repeat("+", 10) + "---" + repeat("+", 7), 20, 2.0 / 19},
      // Only the last `window` results count: "-+++" is left, one change in three pairs.
      {4, "-+-+++", 4, 1.0 / 3},
      // The changes have all left the window.
      {4, "+-+-++++", 4, 0.0},
      // A change between the oldest kept result and one already dropped does not count.
      {3, "-++-", 3, 1.0 / 2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "window " << c.window << " results \"" << c.results << "\"");
    FlapDetector d(with_window(c.window));
    for (const char r : c.results) d.add(r == '+' ? Health::healthy : Health::failing);
    EXPECT_EQ(d.results(), c.kept);
    EXPECT_EQ(d.rate(), c.rate);
  }
}

TEST(FlapDetector, SixtyFourResultWindow) {
  // The oldest kept result sits in the top bit of the history word.
  FlapDetector d(with_window(64));
  // Appended, not "-" + repeat(): GCC 12's -O3 -Wrestrict misfires on operator+(const char*,
  // string&&).
  std::string one_failure = "-";
  one_failure += repeat("+", 63);
  EXPECT_EQ(feed(d, one_failure), repeat(".", 64));
  EXPECT_EQ(d.results(), 64);
  EXPECT_EQ(d.rate(), 1.0 / 63) << "the failure in the top bit still counts";
  d.add(Health::healthy);
  EXPECT_EQ(d.results(), 64);
  EXPECT_EQ(d.rate(), 0.0) << "the failure was shifted out";

  // Compare window 63: the same 64 results already pushed the failure out.
  FlapDetector d63(with_window(63));
  feed(d63, one_failure);
  EXPECT_EQ(d63.results(), 63);
  EXPECT_EQ(d63.rate(), 0.0);

  // Full alternation over the whole word, well past 64 results: every pair is a change.
  FlapDetector alternating(with_window(64));
  EXPECT_EQ(feed(alternating, repeat("+-", 100)), repeat(".", 31) + "S" + repeat(".", 168));
  EXPECT_EQ(alternating.results(), 64);
  EXPECT_EQ(alternating.rate(), 1.0);
  // Then steady ok. The last alternating result was a failure, so after k oks the window holds
  // 64 - k changes: 16 after the 48th ok (16/63, 25.4 %), 15 after the 49th (23.8 %).
  EXPECT_EQ(feed(alternating, repeat("+", 64)), repeat(".", 48) + "E" + repeat(".", 15));
  EXPECT_EQ(alternating.rate(), 0.0);
}

}  // namespace
}  // namespace vigil
