// The fleet's pieces that are pure logic: base64 as etcd's JSON gateway spells bytes, the etcd
// key helpers, and [fleet] / fleet_max in vigil.toml (golden messages, as config_test.cpp). The
// budget itself runs against a real etcd in tests/integration/fleet_test.cpp.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "agent/core/base64.h"
#include "agent/fleet/budget.h"
#include "agent/fleet/etcd.h"
#include "agent/load_config.h"

namespace vigil {
namespace {

using namespace std::chrono_literals;
using Lines = std::vector<std::string>;

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

std::vector<std::string> Errors(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  const LoadResult r = parse_config(text, "vigil.toml");
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.to_string());
  return out;
}

constexpr std::string_view kAction = R"toml(
[action.restart.app]
unit = "app.service"
)toml";

TEST(FleetConfig, ValidFleetAndCaps) {
  const LoadResult r = parse_config(R"toml(
[fleet]
name = "web-eu"
etcd = ["http://10.0.0.1:2379/", "https://10.0.0.2:2379"]
lease_ttl = "20s"
timeout = "1s"
retry = "3s"
unreachable = "act"
ca_file = "/etc/vigil/etcd-ca.pem"
cert_file = "/etc/vigil/etcd.pem"
key_file = "/etc/vigil/etcd-key.pem"

[action.restart.app]
unit = "app.service"
fleet_max = 3

[action.restart.api]
unit = "api.service"
fleet_max_percent = 10
)toml",
                                    "vigil.toml");
  ASSERT_TRUE(r.config) << r.errors.at(0).to_string();
  const FleetSettings& f = r.config->fleet;
  EXPECT_TRUE(f.enabled());
  EXPECT_EQ(f.name, "web-eu");
  EXPECT_EQ(f.etcd, (Lines{"http://10.0.0.1:2379", "https://10.0.0.2:2379"}));
  EXPECT_EQ(f.lease_ttl, 20s);
  EXPECT_EQ(f.timeout, 1s);
  EXPECT_EQ(f.retry, 3s);
  EXPECT_EQ(f.unreachable, FleetUnreachable::act);
  EXPECT_EQ(f.cert_file, "/etc/vigil/etcd.pem");
  EXPECT_EQ(r.config->find_action("restart:app")->fleet_max, 3);
  EXPECT_EQ(r.config->find_action("restart:api")->fleet_max_percent, 10);
  EXPECT_TRUE(r.config->find_action("restart:api")->fleet_capped());
}

TEST(FleetConfig, DefaultsHoldWhenEtcdIsUnreachable) {
  const LoadResult r =
      parse_config("[fleet]\nname = \"f\"\netcd = \"http://127.0.0.1:2379\"\n", "vigil.toml");
  ASSERT_TRUE(r.config);
  EXPECT_EQ(r.config->fleet.unreachable, FleetUnreachable::hold);
  EXPECT_EQ(r.config->fleet.lease_ttl, 30s);
  EXPECT_FALSE(parse_config("", "vigil.toml").config->fleet.enabled());
}

TEST(FleetConfig, ACapNeedsAFleet) {
  EXPECT_EQ(Errors(R"toml(
[action.restart.app]
unit = "app.service"
fleet_max = 2
)toml"),
            Lines{"vigil.toml:3:13: [action.restart.app]: 'fleet_max' needs a [fleet] section "
                  "with the etcd cluster that keeps the budget"});
}

TEST(FleetConfig, BadFleetSettingsAreRefusedWithTheirPlace) {
  EXPECT_EQ(
      Errors(R"toml(
[fleet]
name = "web/eu"
etcd = ["ftp://10.0.0.1:2379", "http://10.0.0.2:2379/?x=1"]
lease_ttl = "2s"
unreachable = "maybe"
cert_file = "/etc/vigil/etcd.pem"
)toml"),
      (Lines{"vigil.toml:2:8: [fleet]: 'name' must be 1-64 letters, digits, '-', '_' or '.' "
             "(it is part of the etcd keys), not \"web/eu\"",
             "vigil.toml:3:9: [fleet]: 'etcd' \"ftp://10.0.0.1:2379\": scheme must be http or "
             "https",
             "vigil.toml:3:32: [fleet]: 'etcd' \"http://10.0.0.2:2379/?x=1\": give the client URL "
             "alone (vigil adds /v3/...), without a query or fragment",
             "vigil.toml:4:13: [fleet]: 'lease_ttl' must be at least 5s, not \"2s\"",
             "vigil.toml:5:15: [fleet]: 'unreachable' must be \"hold\" (capped actions wait "
             "while etcd cannot be reached; the default) or \"act\", not \"maybe\"",
             "vigil.toml:6:13: [fleet]: 'cert_file' needs 'key_file' (a client certificate and "
             "its key)"}));
}

TEST(FleetConfig, MissingNameOrEndpointsAndBothCaps) {
  EXPECT_EQ(
      Errors(R"toml(
[fleet]
timeout = "20s"

[action.restart.app]
unit = "app.service"
fleet_max = 2
fleet_max_percent = 10
)toml"),
      (Lines{"vigil.toml:1:1: [fleet]: needs a 'name' (e.g. name = \"web-eu\"): hosts share a "
             "budget only when they name the same fleet",
             "vigil.toml:1:1: [fleet]: needs 'etcd', the cluster's client URLs (e.g. etcd = "
             "[\"http://10.0.0.1:2379\"])",
             "vigil.toml:2:11: [fleet]: 'timeout' must be at most a third of 'lease_ttl': a "
             "keep-alive that takes longer than that loses the lease",
             "vigil.toml:7:21: [action.restart.app]: give 'fleet_max' (hosts) or "
             "'fleet_max_percent' (of the fleet's live hosts), not both"}));
}

}  // namespace
}  // namespace vigil
