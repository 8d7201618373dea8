// parse_duration / format_duration: the duration syntax operators write in vigil.toml.
#include "agent/core/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>
#include <string>

namespace vigil {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// The parsed value, or a failure naming the input and the error.
Duration Parse(const std::string& text) {
  Result<Duration> r = parse_duration(text);
  EXPECT_TRUE(r.has_value()) << "\"" << text << "\": " << r.error().message;
  return r ? *r : Duration(-1);
}

// The error message, or a failure naming the input and the value it parsed to.
std::string ParseError(const std::string& text) {
  Result<Duration> r = parse_duration(text);
  EXPECT_FALSE(r.has_value()) << "\"" << text << "\" parsed as " << r->count() << "ms";
  return r ? std::string() : r.error().message;
}

TEST(ParseDuration, EachUnit) {
  EXPECT_EQ(Parse("250ms"), milliseconds(250));
  EXPECT_EQ(Parse("5s"), seconds(5));
  EXPECT_EQ(Parse("10m"), minutes(10));
  EXPECT_EQ(Parse("1h"), hours(1));
  EXPECT_EQ(Parse("2d"), days(2));
}

TEST(ParseDuration, MillisecondsAreNotReadAsMinutes) {
  EXPECT_EQ(Parse("1ms"), milliseconds(1));
  EXPECT_EQ(Parse("1m"), minutes(1));
}

TEST(ParseDuration, Zero) {
  // Zero is a valid duration; config validation rejects it where it makes no sense.
  EXPECT_EQ(Parse("0s"), Duration(0));
  EXPECT_EQ(Parse("0ms"), Duration(0));
}

TEST(ParseDuration, MultiDigitNumbers) {
  EXPECT_EQ(Parse("1500ms"), milliseconds(1500));
  EXPECT_EQ(Parse("90s"), seconds(90));
  EXPECT_EQ(Parse("007s"), seconds(7));
}

TEST(ParseDuration, CombinedComponents) {
  EXPECT_EQ(Parse("1m30s"), seconds(90));
  EXPECT_EQ(Parse("1h30m"), minutes(90));
  EXPECT_EQ(Parse("1s500ms"), milliseconds(1500));
  EXPECT_EQ(Parse("1d2h3m4s5ms"), days(1) + hours(2) + minutes(3) + seconds(4) + milliseconds(5));
  // Components may skip units, as long as they go from largest to smallest.
  EXPECT_EQ(Parse("1h5s"), hours(1) + seconds(5));
}

TEST(ParseDuration, EmptyIsAnError) {
  EXPECT_EQ(ParseError(""), "empty duration; expected e.g. \"250ms\", \"5s\", \"10m\"");
}

TEST(ParseDuration, NegativeIsAnError) {
  EXPECT_EQ(ParseError("-5s"), "negative duration \"-5s\" is not allowed");
}

TEST(ParseDuration, BareNumberHasNoUnit) {
  EXPECT_EQ(ParseError("5"),
            "duration \"5\" has no unit; write e.g. \"5s\" (units: ms, s, m, h, d)");
  // The last component of a combination needs a unit too.
  EXPECT_EQ(ParseError("1m30"),
            "duration \"1m30\" has no unit; write e.g. \"1m30s\" (units: ms, s, m, h, d)");
}

TEST(ParseDuration, UnknownUnit) {
  EXPECT_EQ(ParseError("5x"), "duration \"5x\" has an unknown unit 'x' (units: ms, s, m, h, d)");
  EXPECT_EQ(ParseError("5y"), "duration \"5y\" has an unknown unit 'y' (units: ms, s, m, h, d)");
  // The unit is the whole run of letters: "5sec" names 'sec', not 's' followed by junk.
  EXPECT_EQ(ParseError("5sec"),
            "duration \"5sec\" has an unknown unit 'sec' (units: ms, s, m, h, d)");
  // Units are case-sensitive: "5S" is not "5s".
  EXPECT_EQ(ParseError("5S"), "duration \"5S\" has an unknown unit 'S' (units: ms, s, m, h, d)");
  // Fractions are not supported; the message points at what could not be read.
  EXPECT_EQ(ParseError("1.5s"),
            "duration \"1.5s\" has an unknown unit '.5s' (units: ms, s, m, h, d)");
}

TEST(ParseDuration, MissingNumber) {
  const std::string expected_tail = ": expected a number followed by a unit (ms, s, m, h, d)";
  EXPECT_EQ(ParseError("s"), "invalid duration \"s\"" + expected_tail);
  EXPECT_EQ(ParseError(" 5s"), "invalid duration \" 5s\"" + expected_tail);
  EXPECT_EQ(ParseError("+5s"), "invalid duration \"+5s\"" + expected_tail);
}

TEST(ParseDuration, UnitsMustDecrease) {
  EXPECT_EQ(ParseError("5s1m"), "duration \"5s1m\": units must go from largest to smallest");
  // A unit may not repeat either.
  EXPECT_EQ(ParseError("5s5s"), "duration \"5s5s\": units must go from largest to smallest");
  EXPECT_EQ(ParseError("1ms1s"), "duration \"1ms1s\": units must go from largest to smallest");
}

TEST(ParseDuration, Overflow) {
  // The number alone does not fit in 64 bits.
  EXPECT_EQ(ParseError("99999999999999999999ms"),
            "duration \"99999999999999999999ms\" is too large");
  // The number fits, but not once multiplied by its unit.
  EXPECT_EQ(ParseError("106751991167301d"), "duration \"106751991167301d\" is too large");
  // Each component fits, but not their sum.
  EXPECT_EQ(ParseError("106751991167d86399999ms"),
            "duration \"106751991167d86399999ms\" is too large");
}

TEST(ParseDuration, LargestValuesThatFit) {
  EXPECT_EQ(Parse("106751991167d"), days(106751991167));
  // Exactly the largest representable duration, and one millisecond more.
  EXPECT_EQ(Parse("106751991167d25975807ms"), Duration::max());
  EXPECT_EQ(ParseError("106751991167d25975808ms"),
            "duration \"106751991167d25975808ms\" is too large");
}

TEST(FormatDuration, SingleUnits) {
  EXPECT_EQ(format_duration(Duration(0)), "0s");
  EXPECT_EQ(format_duration(milliseconds(250)), "250ms");
  EXPECT_EQ(format_duration(seconds(5)), "5s");
  EXPECT_EQ(format_duration(minutes(10)), "10m");
  EXPECT_EQ(format_duration(hours(1)), "1h");
  EXPECT_EQ(format_duration(days(3)), "3d");
}

TEST(FormatDuration, LargestUnitsFirst) {
  EXPECT_EQ(format_duration(seconds(90)), "1m30s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1s500ms");
  EXPECT_EQ(format_duration(days(1) + hours(2) + minutes(3) + seconds(4) + milliseconds(5)),
            "1d2h3m4s5ms");
  EXPECT_EQ(format_duration(hours(1) + seconds(5)), "1h5s");
  EXPECT_EQ(format_duration(hours(25)), "1d1h");
}

TEST(FormatDuration, Negative) { EXPECT_EQ(format_duration(seconds(-5)), "-5s"); }

TEST(Duration, RoundTripFromValue) {
  for (Duration d : std::initializer_list<Duration>{
           Duration(0), milliseconds(1), milliseconds(999), seconds(1), milliseconds(1001),
           seconds(59), seconds(61), minutes(59), hours(23), days(1), days(1) + milliseconds(1),
           days(365) + hours(5) + minutes(4) + seconds(3), days(106751991167)}) {
    const std::string text = format_duration(d);
    EXPECT_EQ(Parse(text), d) << text;
  }
}

TEST(Duration, RoundTripFromText) {
  for (const char* text :
       {"250ms", "5s", "10m", "1h", "2d", "1m30s", "1h30m", "1s500ms", "1d2h3m4s5ms"}) {
    EXPECT_EQ(format_duration(Parse(text)), text);
  }
}

TEST(Duration, NonCanonicalTextIsNormalised) {
  EXPECT_EQ(format_duration(Parse("90s")), "1m30s");
  EXPECT_EQ(format_duration(Parse("1500ms")), "1s500ms");
  EXPECT_EQ(format_duration(Parse("0ms")), "0s");
}

}  // namespace
}  // namespace vigil
