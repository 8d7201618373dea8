// The fleet's pieces that are pure logic: base64 as etcd's JSON gateway spells bytes, and the
// etcd key helpers ([fleet] in vigil.toml is in config_test.cpp). The budget itself runs against
// a real etcd in tests/integration/fleet_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "agent/core/base64.h"
#include "agent/fleet/budget.h"
#include "agent/fleet/etcd.h"

namespace vigil {
namespace {

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\xfe", 3)), "/wD+");
  for (const std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "/vigil/f/x"}) {
    EXPECT_EQ(base64_decode(base64_encode(s)), s);
  }
}

TEST(Base64, AnythingButCanonicalPaddedBase64IsRefused) {
  for (const std::string_view bad :
       {"Zg", "Zg=", "Zh==", "Zm9=", "Zm9v=", "Z===", "====", "Zm 9v", "Zm9v\n", "Zm=v",
        "Zg==Zg==", "Zm9v_-==", "\xc3\xa9\xc3\xa9"}) {
    EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
  }
}

TEST(EtcdKeys, PrefixEndIsThePrefixWithItsLastByteRaised) {
  EXPECT_EQ(base64_decode(fleet::etcd_prefix_end("/vigil/f/slots/restart:app/")),
            "/vigil/f/slots/restart:app0");
  EXPECT_EQ(fleet::slots_prefix("web", "restart:app"), "/vigil/web/slots/restart:app/");
  EXPECT_EQ(fleet::members_prefix("web"), "/vigil/web/members/");
}

TEST(EtcdKeys, SixtyFourBitFieldsAreStringsOrNumbersAndAbsentIsZero) {
  const auto j = nlohmann::json::parse(R"({"ID":"7587868771938125066","TTL":30,"bad":"12x"})");
  EXPECT_EQ(fleet::etcd_int(j, "ID"), 7587868771938125066LL);
  EXPECT_EQ(fleet::etcd_int(j, "TTL"), 30);
  EXPECT_EQ(fleet::etcd_int(j, "count"), 0);
  EXPECT_FALSE(fleet::etcd_int(j, "bad").has_value());
  EXPECT_FALSE(fleet::etcd_int(nlohmann::json::array(), "ID").has_value());
}

}  // namespace
}  // namespace vigil
