// visible(): what the CLI prints of journal and network text (issue 13, terminal safety).
#include "agent/core/terminal.h"

#include <gtest/gtest.h>

#include <string>

namespace vigil {
namespace {

TEST(Visible, PlainTextAndUtf8PassUnchanged) {
  EXPECT_EQ(visible("HTTP 503 in 12ms"), "HTTP 503 in 12ms");
  EXPECT_EQ(visible("café — 日本 🚒"), "café — 日本 🚒");
  EXPECT_EQ(visible(""), "");
}

TEST(Visible, AnsiEscapesAndC0ControlsAreShownNotSent) {
  EXPECT_EQ(visible("\x1b[2J\x1b]0;owned\x07red"), "\\x1b[2J\\x1b]0;owned\\x07red");
  EXPECT_EQ(visible("a\nb\tc\rd"), "a\\nb\\tc\\rd");
  EXPECT_EQ(visible(std::string("nul\0del\x7f", 8)), "nul\\x00del\\x7f");
}

TEST(Visible, C1ControlsAndInvalidUtf8AreEscapedByteWise) {
  EXPECT_EQ(visible("\xc2\x9b"
                    "31m"),
            "\\x9b31m");  // U+009B: the 8-bit CSI
  EXPECT_EQ(visible("\x9b"
                    "31m"),
            "\\x9b31m");  // a raw 0x9b is no UTF-8 at all
  EXPECT_EQ(visible("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(visible("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(visible("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a UTF-16 surrogate
  EXPECT_EQ(visible("\xe6\x97"), "\\xe6\\x97");           // cut short
}

TEST(Visible, BidiOverridesCannotReorderWhatIsShown) {
  EXPECT_EQ(visible("user\xe2\x80\xae"
                    "toor"),
            "user\\u{202e}toor");
  EXPECT_EQ(visible("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u{2066}x\\u{2069}");
}

}  // namespace
}  // namespace vigil
