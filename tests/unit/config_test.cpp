// vigil.toml validation. The error messages are golden: an operator reads them to fix a file, so
// each test freezes the exact "FILE:LINE:COL: message", and each position was checked to point at
// the offending key or value (or at the [[check]] header when a required key is missing).
#include "agent/config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config/kinds.h"
#include "agent/load_config.h"
#include "agent/metrics.h"

namespace vigil {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// The TOML texts below start with a newline right after R"toml( for readability; it is dropped
// so that the first line of the text is line 1.
std::string_view Text(std::string_view text) {
  if (!text.empty() && text.front() == '\n') text.remove_prefix(1);
  return text;
}

// Every error of `text`, as the operator sees it.
std::vector<std::string> Errors(std::string_view text) {
  const LoadResult r = parse_config(Text(text), "vigil.toml");
  EXPECT_EQ(r.config.has_value(), r.errors.empty()) << "a config must come without errors only";
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.to_string());
  return out;
}

using Lines = std::vector<std::string>;

// A valid config, or a test failure listing its errors.
Config Valid(std::string_view text) {
  LoadResult r = parse_config(Text(text), "vigil.toml");
  for (const ConfigError& e : r.errors) ADD_FAILURE() << e.to_string();
  EXPECT_TRUE(r.config.has_value());
  return r.config ? std::move(*r.config) : Config{};
}

// ---------------------------------------------------------------------------------------------
// ConfigError

TEST(ConfigError, ToStringIsFileLineColumnMessage) {
  const ConfigError e{SourcePos{"/etc/vigil/vigil.toml", 12, 5}, "something is wrong"};
  EXPECT_EQ(e.to_string(), "/etc/vigil/vigil.toml:12:5: something is wrong");
}

// ---------------------------------------------------------------------------------------------
// TOML syntax and document structure

TEST(ConfigErrors, TomlSyntaxError) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web
probe = "http"
)toml"),
            Lines{"vigil.toml:2:12: syntax error: Error while parsing string: unescaped control "
                  "characters other than TAB (U+0009) are explicitly prohibited"});
}

TEST(ConfigErrors, UnknownTopLevelKeyWithSuggestion) {
  EXPECT_EQ(Errors(R"toml(
[agnet]
state_dir = "/var/lib/vigil"
)toml"),
            Lines{"vigil.toml:1:2: unknown key 'agnet' (did you mean 'agent'?)"});
}

TEST(ConfigErrors, UnknownTopLevelKeyWithoutSuggestion) {
  EXPECT_EQ(Errors(R"toml(
log_level = "debug"
)toml"),
            Lines{"vigil.toml:1:1: unknown key 'log_level'"});
}

TEST(ConfigErrors, CheckWrittenAsTableInsteadOfArrayOfTables) {
  EXPECT_EQ(Errors(R"toml(
[check]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
)toml"),
            Lines{"vigil.toml:1:1: 'check' must be an array of tables: write [[check]]"});
}

// ---------------------------------------------------------------------------------------------
// [agent]

TEST(ConfigErrors, AgentStateDirMustBeAbsolute) {
  EXPECT_EQ(Errors(R"toml(
[agent]
state_dir = "var/lib/vigil"
)toml"),
            Lines{"vigil.toml:2:13: [agent]: 'state_dir' must be an absolute path, not "
                  "\"var/lib/vigil\""});
}

TEST(ConfigErrors, AgentDryRunWrongType) {
  EXPECT_EQ(Errors(R"toml(
[agent]
dry_run = "yes"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'dry_run' must be true or false, not a string"});
}

TEST(ConfigErrors, AgentUnknownKeyWithSuggestion) {
  EXPECT_EQ(Errors(R"toml(
[agent]
stat_dir = "/var/lib/vigil"
)toml"),
            Lines{"vigil.toml:2:1: [agent]: unknown key 'stat_dir' (did you mean 'state_dir'?)"});
}

TEST(ConfigErrors, AgentInvalidHostname) {
  EXPECT_EQ(Errors(R"toml(
[agent]
hostname = "web 1"
)toml"),
            Lines{"vigil.toml:2:12: [agent]: 'hostname' \"web 1\" is not a valid host name"});
}

TEST(ConfigErrors, AgentNotATable) {
  EXPECT_EQ(Errors(R"toml(
agent = "web-1"
)toml"),
            Lines{"vigil.toml:1:9: 'agent' must be a table: write [agent]"});
}

// ---------------------------------------------------------------------------------------------
// [agent]: control socket, metrics, upgrade_after (the incident book)

TEST(ConfigErrors, AgentControlSocketMustBeAbsolute) {
  EXPECT_EQ(Errors(R"toml(
[agent]
control_socket = "run/vigil/control.sock"
)toml"),
            Lines{"vigil.toml:2:18: [agent]: 'control_socket' must be an absolute path of at most "
                  "100 bytes, not \"run/vigil/control.sock\""});
  EXPECT_EQ(Errors(R"toml(
[agent]
control_socket = ""
)toml"),
            Lines{"vigil.toml:2:18: [agent]: 'control_socket' must be an absolute path of at most "
                  "100 bytes, not \"\""});
}

TEST(ConfigErrors, AgentControlSocketTooLongSaysItsLength) {
  // A Unix socket path must fit sun_path (108 bytes with the NUL on Linux); the operator should
  // not have to count the bytes of a long path to see why it is refused.
  const std::string path = "/run/vigil/" + std::string(86, 'a') + ".sock";  // 102 bytes
  ASSERT_EQ(path.size(), 102u);
  EXPECT_EQ(Errors("[agent]\ncontrol_socket = \"" + path + "\"\n"),
            Lines{"vigil.toml:2:18: [agent]: 'control_socket' must be an absolute path of at most "
                  "100 bytes, not \"" +
                  path + "\" (102 bytes)"});
}

TEST(ConfigErrors, AgentControlSocketWrongType) {
  EXPECT_EQ(Errors(R"toml(
[agent]
control_socket = true
)toml"),
            Lines{"vigil.toml:2:18: [agent]: 'control_socket' must be a string, not a boolean"});
}

TEST(ConfigErrors, AgentMetricsOnAWildcardAddressIsRefusedWithTheLoopbackExplanation) {
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "0.0.0.0:9717"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must listen on a loopback address "
                  "(127.0.0.1 or [::1]), not 0.0.0.0: scrape it through the host's own Prometheus "
                  "agent or an SSH tunnel"});
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "[::]:9717"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must listen on a loopback address "
                  "(127.0.0.1 or [::1]), not ::: scrape it through the host's own Prometheus "
                  "agent or an SSH tunnel"});
}

TEST(ConfigErrors, AgentMetricsOnAPublicAddress) {
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "192.168.1.10:9717"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must listen on a loopback address "
                  "(127.0.0.1 or [::1]), not 192.168.1.10: scrape it through the host's own "
                  "Prometheus agent or an SSH tunnel"});
}

TEST(ConfigErrors, AgentMetricsWithoutPort) {
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "127.0.0.1"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must be \"ADDRESS:PORT\" (e.g. "
                  "\"127.0.0.1:9717\"), not \"127.0.0.1\""});
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "[::1]"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must be \"ADDRESS:PORT\" (e.g. "
                  "\"127.0.0.1:9717\"), not \"[::1]\""});
}

TEST(ConfigErrors, AgentMetricsEmptyIsNotOff) {
  // Metrics are off by leaving the key out; "" is more likely a template left unfilled.
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = ""
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must be \"ADDRESS:PORT\" (e.g. "
                  "\"127.0.0.1:9717\"), not \"\""});
}

TEST(ConfigErrors, AgentMetricsInvalidPort) {
  // Six digits, out of range, zero (any free port: nothing could scrape it), a service name,
  // empty, signed: each refused, none crashes.
  for (const auto& [port, line] : std::vector<std::pair<std::string, std::string>>{
           {"999999", "999999"},
           {"65536", "65536"},
           {"0", "0"},
           {"http", "http"},
           {"", ""},
           {"+80", "+80"},
           {"99999999999999999999", "99999999999999999999"}}) {
    EXPECT_EQ(
        Errors("[agent]\nmetrics = \"127.0.0.1:" + port + "\"\n"),
        Lines{"vigil.toml:2:11: [agent]: 'metrics' has an invalid port \"" + line + "\" (1-65535)"})
        << port;
  }
}

TEST(ConfigErrors, AgentMetricsHostNameIsNotResolved) {
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "localhost:9717"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' has an invalid address \"localhost\": "
                  "invalid IP address \"localhost\": 'l' cannot appear in an address"});
}

TEST(ConfigErrors, AgentMetricsIpv6NeedsBrackets) {
  // Without brackets the daemon cannot tell the address from the port, and refuses to bind; the
  // config must not pass check-config and then leave metrics silently off.
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = "::1:9717"
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' needs brackets around an IPv6 address, as "
                  "in \"[::1]:9717\", not \"::1:9717\""});
}

TEST(ConfigErrors, AgentMetricsWrongType) {
  EXPECT_EQ(Errors(R"toml(
[agent]
metrics = 9717
)toml"),
            Lines{"vigil.toml:2:11: [agent]: 'metrics' must be a string, not an integer"});
}

TEST(ConfigErrors, AgentUpgradeAfterBelowMinimum) {
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = "500ms"
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after' must be at least 1s, not \"500ms\""});
}

TEST(ConfigErrors, AgentUpgradeAfterNotADuration) {
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = "never"
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after': invalid duration \"never\": "
                  "expected a number followed by a unit (ms, s, m, h, d)"});
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = "1"
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after': duration \"1\" has no unit; write "
                  "e.g. \"1s\" (units: ms, s, m, h, d)"});
}

TEST(ConfigErrors, AgentUpgradeAfterGivenAsIntegerOrBoolean) {
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = 3600
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after' must be a duration string like "
                  "\"250ms\", \"5s\" or \"10m\", not an integer (write a string with a unit, e.g. "
                  "\"3600s\")"});
  // The hint for 0 is "0s", which must then be accepted (as "never"): see
  // ConfigValid.AgentUpgradeAfterOffZeroAndZeroSecondsMeanNever.
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = 0
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after' must be a duration string like "
                  "\"250ms\", \"5s\" or \"10m\", not an integer (write a string with a unit, e.g. "
                  "\"0s\")"});
  EXPECT_EQ(Errors(R"toml(
[agent]
upgrade_after = false
)toml"),
            Lines{"vigil.toml:2:17: [agent]: 'upgrade_after' must be a duration string like "
                  "\"250ms\", \"5s\" or \"10m\", not a boolean"});
}

TEST(ConfigErrors, AgentUnknownKeySuggestsTheNewKeys) {
  EXPECT_EQ(Errors(R"toml(
[agent]
control_sock = "/run/vigil/control.sock"
metric = "127.0.0.1:9717"
upgrade_afer = "1h"
)toml"),
            (Lines{"vigil.toml:2:1: [agent]: unknown key 'control_sock' (did you mean "
                   "'control_socket'?)",
                   "vigil.toml:3:1: [agent]: unknown key 'metric' (did you mean 'metrics'?)",
                   "vigil.toml:4:1: [agent]: unknown key 'upgrade_afer' (did you mean "
                   "'upgrade_after'?)"}));
}

// ---------------------------------------------------------------------------------------------
// [[check]]: required keys, names and probe

TEST(ConfigErrors, UnknownCheckKeyWithSuggestion) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
intreval = "10s"
)toml"),
            Lines{"vigil.toml:5:1: check 'web': unknown key 'intreval' (did you mean "
                  "'interval'?)"});
}

TEST(ConfigErrors, UnknownCheckKeyWithoutSuggestion) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
colour = "red"
)toml"),
            Lines{"vigil.toml:5:1: check 'web': unknown key 'colour'"});
}

TEST(ConfigErrors, DuplicateCheckNameMentionsFirstDefinition) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://a.example/"

[[check]]
name = "web"
probe = "http"
url = "http://b.example/"
)toml"),
            Lines{"vigil.toml:7:8: duplicate check name 'web' (first defined at vigil.toml:2:8)"});
}

TEST(ConfigErrors, MissingName) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
probe = "http"
url = "http://127.0.0.1:8080/"
)toml"),
            Lines{"vigil.toml:1:1: check: missing required key 'name'"});
}

TEST(ConfigErrors, MissingProbe) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
url = "http://127.0.0.1:8080/"
)toml"),
            Lines{"vigil.toml:1:1: check 'web': missing required key 'probe' (e.g. probe = "
                  "\"http\")"});
}

TEST(ConfigErrors, MissingUrl) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
)toml"),
            Lines{"vigil.toml:1:1: check 'web': missing required key 'url' for probe \"http\""});
}

TEST(ConfigErrors, MissingRequiredKeysPointAtTheirOwnCheck) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "a"
probe = "http"
url = "http://127.0.0.1:8080/"

[[check]]
name = "b"
probe = "http"
)toml"),
            Lines{"vigil.toml:6:1: check 'b': missing required key 'url' for probe \"http\""});
}

TEST(ConfigErrors, InvalidCheckName) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "my web"
probe = "http"
url = "http://127.0.0.1:8080/"
)toml"),
            Lines{"vigil.toml:2:8: check: name \"my web\" must be 1-64 letters, digits, '-', '_' "
                  "or '.', starting with a letter or digit"});
}

TEST(ConfigErrors, NameWrongType) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = 42
probe = "http"
url = "http://127.0.0.1:8080/"
)toml"),
            Lines{"vigil.toml:2:8: check: 'name' must be a string, not an integer"});
}

TEST(ConfigErrors, UnknownProbeKind) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "db"
probe = "tcp"
)toml"),
            Lines{"vigil.toml:3:9: check 'db': unknown probe \"tcp\" (known: \"http\", \"unit\", "
                  "\"journal\")"});
}

// ---------------------------------------------------------------------------------------------
// The kinds the reader is handed (agent/config/kinds.h): it names none itself.

std::vector<std::string> ErrorsWith(const ConfigKinds& kinds, std::string_view text) {
  const LoadResult r = parse_config(Text(text), "vigil.toml", kinds);
  std::vector<std::string> out;
  for (const ConfigError& e : r.errors) out.push_back(e.to_string());
  return out;
}

// A probe kind the built-in ones do not have: a port probe with one key of its own. Its parse
// records the port in the check's owner unit, so the test can see it ran.
ConfigKinds WithPortProbe() {
  ConfigKinds kinds = builtin_kinds();
  kinds.probes.push_back(ProbeKind{
      .name = "port",
      .timing = ProbeTiming::request,
      .keys = {"port"},
      .parse =
          [](config_internal::ConfigReader& r, const toml::table& t, CheckConfig& c,
             const std::string& where, CheckSources&) {
            if (auto p = r.get_int(t, "port", 1, 65535, where)) c.owner_unit = std::to_string(*p);
          },
  });
  return kinds;
}

TEST(ConfigKinds, RegisteredProbeIsKnownAndReadsItsOwnKeys) {
  const ConfigKinds kinds = WithPortProbe();
  const LoadResult ok = parse_config(Text(R"toml(
[[check]]
name = "db"
probe = "port"
port = 5432
timeout = "2s"
latency_warn = "500ms"
)toml"),
                                     "vigil.toml", kinds);
  ASSERT_TRUE(ok.config.has_value());
  EXPECT_EQ(ok.config->checks.at(0).owner_unit, "5432");
  EXPECT_EQ(ok.config->checks.at(0).timeout, milliseconds(2000));

  // Its keys and the timing keys are checked as a built-in kind's are; an http key is unknown.
  EXPECT_EQ(ErrorsWith(kinds, R"toml(
[[check]]
name = "db"
probe = "port"
portt = 5432
url = "http://127.0.0.1/"
latency_warn = "2s"
timeout = "1s"
interval = "10s"
)toml"),
            (Lines{"vigil.toml:4:1: check 'db': unknown key 'portt' (did you mean 'port'?)",
                   "vigil.toml:5:1: check 'db': unknown key 'url'",
                   "vigil.toml:6:16: check 'db': 'latency_warn' (2s) is not below 'timeout' "
                   "(1s): it could never fire"}));
  EXPECT_EQ(ErrorsWith(kinds, R"toml(
[[check]]
name = "db"
probe = "tcp"
)toml"),
            Lines{"vigil.toml:3:9: check 'db': unknown probe \"tcp\" (known: \"http\", \"unit\", "
                  "\"journal\", \"port\")"});
}

TEST(ConfigKinds, KindsNotRegisteredAreUnknown) {
  ConfigKinds kinds = builtin_kinds();
  std::erase_if(kinds.actions, [](const ActionKindInfo& k) { return k.name == "block"; });
  std::erase_if(kinds.notifiers, [](const NotifierKindInfo& k) { return k.name != "webhook"; });
  EXPECT_EQ(ErrorsWith(kinds, R"toml(
[action.block.ssh]
block_for = "1h"

[[notify]]
kind = "pagerduty"
routing_key = "0123456789abcdef0123456789abcdef"

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1/"
mitigate = ["block:ssh"]
)toml"),
            (Lines{"vigil.toml:1:9: [action]: unknown key 'block'",
                   "vigil.toml:5:8: notify: unknown kind \"pagerduty\" (known: webhook; for a "
                   "chat tool or a custom receiver: webhook)",
                   "vigil.toml:12:12: check 'web': 'mitigate': \"block:ssh\" must be "
                   "\"KIND:NAME\" with KIND restart or rollback (e.g. \"restart:app\")"}));
}

// ---------------------------------------------------------------------------------------------
// [[check]]: URL

TEST(ConfigErrors, UrlWithFtpScheme) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "ftp://example.org/file"
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"ftp://example.org/file\": scheme must be "
                  "http or https"});
}

TEST(ConfigErrors, UrlThatIsNotAUrl) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "example.org/health"
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"example.org/health\": is not a valid URL "
                  "(Bad scheme)"});
}

TEST(ConfigErrors, UrlWithWhiteSpace) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://example.org/my page"
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"http://example.org/my page\": contains "
                  "white space"});
}

TEST(ConfigErrors, UrlWithoutHost) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "https://:8443/health"
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"https://:8443/health\": is not a valid "
                  "URL (No host part in the URL)"});
}

TEST(ConfigErrors, UrlWithEmptyAuthorityIsNotReadAsAHost) {
  // "http:///health" has an empty host (RFC 3986); the operator forgot it. libcurl's lenient
  // parser reads "health" as the host, but vigil must not probe a host nobody wrote.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http:///health"
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"http:///health\": has no host"});
}

TEST(ConfigErrors, EmptyUrl) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = ""
)toml"),
            Lines{"vigil.toml:4:7: check 'web': 'url' \"\": is empty"});
}

// ---------------------------------------------------------------------------------------------
// [[check]]: durations

TEST(ConfigErrors, ZeroInterval) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "0s"
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'interval' must be greater than zero"});
}

TEST(ConfigErrors, NegativeInterval) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "-5s"
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'interval': negative duration \"-5s\" is not "
                  "allowed"});
}

TEST(ConfigErrors, IntervalBelowMinimum) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "50ms"
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'interval' must be at least 100ms, not "
                  "\"50ms\""});
}

TEST(ConfigErrors, DurationWithoutUnit) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "10"
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'interval': duration \"10\" has no unit; write "
                  "e.g. \"10s\" (units: ms, s, m, h, d)"});
}

TEST(ConfigErrors, DurationWithUnknownUnit) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
timeout = "3x"
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'timeout': duration \"3x\" has an unknown unit "
                  "'x' (units: ms, s, m, h, d)"});
}

TEST(ConfigErrors, DurationGivenAsInteger) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = 10
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'interval' must be a duration string like "
                  "\"250ms\", \"5s\" or \"10m\", not an integer (write a string with a unit, e.g. "
                  "\"10s\")"});
}

TEST(ConfigErrors, DurationGivenAsFloat) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
timeout = 1.5
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'timeout' must be a duration string like "
                  "\"250ms\", \"5s\" or \"10m\", not a float (write a string with a unit, e.g. "
                  "\"1s500ms\")"});
}

TEST(ConfigErrors, DurationGivenAsBoolean) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
confirm_interval = true
)toml"),
            Lines{"vigil.toml:5:20: check 'web': 'confirm_interval' must be a duration string "
                  "like \"250ms\", \"5s\" or \"10m\", not a boolean"});
}

TEST(ConfigErrors, LatencyWarnNotBelowLatencyCrit) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
latency_warn = "2s"
latency_crit = "1s"
)toml"),
            Lines{"vigil.toml:5:16: check 'web': 'latency_warn' (2s) must be below "
                  "'latency_crit' (1s)"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
latency_warn = "1s"
latency_crit = "1s"
)toml"),
            Lines{"vigil.toml:5:16: check 'web': 'latency_warn' (1s) must be below "
                  "'latency_crit' (1s)"});
}

TEST(ConfigErrors, LatencyCritNotBelowTimeout) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
timeout = "1s"
latency_crit = "1s500ms"
)toml"),
            Lines{"vigil.toml:6:16: check 'web': 'latency_crit' (1s500ms) is not below "
                  "'timeout' (1s): it could never fire"});
}

TEST(ConfigErrors, LatencyWarnNotBelowDefaultTimeout) {
  // No timeout given: it defaults to 5s.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
latency_warn = "5s"
)toml"),
            Lines{"vigil.toml:5:16: check 'web': 'latency_warn' (5s) is not below 'timeout' "
                  "(5s): it could never fire"});
}

TEST(ConfigErrors, TimeoutExceedsInterval) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "1s"
timeout = "2s"
)toml"),
            Lines{"vigil.toml:6:11: check 'web': 'timeout' (2s) must not exceed 'interval' "
                  "(1s)"});
}

TEST(ConfigErrors, TimeoutExceedsDefaultInterval) {
  // No interval given: it defaults to 10s, and the timeout must not exceed it either.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
timeout = "20s"
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'timeout' (20s) must not exceed 'interval' "
                  "(10s, the default)"});
}

TEST(ConfigErrors, ConfirmIntervalBelowMinimum) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
confirm_interval = "5ms"
)toml"),
            Lines{"vigil.toml:5:20: check 'web': 'confirm_interval' must be at least 10ms, not "
                  "\"5ms\""});
}

// ---------------------------------------------------------------------------------------------
// [[check]]: integers

TEST(ConfigErrors, FailAfterZero) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
fail_after = 0
)toml"),
            Lines{"vigil.toml:5:14: check 'web': 'fail_after' must be between 1 and 1000, not 0"});
}

TEST(ConfigErrors, ConfirmTooLarge) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
confirm = 11
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'confirm' must be between 0 and 10, not 11"});
}

TEST(ConfigErrors, RecoverAfterWrongType) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
recover_after = "2"
)toml"),
            Lines{"vigil.toml:5:17: check 'web': 'recover_after' must be an integer, not a "
                  "string"});
}

// ---------------------------------------------------------------------------------------------
// [[check]]: severity

TEST(ConfigErrors, UnknownSeverity) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
severity = { http_5xx = "SEV4" }
)toml"),
            Lines{"vigil.toml:5:25: check 'web': severity.http_5xx: unknown severity \"SEV4\" "
                  "(expected \"SEV1\", \"SEV2\" or \"SEV3\")"});
}

TEST(ConfigErrors, SeverityWrongType) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"

[check.severity]
latency_warn = 3
)toml"),
            Lines{"vigil.toml:7:16: check 'web': severity.latency_warn must be a severity string "
                  "\"SEV1\", \"SEV2\" or \"SEV3\", not an integer"});
}

TEST(ConfigErrors, UnknownSeverityRule) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
severity = { http5xx = "SEV1" }
)toml"),
            Lines{"vigil.toml:5:14: check 'web': unknown severity rule 'http5xx' (known: refused, "
                  "timeout, reset, dns, tls, protocol, http_5xx, http_4xx, http_status, body, "
                  "error, failed, inactive, restart_loop, start_limit, not_found, match, "
                  "latency_warn, latency_crit)"});
}

TEST(ConfigErrors, SeverityNotATable) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
severity = "SEV1"
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'severity' must be a table, e.g. severity = { "
                  "http_5xx = \"SEV1\", latency_warn = \"SEV3\" }"});
}

// ---------------------------------------------------------------------------------------------
// [[check]]: HTTP settings

TEST(ConfigErrors, ExpectStatusOutOfRange) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = 700
)toml"),
            Lines{"vigil.toml:5:17: check 'web': 'expect_status': 700 is not an HTTP status code "
                  "(100-599)"});
}

TEST(ConfigErrors, ExpectStatusNotAStatus) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = ["2xx", "abc"]
)toml"),
            Lines{"vigil.toml:5:25: check 'web': 'expect_status': \"abc\" is not a status code, a "
                  "class like \"2xx\" or a range like \"200-399\""});
}

TEST(ConfigErrors, ExpectStatusReversedRange) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = "399-200"
)toml"),
            Lines{"vigil.toml:5:17: check 'web': 'expect_status': \"399-200\" is not a status "
                  "code, a class like \"2xx\" or a range like \"200-399\""});
}

TEST(ConfigErrors, ExpectStatusEmpty) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = []
)toml"),
            Lines{"vigil.toml:5:17: check 'web': 'expect_status' must not be empty"});
}

// Found by fuzz_config: an empty list was a journal check that could never match.
TEST(ConfigErrors, EmptyJournalPatternListIsRefused) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "ssh"
probe = "journal"
unit = "ssh.service"
patterns = [
]
)toml"),
            Lines{"vigil.toml:5:12: check 'ssh': 'patterns' is empty: give at least one pattern"});
}

TEST(ConfigErrors, InvalidBodyRegex) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
body_regex = "status: [a-"
)toml"),
            Lines{"vigil.toml:5:14: check 'web': 'body_regex' is not a valid RE2 pattern: missing "
                  "]: [a-"});
}

TEST(ConfigErrors, UnknownMethod) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
method = "POST"
)toml"),
            Lines{"vigil.toml:5:10: check 'web': 'method' must be \"GET\" or \"HEAD\", not "
                  "\"POST\""});
}

TEST(ConfigErrors, HeadWithBodyContains) {
  // The mistake is the body check that a HEAD answer can never satisfy: point at it.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
method = "HEAD"
body_contains = "ok"
)toml"),
            Lines{"vigil.toml:6:17: check 'web': a HEAD request has no body: "
                  "'body_contains'/'body_regex' need method = \"GET\""});
}

TEST(ConfigErrors, HeaderWithBadName) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
headers = { "X Probe" = "vigil" }
)toml"),
            Lines{"vigil.toml:5:13: check 'web': header name 'X Probe' is not valid"});
}

TEST(ConfigErrors, HeaderValueWithLineBreak) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
headers = { X-Probe = "vigil\r\nX-Evil: 1" }
)toml"),
            Lines{"vigil.toml:5:23: check 'web': header 'X-Probe' must not contain a line "
                  "break"});
}

TEST(ConfigErrors, HeadersNotATable) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
headers = "Host: example.org"
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'headers' must be a table, e.g. headers = { Host "
                  "= \"example.org\" }"});
}

TEST(ConfigErrors, VerifyTlsWrongType) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "https://127.0.0.1:8443/"
verify_tls = "no"
)toml"),
            Lines{"vigil.toml:5:14: check 'web': 'verify_tls' must be true or false, not a "
                  "string"});
}

// ---------------------------------------------------------------------------------------------
// [[check]]: service, team, flap detection, an HTTP check's owner unit

TEST(ConfigErrors, TeamWithASpace) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
team = "web ops"
)toml"),
            Lines{"vigil.toml:5:8: check 'web': 'team' \"web ops\" must be 1-64 letters, digits, "
                  "'-', '_' or '.'"});
}

TEST(ConfigErrors, ServiceInvalid) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
service = "shop/api"
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'service' \"shop/api\" must be 1-64 letters, "
                  "digits, '-', '_' or '.'"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
service = ""
)toml"),
            Lines{"vigil.toml:5:11: check 'web': 'service' \"\" must be 1-64 letters, digits, "
                  "'-', '_' or '.'"});
}

TEST(ConfigErrors, TeamLongerThan64) {
  const std::string team(65, 't');
  EXPECT_EQ(Errors("[[check]]\nname = \"web\"\nprobe = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n"
                   "team = \"" +
                   team + "\"\n"),
            Lines{"vigil.toml:5:8: check 'web': 'team' \"" + team +
                  "\" must be 1-64 letters, digits, '-', '_' or '.'"});
}

TEST(ConfigErrors, ServiceAndTeamWrongType) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
service = ["shop"]
team = 7
)toml"),
            (Lines{"vigil.toml:5:11: check 'web': 'service' must be a string, not an array",
                   "vigil.toml:6:8: check 'web': 'team' must be a string, not an integer"}));
}

TEST(ConfigErrors, FlapWindowOutOfRange) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_window = 3
)toml"),
            Lines{"vigil.toml:5:15: check 'web': 'flap_window' must be between 4 and 64, not 3"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_window = 65
)toml"),
            Lines{"vigil.toml:5:15: check 'web': 'flap_window' must be between 4 and 64, not 65"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_window = 20.0
)toml"),
            Lines{"vigil.toml:5:15: check 'web': 'flap_window' must be an integer, not a float"});
}

TEST(ConfigErrors, FlapLowNotBelowFlapHigh) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_low = 0.6
flap_high = 0.4
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'flap_low' (0.6) must be below 'flap_high' "
                  "(0.4): the gap between them is the hysteresis"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_low = 0.3
flap_high = 0.3
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'flap_low' (0.3) must be below 'flap_high' "
                  "(0.3): the gap between them is the hysteresis"});
}

TEST(ConfigErrors, FlapLowOrHighAgainstTheOthersDefault) {
  // One threshold given, the other at its default (low 0.25, high 0.5): the message says which
  // value the operator did not write, and points at the one they did.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_low = 0.6
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'flap_low' (0.6) must be below 'flap_high' "
                  "(0.5, the default): the gap between them is the hysteresis"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_high = 0.2
)toml"),
            Lines{"vigil.toml:5:13: check 'web': 'flap_low' (0.25, the default) must be below "
                  "'flap_high' (0.2): the gap between them is the hysteresis"});
}

TEST(ConfigErrors, FlapThresholdsMustBeFractionsStrictlyBetweenZeroAndOne) {
  for (const auto& [value, shown] : std::vector<std::pair<std::string, std::string>>{
           {"0.0", "0"},
           {"1.0", "1"},
           {"1.5", "1.5"},
           {"-0.25", "-0.25"},
           {"nan", "nan"},  // NaN compares false both ways: it must not slip through
           {"inf", "inf"},
           {"50", "an integer"},  // a percentage
           {"\"25%\"", "a string"}}) {
    EXPECT_EQ(
        Errors("[[check]]\nname = \"web\"\nprobe = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n"
               "flap_high = " +
               value + "\n"),
        Lines{"vigil.toml:5:13: check 'web': 'flap_high' must be a fraction between 0 and 1 "
              "(e.g. 0.25), not " +
              shown})
        << value;
  }
}

TEST(ConfigErrors, AnInvalidFlapThresholdIsNotComparedAgain) {
  // flap_low = 1.5 is refused; comparing the default low that stays in its place against
  // flap_high would blame a value the operator never wrote.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
flap_low = 1.5
flap_high = 0.2
)toml"),
            Lines{"vigil.toml:5:12: check 'web': 'flap_low' must be a fraction between 0 and 1 "
                  "(e.g. 0.25), not 1.5"});
}

TEST(ConfigErrors, HttpOwnerUnitInvalidName) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
unit = "nginx"
)toml"),
            Lines{"vigil.toml:5:8: check 'web': \"nginx\" is not a unit name (e.g. "
                  "\"nginx.service\", \"app@1.service\")"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
unit = "my app.service"
)toml"),
            Lines{"vigil.toml:5:8: check 'web': \"my app.service\" is not a unit name (e.g. "
                  "\"nginx.service\", \"app@1.service\")"});
}

TEST(ConfigErrors, HttpOwnerUnitIsOneUnitNotAGlobOrAList) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
unit = "app@*.service"
)toml"),
            Lines{"vigil.toml:5:8: check 'web': \"app@*.service\" is not a unit name (e.g. "
                  "\"nginx.service\", \"app@1.service\")"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
unit = ["a.service", "b.service"]
)toml"),
            Lines{"vigil.toml:5:8: check 'web': 'unit' must be a string, not an array"});
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
units = "nginx.service"
)toml"),
            Lines{"vigil.toml:5:1: check 'web': unknown key 'units' (did you mean 'unit'?)"});
}

TEST(ConfigErrors, UnknownRoutingKeyWithSuggestion) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
servce = "shop"
flap_hi = 0.6
)toml"),
            (Lines{"vigil.toml:5:1: check 'web': unknown key 'servce' (did you mean 'service'?)",
                   "vigil.toml:6:1: check 'web': unknown key 'flap_hi' (did you mean "
                   "'flap_high'?)"}));
}

TEST(ConfigErrors, RoutingKeysAreCheckedOnUnitAndJournalChecksToo) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "app-unit"
probe = "unit"
unit = "app.service"
team = "web ops"

[[check]]
name = "app-log"
probe = "journal"
unit = "app.service"
pattern = "connection pool exhausted"
flap_low = 0.9
)toml"),
            (Lines{"vigil.toml:5:8: check 'app-unit': 'team' \"web ops\" must be 1-64 letters, "
                   "digits, '-', '_' or '.'",
                   "vigil.toml:12:12: check 'app-log': 'flap_low' (0.9) must be below 'flap_high' "
                   "(0.5, the default): the gap between them is the hysteresis"}));
}

// ---------------------------------------------------------------------------------------------
// All errors at once, in file order

TEST(ConfigErrors, ThreeMistakesGiveThreeErrorsSortedByLine) {
  // [agent] is validated before the checks; the errors still come out in file order.
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
interval = "0s"
probe = "http"
fail_after = 0
url = "http://127.0.0.1:8080/"

[agent]
dry_run = 1
)toml"),
            (Lines{"vigil.toml:3:12: check 'web': 'interval' must be greater than zero",
                   "vigil.toml:5:14: check 'web': 'fail_after' must be between 1 and 1000, not 0",
                   "vigil.toml:9:11: [agent]: 'dry_run' must be true or false, not an integer"}));
}

TEST(ConfigErrors, ErrorsOnOneLineAreSortedByColumn) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = [700, "abc", 99]
)toml"),
            (Lines{"vigil.toml:5:18: check 'web': 'expect_status': 700 is not an HTTP status code "
                   "(100-599)",
                   "vigil.toml:5:23: check 'web': 'expect_status': \"abc\" is not a status code, "
                   "a class like \"2xx\" or a range like \"200-399\"",
                   "vigil.toml:5:30: check 'web': 'expect_status': 99 is not an HTTP status code "
                   "(100-599)"}));
}

TEST(ConfigErrors, ErrorsInSeveralChecksAreAllReported) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "a"
probe = "http"
url = "ftp://a.example/"

[[check]]
name = "b"
probe = "http"
url = "http://b.example/"
intreval = "10s"
)toml"),
            (Lines{"vigil.toml:4:7: check 'a': 'url' \"ftp://a.example/\": scheme must be http or "
                   "https",
                   "vigil.toml:10:1: check 'b': unknown key 'intreval' (did you mean "
                   "'interval'?)"}));
}

// ---------------------------------------------------------------------------------------------
// Valid configs

constexpr std::string_view kFullConfig = R"toml(
[agent]
hostname = "probe-1.example.org"
state_dir = "/srv/vigil"
dry_run = true

[[check]]
name = "api"
probe = "http"
url = "https://api.example.org/health"
method = "GET"
interval = "1m30s"
timeout = "2s"
fail_after = 3
recover_after = 4
confirm = 1
confirm_interval = "500ms"
latency_warn = "300ms"
latency_crit = "1s"
expect_status = ["2xx", "300-304", 418]
body_contains = "ok"
body_regex = '"status":\s*"up"'
headers = { Host = "api.internal", X-Probe = "vigil" }
verify_tls = false

[check.severity]
http_5xx = "SEV2"
body = "sev3"
latency_warn = "SEV2"
latency_crit = "SEV1"

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "2s"
method = "HEAD"
expect_status = 204

[[check]]
name = "slow"
probe = "http"
url = "http://127.0.0.1:8080/slow"
)toml";

TEST(ConfigValid, FullConfigAgent) {
  const Config cfg = Valid(kFullConfig);
  EXPECT_EQ(cfg.path, "vigil.toml");
  EXPECT_EQ(cfg.agent.hostname, "probe-1.example.org");
  EXPECT_EQ(cfg.agent.state_dir, "/srv/vigil");
  EXPECT_EQ(cfg.agent.dry_run, DryRun::yes);
  ASSERT_EQ(cfg.checks.size(), 3u);
  EXPECT_EQ(cfg.checks[0].name, "api");
  EXPECT_EQ(cfg.checks[1].name, "web");
  EXPECT_EQ(cfg.checks[2].name, "slow");
  EXPECT_EQ(cfg.find_check("web"), &cfg.checks[1]);
  EXPECT_EQ(cfg.find_check("nope"), nullptr);
}

TEST(ConfigValid, FullConfigExplicitCheck) {
  const Config cfg = Valid(kFullConfig);
  ASSERT_EQ(cfg.checks.size(), 3u);
  const CheckConfig& c = cfg.checks[0];
  EXPECT_EQ(c.probe, "http");
  EXPECT_EQ(c.where.file, "vigil.toml");
  EXPECT_EQ(c.where.line, 6);
  EXPECT_EQ(c.interval, seconds(90));
  EXPECT_EQ(c.timeout, seconds(2));
  EXPECT_EQ(c.fail_after, 3);
  EXPECT_EQ(c.recover_after, 4);
  EXPECT_EQ(c.confirm, 1);
  EXPECT_EQ(c.confirm_interval, milliseconds(500));
  EXPECT_EQ(c.latency_warn, milliseconds(300));
  EXPECT_EQ(c.latency_crit, seconds(1));

  const HttpSettings* h = c.http();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->url, "https://api.example.org/health");
  EXPECT_EQ(h->method, HttpMethod::get);
  EXPECT_EQ(h->expect_status, (std::vector<StatusRange>{{200, 299}, {300, 304}, {418, 418}}));
  EXPECT_EQ(h->body_contains, "ok");
  EXPECT_EQ(h->body_regex, R"("status":\s*"up")");
  ASSERT_NE(h->body_regex_compiled, nullptr);
  EXPECT_EQ(h->headers, (std::vector<std::pair<std::string, std::string>>{{"Host", "api.internal"},
                                                                          {"X-Probe", "vigil"}}));
  EXPECT_FALSE(h->verify_tls);

  EXPECT_TRUE(h->status_expected(200));
  EXPECT_TRUE(h->status_expected(299));
  EXPECT_TRUE(h->status_expected(304));
  EXPECT_TRUE(h->status_expected(418));
  EXPECT_FALSE(h->status_expected(305));
  EXPECT_FALSE(h->status_expected(404));
}

TEST(ConfigValid, FullConfigSeverityOverrides) {
  const Config cfg = Valid(kFullConfig);
  ASSERT_EQ(cfg.checks.size(), 3u);
  const SeverityRules& s = cfg.checks[0].severity;
  EXPECT_EQ(s.for_failure(FailureKind::http_5xx), Severity::sev2);
  EXPECT_EQ(s.for_failure(FailureKind::body), Severity::sev3);  // "sev3": case-insensitive
  EXPECT_EQ(s.latency_warn, Severity::sev2);
  EXPECT_EQ(s.latency_crit, Severity::sev1);
  // Not overridden: defaults.
  EXPECT_EQ(s.for_failure(FailureKind::refused), Severity::sev1);
  EXPECT_EQ(s.for_failure(FailureKind::http_4xx), Severity::sev2);
}

TEST(ConfigValid, FullConfigHeadCheckWithSingleStatus) {
  const Config cfg = Valid(kFullConfig);
  ASSERT_EQ(cfg.checks.size(), 3u);
  const CheckConfig& c = cfg.checks[1];
  EXPECT_EQ(c.interval, seconds(2));
  EXPECT_EQ(c.timeout, seconds(2));  // default timeout is capped by the interval
  const HttpSettings* h = c.http();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->method, HttpMethod::head);
  EXPECT_EQ(h->expect_status, (std::vector<StatusRange>{{204, 204}}));
}

TEST(ConfigValid, Defaults) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
)toml");
  EXPECT_FALSE(cfg.agent.hostname.empty());  // from gethostname()
  EXPECT_EQ(cfg.agent.state_dir, "/var/lib/vigil");
  EXPECT_EQ(cfg.agent.dry_run, DryRun::no);
  ASSERT_EQ(cfg.checks.size(), 1u);
  const CheckConfig& c = cfg.checks[0];
  EXPECT_EQ(c.where.line, 1);
  EXPECT_EQ(c.interval, seconds(10));
  EXPECT_EQ(c.timeout, seconds(5));
  EXPECT_EQ(c.fail_after, 1);
  EXPECT_EQ(c.recover_after, 2);
  EXPECT_EQ(c.confirm, 2);
  EXPECT_EQ(c.confirm_interval, milliseconds(200));
  EXPECT_FALSE(c.latency_warn.has_value());
  EXPECT_FALSE(c.latency_crit.has_value());
  const HttpSettings* h = c.http();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->method, HttpMethod::get);
  EXPECT_EQ(h->expect_status, (std::vector<StatusRange>{{200, 399}}));
  EXPECT_TRUE(h->body_contains.empty());
  EXPECT_TRUE(h->body_regex.empty());
  EXPECT_EQ(h->body_regex_compiled, nullptr);
  EXPECT_TRUE(h->headers.empty());
  EXPECT_TRUE(h->verify_tls);
}

TEST(ConfigValid, DefaultTimeoutIsFiveSecondsOrTheIntervalIfShorter) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "long"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "30s"

[[check]]
name = "short"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "1s"

[[check]]
name = "equal"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "1s"
timeout = "1s"
)toml");
  ASSERT_EQ(cfg.checks.size(), 3u);
  EXPECT_EQ(cfg.checks[0].timeout, seconds(5));
  EXPECT_EQ(cfg.checks[1].timeout, seconds(1));
  EXPECT_EQ(cfg.checks[2].timeout, seconds(1));  // timeout == interval is allowed
}

TEST(ConfigValid, DefaultSeverityRules) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
)toml");
  ASSERT_EQ(cfg.checks.size(), 1u);
  const SeverityRules& s = cfg.checks[0].severity;
  for (FailureKind k :
       {FailureKind::refused, FailureKind::timeout, FailureKind::reset, FailureKind::dns,
        FailureKind::tls, FailureKind::protocol, FailureKind::http_5xx, FailureKind::error}) {
    EXPECT_EQ(s.for_failure(k), Severity::sev1) << to_string(k);
  }
  for (FailureKind k : {FailureKind::http_4xx, FailureKind::http_status, FailureKind::body}) {
    EXPECT_EQ(s.for_failure(k), Severity::sev2) << to_string(k);
  }
  EXPECT_EQ(s.latency_warn, Severity::sev3);
  EXPECT_EQ(s.latency_crit, Severity::sev2);
}

TEST(ConfigValid, StatusClassesAndRanges) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = ["1XX", "5xx", "200-200", 302]
)toml");
  ASSERT_EQ(cfg.checks.size(), 1u);
  ASSERT_NE(cfg.checks[0].http(), nullptr);
  EXPECT_EQ(cfg.checks[0].http()->expect_status,
            (std::vector<StatusRange>{{100, 199}, {500, 599}, {200, 200}, {302, 302}}));
}

TEST(ConfigValid, EmptyFileHasNoChecks) {
  const Config cfg = Valid("");
  EXPECT_TRUE(cfg.checks.empty());
  EXPECT_EQ(cfg.agent.state_dir, "/var/lib/vigil");
}

TEST(ConfigValid, IncidentBookDefaults) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
)toml");
  EXPECT_EQ(cfg.agent.control_socket, "/run/vigil/control.sock");
  EXPECT_EQ(cfg.agent.metrics_listen, "");  // off
  EXPECT_EQ(cfg.agent.upgrade_after, std::chrono::hours(1));
  ASSERT_EQ(cfg.checks.size(), 1u);
  const CheckConfig& c = cfg.checks[0];
  EXPECT_EQ(c.service, "");
  EXPECT_EQ(c.team, "");
  EXPECT_EQ(c.owner_unit, "");
  EXPECT_EQ(c.flap.window, 20);
  EXPECT_EQ(c.flap.low, 0.25);
  EXPECT_EQ(c.flap.high, 0.5);
}

TEST(ConfigValid, AgentIncidentBookSettings) {
  const Config cfg = Valid(R"toml(
[agent]
control_socket = "/run/vigil-test/ctl.sock"
metrics = "127.0.0.1:9717"
upgrade_after = "30m"
)toml");
  EXPECT_EQ(cfg.agent.control_socket, "/run/vigil-test/ctl.sock");
  EXPECT_EQ(cfg.agent.metrics_listen, "127.0.0.1:9717");
  EXPECT_EQ(cfg.agent.upgrade_after, minutes(30));
}

TEST(ConfigValid, AgentControlSocketOfExactly100Bytes) {
  const std::string path = "/run/vigil/" + std::string(84, 'a') + ".sock";
  ASSERT_EQ(path.size(), 100u);
  const Config cfg = Valid("[agent]\ncontrol_socket = \"" + path + "\"\n");
  EXPECT_EQ(cfg.agent.control_socket, path);
}

TEST(ConfigValid, AgentMetricsOnLoopbackAddresses) {
  for (const std::string address : {"127.0.0.1:9717", "[::1]:9717", "127.1.2.3:65535",
                                    "127.0.0.1:1", "[127.0.0.1]:9717", "127.0.0.1:00080"}) {
    const Config cfg = Valid("[agent]\nmetrics = \"" + address + "\"\n");
    EXPECT_EQ(cfg.agent.metrics_listen, address);
  }
}

TEST(ConfigValid, MetricsAddressesTheConfigAcceptsAreTheOnesTheDaemonBinds) {
  // The daemon binds agent.metrics with parse_listen_address and only logs when that fails: an
  // address that passes check-config but not the daemon would leave metrics silently off.
  // Port 0 ("any free port") is the one intended difference: nothing could scrape it.
  for (const std::string address : {"127.0.0.1:9717",
                                    "[::1]:9717",
                                    "127.1.2.3:65535",
                                    "[127.0.0.1]:9717",
                                    "127.0.0.1:00080",
                                    "::1:9717",
                                    "[::1]",
                                    "[::1]9717",
                                    "[::1:9717",
                                    "::1]:9717",
                                    "127.0.0.1",
                                    "127.0.0.1:",
                                    "127.0.0.1:65536",
                                    "127.0.0.1:999999",
                                    "127.0.0.1:+80",
                                    "127.0.0.1: 80",
                                    "0.0.0.0:9717",
                                    "[::]:9717",
                                    "localhost:9717",
                                    "::ffff:127.0.0.1:9717",
                                    "[::ffff:127.0.0.1]:9717",
                                    "127.0.0.01:9717",
                                    ":9717",
                                    ""}) {
    const bool config_ok = Errors("[agent]\nmetrics = \"" + address + "\"\n").empty();
    const Result<ListenAddress> bound = parse_listen_address(address);
    EXPECT_EQ(config_ok, bound.has_value()) << address;
  }
}

TEST(ConfigValid, AgentUpgradeAfterOffZeroAndZeroSecondsMeanNever) {
  for (const std::string never : {"off", "0", "0s", "0m", "0h0m"}) {
    const Config cfg = Valid("[agent]\nupgrade_after = \"" + never + "\"\n");
    EXPECT_EQ(cfg.agent.upgrade_after, Duration::zero()) << never;
  }
  const Config cfg = Valid(R"toml(
[agent]
upgrade_after = "1s"
)toml");
  EXPECT_EQ(cfg.agent.upgrade_after, seconds(1));  // the minimum
}

TEST(ConfigValid, RoutingAndOwnerUnitOnAnHttpCheck) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "app-http"
probe = "http"
url = "http://127.0.0.1:8080/health"
service = "shop.api-v2_eu"
team = "Web-Ops.1"
unit = "app@1.service"
flap_window = 64
flap_low = 0.1
flap_high = 0.9
)toml");
  ASSERT_EQ(cfg.checks.size(), 1u);
  const CheckConfig& c = cfg.checks[0];
  EXPECT_EQ(c.service, "shop.api-v2_eu");
  EXPECT_EQ(c.team, "Web-Ops.1");
  EXPECT_EQ(c.owner_unit, "app@1.service");
  EXPECT_EQ(c.flap.window, 64);
  EXPECT_EQ(c.flap.low, 0.1);
  EXPECT_EQ(c.flap.high, 0.9);
  ASSERT_NE(c.http(), nullptr);  // `unit` on an HTTP check is the owner, not a unit check
}

TEST(ConfigValid, ServiceAndTeamOnUnitAndJournalChecks) {
  // The three checks of one application name the same service, so they share one incident.
  const Config cfg = Valid(R"toml(
[[check]]
name = "app-http"
probe = "http"
url = "http://127.0.0.1:8080/health"
service = "app"
team = "web"
unit = "app.service"

[[check]]
name = "app-unit"
probe = "unit"
unit = "app.service"
service = "app"
team = "web"
flap_window = 4

[[check]]
name = "app-log"
probe = "journal"
unit = "app.service"
pattern = "connection pool exhausted"
service = "app"
team = "web"
flap_low = 0.2
flap_high = 0.3
)toml");
  ASSERT_EQ(cfg.checks.size(), 3u);
  for (const CheckConfig& c : cfg.checks) {
    EXPECT_EQ(c.service, "app") << c.name;
    EXPECT_EQ(c.team, "web") << c.name;
  }
  EXPECT_EQ(cfg.checks[0].owner_unit, "app.service");
  // On unit and journal checks `unit` is what they watch, not an owner.
  EXPECT_EQ(cfg.checks[1].owner_unit, "");
  ASSERT_NE(cfg.checks[1].unit(), nullptr);
  EXPECT_EQ(cfg.checks[1].unit()->units, std::vector<std::string>{"app.service"});
  EXPECT_EQ(cfg.checks[1].flap.window, 4);
  EXPECT_EQ(cfg.checks[2].owner_unit, "");
  ASSERT_NE(cfg.checks[2].journal(), nullptr);
  EXPECT_EQ(cfg.checks[2].journal()->units, std::vector<std::string>{"app.service"});
  EXPECT_EQ(cfg.checks[2].flap.low, 0.2);
  EXPECT_EQ(cfg.checks[2].flap.high, 0.3);
}

TEST(ConfigValid, JournalCheckWithKeyAndService) {
  // `key` still gives one incident per captured value (the book decides); the config just keeps
  // both.
  const Config cfg = Valid(R"toml(
[[check]]
name = "ssh"
probe = "journal"
unit = "ssh.service"
pattern = 'Failed password for \S+ from (?P<ip>\S+)'
key = "ip"
service = "ssh"
team = "security"
)toml");
  ASSERT_EQ(cfg.checks.size(), 1u);
  EXPECT_EQ(cfg.checks[0].service, "ssh");
  EXPECT_EQ(cfg.checks[0].team, "security");
  ASSERT_NE(cfg.checks[0].journal(), nullptr);
  EXPECT_EQ(cfg.checks[0].journal()->key, "ip");
}

TEST(ConfigValid, ServiceAndTeamOf64Characters) {
  const std::string name(64, 'x');
  const Config cfg = Valid(
      "[[check]]\nname = \"web\"\nprobe = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n"
      "service = \"" +
      name + "\"\nteam = \"" + name + "\"\n");
  ASSERT_EQ(cfg.checks.size(), 1u);
  EXPECT_EQ(cfg.checks[0].service, name);
  EXPECT_EQ(cfg.checks[0].team, name);
}

// ---------------------------------------------------------------------------------------------
// load_config_file

TEST(LoadConfigFile, MissingFileIsOneError) {
  const std::string path = testing::TempDir() + "vigil-no-such-dir/vigil.toml";
  const LoadResult r = load_config_file(path);
  EXPECT_FALSE(r.config.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].where.file, path);
  EXPECT_EQ(r.errors[0].where.line, 0);
  EXPECT_EQ(r.errors[0].to_string(),
            path + ":0:0: cannot read config file: No such file or directory");
}

TEST(LoadConfigFile, ReadsAndValidatesTheFile) {
  const std::string path = testing::TempDir() + "vigil_config_test.toml";
  {
    std::ofstream out(path, std::ios::binary);
    out << Text(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
interval = "0s"
)toml");
  }
  const LoadResult r = load_config_file(path);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            path + ":5:12: check 'web': 'interval' must be greater than zero");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(ConfigValid, StatusCodeWrittenAsString) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
expect_status = ["503", 200]
)toml");
  const HttpSettings* h = cfg.checks.at(0).http();
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->expect_status, (std::vector<StatusRange>{{503, 503}, {200, 200}}));
}

}  // namespace
}  // namespace vigil

namespace vigil {
namespace {

TEST(ConfigValid, UnitCheckTakesGlobsJournalCheckDoesNot) {
  const Config cfg = Valid(R"toml(
[[check]]
name = "workers"
probe = "unit"
units = ["worker@*.service", "nginx.service"]
)toml");
  ASSERT_NE(cfg.checks.at(0).unit(), nullptr);
  EXPECT_EQ(cfg.checks.at(0).unit()->units,
            (std::vector<std::string>{"worker@*.service", "nginx.service"}));
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "j"
probe = "journal"
unit = "worker@*.service"
pattern = "x"
)toml"),
            Lines{"vigil.toml:4:8: check 'j': \"worker@*.service\" is not a unit name (e.g. "
                  "\"nginx.service\", \"app@1.service\")"});
}

// `unit` and `units` each take a string or an array of strings, but not both keys at once.
TEST(ConfigErrors, UnitListsTakeStringsOnly) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "u"
probe = "unit"
unit = "a.service"
units = ["b.service", 7]
)toml"),
            (Lines{"vigil.toml:5:9: check 'u': give either 'unit' or 'units', not both",
                   "vigil.toml:5:23: check 'u': 'units' items must be strings, not an integer"}));
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "u"
probe = "unit"
unit = 5
)toml"),
            Lines{"vigil.toml:4:8: check 'u': 'unit' must be a string or an array of strings, "
                  "not an integer"});
}

// ---------------------------------------------------------------------------------------------
// Mitigations: [mitigation], [action.KIND.NAME] and the checks' `mitigate` ladders

TEST(ConfigMitigation, FullExampleParsesWithDefaults) {
  const Config c = Valid(R"toml(
[mitigation]
allow = ["10.0.0.0/8", "2001:db8::1"]
protect_ssh_sessions = false
max_blocks_per_minute = 5
circuit_reset = "30m"

[action.rollback.shop]
dir = "/srv/shop"
unit = "shop.service"

[action.restart.nginx]

[action.block.ssh]
block_for = "10m"
max_block_for = "1d"
kill_connections = false
dry_run = true

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
mitigate = ["rollback:shop", "restart:nginx"]

[[check]]
name = "sshd"
probe = "journal"
unit = "ssh.service"
pattern = 'Failed password for .* from (?P<ip>\S+)'
key = "ip"
mitigate = ["block:ssh"]
)toml");
  ASSERT_EQ(c.mitigation.allow.size(), 2u);
  EXPECT_EQ(c.mitigation.allow[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(c.mitigation.allow[1].to_string(), "2001:db8::1/128");
  EXPECT_FALSE(c.mitigation.protect_ssh_sessions);
  EXPECT_EQ(c.mitigation.max_blocks_per_minute, 5);
  EXPECT_EQ(c.mitigation.circuit_reset, minutes(30));
  const ActionConfig* rb = c.find_action("rollback:shop");
  ASSERT_NE(rb, nullptr);
  EXPECT_EQ(rb->dir, "/srv/shop");
  EXPECT_EQ(rb->unit, "shop.service");
  EXPECT_EQ(rb->max_runs, 3);
  EXPECT_EQ(rb->per, minutes(60));
  EXPECT_EQ(rb->cooldown, minutes(1));
  EXPECT_EQ(rb->verify_within, minutes(2));
  const ActionConfig* rs = c.find_action("restart:nginx");
  ASSERT_NE(rs, nullptr);
  EXPECT_EQ(rs->unit, "nginx.service");  // the name, as a service, when no unit is given
  EXPECT_EQ(rs->job_timeout, seconds(90));
  const ActionConfig* bl = c.find_action("block:ssh");
  ASSERT_NE(bl, nullptr);
  EXPECT_EQ(bl->block_for, minutes(10));
  EXPECT_EQ(bl->max_block_for, std::chrono::hours(24));
  EXPECT_FALSE(bl->kill_connections);
  EXPECT_EQ(bl->dry_run, DryRun::yes);
  EXPECT_EQ(c.checks[0].mitigate, (std::vector<std::string>{"rollback:shop", "restart:nginx"}));
}

TEST(ConfigMitigation, LadderStepMustNameADefinedAction) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
mitigate = ["restart:nginx", "reboot", "restart:nginx"]
)toml"),
            (Lines{"vigil.toml:5:12: check 'web': 'mitigate': no action \"restart:nginx\" (define "
                   "it as [action.restart.nginx])",
                   "vigil.toml:5:12: check 'web': 'mitigate': \"reboot\" must be \"KIND:NAME\" "
                   "with KIND restart, rollback or block (e.g. \"restart:app\")",
                   "vigil.toml:5:12: check 'web': 'mitigate' names \"restart:nginx\" twice"}));
}

TEST(ConfigMitigation, BlockNeedsAKeyedJournalCheckAndServiceActionsDoNot) {
  EXPECT_EQ(Errors(R"toml(
[action.block.ssh]
[action.restart.sshd]

[[check]]
name = "web"
probe = "http"
url = "http://127.0.0.1:8080/"
mitigate = ["block:ssh"]

[[check]]
name = "sshd"
probe = "journal"
unit = "ssh.service"
pattern = 'from (?P<ip>\S+)'
key = "ip"
mitigate = ["restart:sshd"]
)toml"),
            (Lines{"vigil.toml:8:12: check 'web': 'mitigate': \"block:ssh\" blocks the address a "
                   "journal check captures: it needs probe = \"journal\" and key = \"NAME\" (a "
                   "named capture of the IP)",
                   "vigil.toml:16:12: check 'sshd': 'mitigate': \"restart:sshd\" acts on a "
                   "service, but this check counts per 'ip': only block fits a per-address rule"}));
}

TEST(ConfigMitigation, ActionTablesAreValidated) {
  EXPECT_EQ(Errors(R"toml(
[action.rollback.shop]
unit = "shop"
[action.rollback.other]
dir = "srv/../x"
[action.restart.web]
max_run = 3
cooldown = 5
[action.block.ssh]
block_for = "1d"
max_block_for = "1h"
[action.reboot.now]
)toml"),
            (Lines{"vigil.toml:1:1: [action.rollback.shop]: missing required key 'dir' (the "
                   "directory holding releases/ and the current symlink, e.g. \"/srv/app\")",
                   "vigil.toml:2:8: [action.rollback.shop]: \"shop\" is not a unit name (e.g. "
                   "\"nginx.service\", \"app@1.service\")",
                   "vigil.toml:4:7: [action.rollback.other]: 'dir' must be an absolute path "
                   "without '..', not \"srv/../x\"",
                   "vigil.toml:6:1: [action.restart.web]: unknown key 'max_run' (did you mean "
                   "'max_runs'?)",
                   "vigil.toml:7:12: [action.restart.web]: 'cooldown' must be a duration string "
                   "like \"250ms\", \"5s\" or \"10m\", not an integer (write a string with a unit, "
                   "e.g. \"5s\")",
                   "vigil.toml:10:17: [action.block.ssh]: 'max_block_for' (1h) must not be "
                   "shorter than 'block_for' (1d)",
                   "vigil.toml:11:9: [action]: unknown key 'reboot'"}));
}

TEST(ConfigMitigation, AllowListEntriesAreParsedStrictly) {
  EXPECT_EQ(Errors(R"toml(
[mitigation]
allow = ["10.0.0.1/8", "010.1.2.3", 7]
)toml")
                .size(),
            3u);
  EXPECT_EQ(Errors(R"toml(
[mitigation]
allow = "10.0.0.0/8"
)toml"),
            (Lines{"vigil.toml:2:9: [mitigation]: 'allow' must be an array of addresses or CIDR "
                   "blocks, e.g. allow = [\"10.0.0.0/8\", \"2001:db8::1\"]"}));
}

}  // namespace
}  // namespace vigil

// ---------------------------------------------------------------------------------------------
// Paging: [paging], [[notify]] and [[escalation]]

namespace vigil {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;
using Strings = std::vector<std::string>;

// A secret file with `content` and `mode`, removed when the test ends. The process id keeps
// concurrent runs of the test binary (several build trees, one /tmp) apart.
class SecretFile {
 public:
  SecretFile(const std::string& name, std::string_view content, mode_t mode)
      : path_(testing::TempDir() + "vigil-config-test-" + std::to_string(::getpid()) + "-" + name) {
    {
      std::ofstream out(path_, std::ios::binary | std::ios::trunc);
      out << content;
    }
    EXPECT_EQ(::chmod(path_.c_str(), mode), 0) << path_;
  }
  ~SecretFile() { std::remove(path_.c_str()); }
  SecretFile(const SecretFile&) = delete;
  SecretFile& operator=(const SecretFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr std::string_view kRoutingKey = "R0ut1ngKeyOfExactly32Characters0";  // 32 characters

TEST(ConfigPaging, EmptyConfigHasNoNotifiersAndTheDefaultSettings) {
  const Config cfg = Valid("");
  EXPECT_TRUE(cfg.notify.empty());
  EXPECT_TRUE(cfg.escalations.empty());
  EXPECT_EQ(cfg.paging.outbox_max, 10'000u);
  EXPECT_EQ(cfg.paging.heartbeat_every, minutes(1));
  EXPECT_EQ(cfg.paging.heartbeat_url, "");
  EXPECT_EQ(cfg.paging.link_base, "");
  EXPECT_EQ(cfg.find_notify("alertmanager"), nullptr);
  EXPECT_EQ(cfg.escalation_for("payments"), nullptr);
  EXPECT_EQ(cfg.escalation_for(""), nullptr);
}

TEST(ConfigPaging, PagingSettings) {
  const Config cfg = Valid(R"toml(
[paging]
outbox_max = 100
heartbeat_every = "10s"
heartbeat_url = "https://hc.example/ping/abc"
link_base = "https://vigil.example/incidents/"
)toml");
  EXPECT_EQ(cfg.paging.outbox_max, 100u);
  EXPECT_EQ(cfg.paging.heartbeat_every, seconds(10));
  EXPECT_EQ(cfg.paging.heartbeat_url, "https://hc.example/ping/abc");
  EXPECT_EQ(cfg.paging.link_base, "https://vigil.example/incidents/");
}

TEST(ConfigPaging, PagingSettingsAreValidated) {
  EXPECT_EQ(
      Errors(R"toml(
[paging]
outbox_max = 99
heartbeat_every = "5s"
heartbeat_url = "ftp://hc.example/ping/abc"
link_base = "vigil.example/incidents/"
heartbeat_evry = "1m"
)toml"),
      (Lines{"vigil.toml:2:14: [paging]: 'outbox_max' must be between 100 and 1000000, not 99",
             "vigil.toml:3:19: [paging]: 'heartbeat_every' must be at least 10s, not \"5s\"",
             "vigil.toml:4:17: [paging]: 'heartbeat_url' \"ftp://hc.example/ping/abc\": "
             "scheme must be http or https",
             "vigil.toml:5:13: [paging]: 'link_base' \"vigil.example/incidents/\": is not "
             "a valid URL (Bad scheme)",
             "vigil.toml:6:1: [paging]: unknown key 'heartbeat_evry' (did you mean "
             "'heartbeat_every'?)"}));
  EXPECT_EQ(Errors(R"toml(
paging = "on"
)toml"),
            Lines{"vigil.toml:1:10: 'paging' must be a table: write [paging]"});
}

TEST(ConfigPaging, TopLevelTyposSuggestThePagingTables) {
  EXPECT_EQ(Errors(R"toml(
[[notfy]]
kind = "webhook"
[[escalations]]
[pagin]
)toml"),
            (Lines{"vigil.toml:1:3: unknown key 'notfy' (did you mean 'notify'?)",
                   "vigil.toml:3:3: unknown key 'escalations' (did you mean 'escalation'?)",
                   "vigil.toml:4:2: unknown key 'pagin' (did you mean 'paging'?)"}));
}

// ---------------------------------------------------------------------------------------------
// [[notify]]: a full example of every kind

TEST(ConfigNotify, FullExampleOfEveryKind) {
  const SecretFile pd_key("pd.key", std::string(kRoutingKey) + "\n", 0600);
  const SecretFile sp_key("sp.key", "sp-api-key\r\n", 0400);
  const std::string text = std::string(R"toml(
[[notify]]
name = "am"
kind = "alertmanager"
urls = ["http://10.0.0.1:9093", "http://10.0.0.2:9093/prefix/"]
severity = "SEV2"
teams = ["payments", "web"]
resend_every = "30s"
heartbeat = true
timeout = "5s"
max_per_minute = 120
verify_tls = false

[[notify]]
name = "pd"
kind = "pagerduty"
url = "https://pd-proxy.example"
routing_key_file = ")toml") +
                           pd_key.path() +
                           R"toml("
severity = "SEV1"

[[notify]]
kind = "oncall"
url = "https://oncall.example/integrations/v1/formatted_webhook/abc/"
teams = "payments"

[[notify]]
name = "status"
kind = "statuspage"
api_key_file = ")toml" + sp_key.path() +
                           R"toml("
page_id = "kctbh9vrtdwd"
component_ids = ["8kbf7d35c070", "vtnh60py4yd7"]
severity = "SEV2"
update_every = "15m"

[[notify]]
name = "oncall-primary"
kind = "webhook"
url = "https://chat.example/hooks/primary"
hmac_key = "shared secret"
signature_header = "X-Hub-Signature-256"
headers = { Authorization = "Bearer t0ken", "X-Team" = "payments" }
update_every = "10m"
max_per_minute = 1
)toml";
  const Config cfg = Valid(text);
  ASSERT_EQ(cfg.notify.size(), 5u);

  const NotifyConfig& am = cfg.notify[0];  // file order
  EXPECT_EQ(am.name, "am");
  EXPECT_EQ(am.kind, NotifierKind::alertmanager);
  EXPECT_EQ(am.urls, (Strings{"http://10.0.0.1:9093", "http://10.0.0.2:9093/prefix/"}));
  EXPECT_EQ(am.severity, Severity::sev2);
  EXPECT_EQ(am.teams, (Strings{"payments", "web"}));
  EXPECT_EQ(am.resend_every, seconds(30));
  EXPECT_TRUE(am.heartbeat);
  EXPECT_EQ(am.timeout, seconds(5));
  EXPECT_EQ(am.max_per_minute, 120);
  EXPECT_FALSE(am.verify_tls);
  EXPECT_EQ(am.secret, "");
  EXPECT_EQ(am.where.file, "vigil.toml");
  EXPECT_EQ(am.where.line, 1);
  EXPECT_EQ(am.where.column, 1);

  const NotifyConfig& pd = cfg.notify[1];
  EXPECT_EQ(pd.name, "pd");
  EXPECT_EQ(pd.kind, NotifierKind::pagerduty);
  EXPECT_EQ(pd.urls, (Strings{"https://pd-proxy.example"}));
  EXPECT_EQ(pd.secret, kRoutingKey);  // the trailing newline is not part of the key
  EXPECT_EQ(pd.secret_file, pd_key.path());
  EXPECT_EQ(pd.severity, Severity::sev1);
  EXPECT_TRUE(pd.teams.empty());
  EXPECT_EQ(pd.where.line, 13);

  const NotifyConfig& oc = cfg.notify[2];
  EXPECT_EQ(oc.name, "oncall");  // the kind, when not named
  EXPECT_EQ(oc.kind, NotifierKind::oncall);
  EXPECT_EQ(oc.urls, (Strings{"https://oncall.example/integrations/v1/formatted_webhook/abc/"}));
  EXPECT_EQ(oc.teams, (Strings{"payments"}));  // one team may be written as a string
  EXPECT_EQ(oc.severity, Severity::sev3);

  const NotifyConfig& sp = cfg.notify[3];
  EXPECT_EQ(sp.name, "status");
  EXPECT_EQ(sp.kind, NotifierKind::statuspage);
  EXPECT_EQ(sp.urls, (Strings{"https://api.statuspage.io"}));
  EXPECT_EQ(sp.secret, "sp-api-key");  // a CRLF line end is one newline too
  EXPECT_EQ(sp.secret_file, sp_key.path());
  EXPECT_EQ(sp.page_id, "kctbh9vrtdwd");
  EXPECT_EQ(sp.component_ids, (Strings{"8kbf7d35c070", "vtnh60py4yd7"}));
  EXPECT_EQ(sp.severity, Severity::sev2);
  EXPECT_EQ(sp.update_every, minutes(15));

  const NotifyConfig& wh = cfg.notify[4];
  EXPECT_EQ(wh.name, "oncall-primary");
  EXPECT_EQ(wh.kind, NotifierKind::webhook);
  EXPECT_EQ(wh.urls, (Strings{"https://chat.example/hooks/primary"}));
  EXPECT_EQ(wh.secret, "shared secret");
  EXPECT_EQ(wh.secret_file, "");  // inline
  EXPECT_EQ(wh.signature_header, "X-Hub-Signature-256");
  EXPECT_EQ(wh.headers, (Headers{{"Authorization", "Bearer t0ken"}, {"X-Team", "payments"}}));
  EXPECT_EQ(wh.update_every, minutes(10));
  EXPECT_EQ(wh.max_per_minute, 1);

  EXPECT_EQ(cfg.find_notify("pd"), &cfg.notify[1]);
  EXPECT_EQ(cfg.find_notify("oncall"), &cfg.notify[2]);
  EXPECT_EQ(cfg.find_notify("pagerduty"), nullptr);  // named "pd"
}

TEST(ConfigNotify, DefaultsOfEveryKind) {
  const Config cfg = Valid(R"toml(
[[notify]]
kind = "alertmanager"
urls = "http://am:9093"
[[notify]]
kind = "pagerduty"
routing_key = "R0ut1ngKeyOfExactly32Characters0"
[[notify]]
kind = "oncall"
url = "https://oncall.example/hook"
[[notify]]
kind = "statuspage"
api_key = "k"
page_id = "p1"
[[notify]]
kind = "webhook"
url = "https://hooks.example/vigil"
)toml");
  ASSERT_EQ(cfg.notify.size(), 5u);
  const Strings names{"alertmanager", "pagerduty", "oncall", "statuspage", "webhook"};
  for (std::size_t i = 0; i < cfg.notify.size(); ++i) {
    const NotifyConfig& n = cfg.notify[i];
    SCOPED_TRACE(n.name);
    EXPECT_EQ(n.name, names[i]);  // the name defaults to the kind
    EXPECT_EQ(to_string(n.kind), names[i]);
    EXPECT_EQ(n.severity, n.kind == NotifierKind::statuspage ? Severity::sev1 : Severity::sev3);
    EXPECT_TRUE(n.teams.empty());
    EXPECT_EQ(n.resend_every, minutes(1));
    EXPECT_EQ(n.update_every, minutes(30));
    EXPECT_EQ(n.timeout, seconds(10));
    EXPECT_EQ(n.max_per_minute, n.kind == NotifierKind::alertmanager ? 6000 : 60);
    EXPECT_TRUE(n.verify_tls);
    EXPECT_FALSE(n.heartbeat);
    EXPECT_EQ(n.signature_header, "X-Vigil-Signature");
    EXPECT_TRUE(n.headers.empty());
    EXPECT_EQ(n.secret_file, "");
  }
  EXPECT_EQ(cfg.notify[0].urls, (Strings{"http://am:9093"}));
  EXPECT_EQ(cfg.notify[1].urls, (Strings{"https://events.pagerduty.com"}));
  EXPECT_EQ(cfg.notify[1].secret, kRoutingKey);
  EXPECT_EQ(cfg.notify[3].urls, (Strings{"https://api.statuspage.io"}));
  EXPECT_EQ(cfg.notify[3].secret, "k");
  EXPECT_EQ(cfg.notify[4].secret, "");  // no HMAC signature
}

TEST(ConfigNotify, KindNamesAreTheConfigSpelling) {
  EXPECT_EQ(to_string(NotifierKind::alertmanager), "alertmanager");
  EXPECT_EQ(to_string(NotifierKind::pagerduty), "pagerduty");
  EXPECT_EQ(to_string(NotifierKind::oncall), "oncall");
  EXPECT_EQ(to_string(NotifierKind::statuspage), "statuspage");
  EXPECT_EQ(to_string(NotifierKind::webhook), "webhook");
}

TEST(ConfigNotify, LimitsAtTheirBounds) {
  const Config cfg = Valid(R"toml(
[[notify]]
name = "low"
kind = "alertmanager"
urls = ["http://am:9093"]
resend_every = "10s"
timeout = "1s"
max_per_minute = 1
[[notify]]
name = "high"
kind = "alertmanager"
urls = ["http://am:9093"]
resend_every = "1h"
timeout = "60s"
max_per_minute = 10000
[[notify]]
kind = "webhook"
url = "http://hooks.example/"
update_every = "1m"
)toml");
  ASSERT_EQ(cfg.notify.size(), 3u);
  EXPECT_EQ(cfg.notify[0].resend_every, seconds(10));
  EXPECT_EQ(cfg.notify[0].timeout, seconds(1));
  EXPECT_EQ(cfg.notify[1].resend_every, minutes(60));
  EXPECT_EQ(cfg.notify[1].timeout, seconds(60));
  EXPECT_EQ(cfg.notify[1].max_per_minute, 10000);
  EXPECT_EQ(cfg.notify[2].update_every, minutes(1));
}

// ---------------------------------------------------------------------------------------------
// [[notify]]: errors

TEST(ConfigNotify, NotifyMustBeAnArrayOfTables) {
  EXPECT_EQ(Errors(R"toml(
[notify]
kind = "webhook"
)toml"),
            Lines{"vigil.toml:1:1: 'notify' must be an array of tables: write [[notify]]"});
}

TEST(ConfigNotify, KindIsRequiredAndKnown) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
url = "https://hooks.example/"
[[notify]]
name = "pd"
kind = "pagerdutty"
[[notify]]
kind = "slack"
[[notify]]
kind = 1
)toml"),
            (Lines{"vigil.toml:1:1: notify: missing required key 'kind' (alertmanager, pagerduty, "
                   "oncall, statuspage or webhook)",
                   "vigil.toml:5:8: notify 'pd': unknown kind \"pagerdutty\" (did you mean "
                   "\"pagerduty\"?)",
                   "vigil.toml:7:8: notify: unknown kind \"slack\" (known: alertmanager, "
                   "pagerduty, oncall, statuspage, webhook; for a chat tool or a custom receiver: "
                   "webhook)",
                   "vigil.toml:9:8: notify: 'kind' must be a string, not an integer"}));
}

TEST(ConfigNotify, NamesAreValidAndUnique) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
name = "on call"
kind = "webhook"
url = "https://hooks.example/a"
[[notify]]
name = "chat"
kind = "webhook"
url = "https://hooks.example/b"
[[notify]]
name = "chat"
kind = "oncall"
url = "https://hooks.example/c"
)toml"),
            (Lines{"vigil.toml:2:8: notify: name \"on call\" must be 1-64 letters, digits, '-' or "
                   "'_'",
                   "vigil.toml:10:8: duplicate notify name 'chat' (first defined at "
                   "vigil.toml:6:8)"}));
}

TEST(ConfigNotify, TwoOfOneKindWithoutNamesAreDuplicates) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "alertmanager"
urls = ["http://am1:9093"]

[[notify]]
kind = "alertmanager"
urls = ["http://am2:9093"]
)toml"),
            (Lines{"vigil.toml:6:8: duplicate notify name 'alertmanager' (first defined at "
                   "vigil.toml:2:8): the name defaults to the kind; give each one its own "
                   "'name'"}));
}

TEST(ConfigNotify, KeysOfAnotherKindSayWhichKindTheyAreFor) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "webhook"
url = "https://hooks.example/"
routing_key = "R0ut1ngKeyOfExactly32Characters0"
heartbeat = true
page_id = "p"
[[notify]]
kind = "alertmanager"
urls = ["http://am:9093"]
update_every = "5m"
headers = { A = "b" }
)toml"),
            (Lines{"vigil.toml:4:1: notify 'webhook': 'routing_key' is only for kind pagerduty",
                   "vigil.toml:5:1: notify 'webhook': 'heartbeat' is only for kind alertmanager",
                   "vigil.toml:6:1: notify 'webhook': 'page_id' is only for kind statuspage",
                   "vigil.toml:10:1: notify 'alertmanager': 'update_every' is only for kinds "
                   "statuspage and webhook",
                   "vigil.toml:11:1: notify 'alertmanager': 'headers' is only for kind webhook"}));
}

TEST(ConfigNotify, UrlAndUrlsSayWhichToUse) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "alertmanager"
url = "http://am:9093"
[[notify]]
kind = "oncall"
urls = ["https://oncall.example/a", "https://oncall.example/b"]
)toml"),
            (Lines{"vigil.toml:3:1: notify 'alertmanager': 'url' is not for kind alertmanager: "
                   "list every peer of the cluster in 'urls', e.g. urls = [\"http://am1:9093\", "
                   "\"http://am2:9093\"]",
                   "vigil.toml:6:1: notify 'oncall': 'urls' is only for kind alertmanager (the "
                   "peers of a cluster): kind oncall takes one 'url'"}));
}

TEST(ConfigNotify, UnknownKeysSuggestAKeyOfTheSameKind) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "pagerduty"
routing_key_fil = "/etc/vigil/pd.key"
severty = "SEV1"
colour = "red"
)toml"),
            (Lines{"vigil.toml:1:1: notify 'pagerduty': missing required key 'routing_key_file' "
                   "(or 'routing_key'): the integration key of the PagerDuty service",
                   "vigil.toml:3:1: notify 'pagerduty': unknown key 'routing_key_fil' (did you "
                   "mean 'routing_key_file'?)",
                   "vigil.toml:4:1: notify 'pagerduty': unknown key 'severty' (did you mean "
                   "'severity'?)",
                   "vigil.toml:5:1: notify 'pagerduty': unknown key 'colour'"}));
}

TEST(ConfigNotify, AlertmanagerUrlsAreEveryPeerValidated) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "alertmanager"
[[notify]]
name = "empty"
kind = "alertmanager"
urls = []
[[notify]]
name = "bad"
kind = "alertmanager"
urls = ["http://am1:9093", "am2:9093", "http://am1:9093", "http://am3:9093/api/v2/alerts", 7]
[[notify]]
name = "typed"
kind = "alertmanager"
urls = { am1 = "http://am1:9093" }
)toml"),
            (Lines{"vigil.toml:1:1: notify 'alertmanager': missing required key 'urls' (every "
                   "peer of the Alertmanager cluster, e.g. urls = [\"http://am1:9093\", "
                   "\"http://am2:9093\"])",
                   "vigil.toml:6:8: notify 'empty': 'urls' must name at least one Alertmanager",
                   "vigil.toml:10:28: notify 'bad': 'urls' \"am2:9093\": is not a valid URL "
                   "(Unsupported URL scheme)",
                   "vigil.toml:10:40: notify 'bad': 'urls' names \"http://am1:9093\" twice",
                   "vigil.toml:10:59: notify 'bad': 'urls' \"http://am3:9093/api/v2/alerts\": "
                   "give the base URL, without /api/v2/alerts (vigil adds it)",
                   "vigil.toml:10:92: notify 'bad': 'urls' items must be strings, not an integer",
                   "vigil.toml:14:8: notify 'typed': 'urls' must be a string or an array of "
                   "strings, not a table"}));
}

TEST(ConfigNotify, OtherKindsTakeOneValidatedUrl) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "oncall"
[[notify]]
kind = "webhook"
[[notify]]
kind = "pagerduty"
url = "https://events.pagerduty.com/v2/enqueue"
routing_key = "R0ut1ngKeyOfExactly32Characters0"
[[notify]]
kind = "statuspage"
url = "https://api.statuspage.io/v1/"
api_key = "k"
page_id = "p"
[[notify]]
name = "hook"
kind = "webhook"
url = "https:///hook"
[[notify]]
name = "hook2"
kind = "webhook"
url = ["https://hooks.example/"]
)toml"),
            (Lines{"vigil.toml:1:1: notify 'oncall': missing required key 'url' (the URL of the "
                   "OnCall integration, of type \"Formatted webhook\")",
                   "vigil.toml:3:1: notify 'webhook': missing required key 'url' (the URL to post "
                   "pages to)",
                   "vigil.toml:7:7: notify 'pagerduty': 'url' "
                   "\"https://events.pagerduty.com/v2/enqueue\": give the base URL, without "
                   "/v2/enqueue (vigil adds it)",
                   "vigil.toml:11:7: notify 'statuspage': 'url' \"https://api.statuspage.io/v1/\": "
                   "give the base URL, without /v1 (vigil adds it)",
                   "vigil.toml:17:7: notify 'hook': 'url' \"https:///hook\": has no host",
                   "vigil.toml:21:7: notify 'hook2': 'url' must be a string, not an array"}));
}

TEST(ConfigNotify, SeverityAndTeamsAreValidated) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "webhook"
url = "https://hooks.example/"
severity = "critical"
teams = []
[[notify]]
name = "w2"
kind = "webhook"
url = "https://hooks.example/"
severity = 1
teams = ["payments", "", "web team", 3]
)toml"),
            (Lines{"vigil.toml:4:12: notify 'webhook': 'severity': unknown severity \"critical\" "
                   "(expected \"SEV1\", \"SEV2\" or \"SEV3\")",
                   "vigil.toml:5:9: notify 'webhook': 'teams' must not be empty (leave it out to "
                   "page every team)",
                   "vigil.toml:10:12: notify 'w2': 'severity' must be a severity string \"SEV1\", "
                   "\"SEV2\" or \"SEV3\", not an integer",
                   "vigil.toml:11:22: notify 'w2': 'teams': \"\" must be 1-64 letters, digits, "
                   "'-', '_' or '.', as a check's 'team'",
                   "vigil.toml:11:26: notify 'w2': 'teams': \"web team\" must be 1-64 letters, "
                   "digits, '-', '_' or '.', as a check's 'team'",
                   "vigil.toml:11:38: notify 'w2': 'teams' items must be strings, not an "
                   "integer"}));
}

TEST(ConfigNotify, DurationsAndLimitsAreBounded) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "alertmanager"
urls = ["http://am:9093"]
resend_every = "5s"
timeout = "500ms"
max_per_minute = 0
verify_tls = "yes"
heartbeat = 1
[[notify]]
name = "am2"
kind = "alertmanager"
urls = ["http://am:9093"]
resend_every = "2h"
timeout = "2m"
max_per_minute = 10001
[[notify]]
kind = "webhook"
url = "https://hooks.example/"
update_every = "30s"
timeout = 10
)toml"),
            (Lines{"vigil.toml:4:16: notify 'alertmanager': 'resend_every' must be at least 10s, "
                   "not \"5s\"",
                   "vigil.toml:5:11: notify 'alertmanager': 'timeout' must be at least 1s, not "
                   "\"500ms\"",
                   "vigil.toml:6:18: notify 'alertmanager': 'max_per_minute' must be between 1 and "
                   "10000, not 0",
                   "vigil.toml:7:14: notify 'alertmanager': 'verify_tls' must be true or false, "
                   "not a string",
                   "vigil.toml:8:13: notify 'alertmanager': 'heartbeat' must be true or false, not "
                   "an integer",
                   "vigil.toml:13:16: notify 'am2': 'resend_every' must be at most 1h, not \"2h\"",
                   "vigil.toml:14:11: notify 'am2': 'timeout' must be at most 1m, not \"2m\"",
                   "vigil.toml:15:18: notify 'am2': 'max_per_minute' must be between 1 and 10000, "
                   "not 10001",
                   "vigil.toml:19:16: notify 'webhook': 'update_every' must be at least 1m, not "
                   "\"30s\"",
                   "vigil.toml:20:11: notify 'webhook': 'timeout' must be a duration string like "
                   "\"250ms\", \"5s\" or \"10m\", not an integer (write a string with a unit, e.g. "
                   "\"10s\")"}));
}

TEST(ConfigNotify, PagerDutyNeedsExactlyOneRoutingKeyOf32LettersAndDigits) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
name = "short"
kind = "pagerduty"
routing_key = "R0ut1ngKeyOf31Characters0000000"
[[notify]]
name = "odd"
kind = "pagerduty"
routing_key = "R0ut1ngKey-Of-32-Characters00000"
[[notify]]
name = "both"
kind = "pagerduty"
routing_key = "R0ut1ngKeyOfExactly32Characters0"
routing_key_file = "/etc/vigil/pd.key"
[[notify]]
name = "empty"
kind = "pagerduty"
routing_key = ""
)toml"),
            (Lines{"vigil.toml:4:15: notify 'short': 'routing_key': a routing key is exactly 32 "
                   "letters and digits (the integration key of an Events API v2 integration); "
                   "this one has 31 characters",
                   "vigil.toml:8:15: notify 'odd': 'routing_key': a routing key is exactly 32 "
                   "letters and digits (the integration key of an Events API v2 integration); "
                   "this one has other characters",
                   "vigil.toml:13:20: notify 'both': give either 'routing_key' or "
                   "'routing_key_file', not both",
                   "vigil.toml:17:15: notify 'empty': 'routing_key' is empty"}));
}

TEST(ConfigNotify, StatuspageNeedsAnApiKeyAndAPage) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "statuspage"
[[notify]]
name = "sp"
kind = "statuspage"
api_key = "line one\nline two"
page_id = "../other"
component_ids = ["c1", "c 2"]
)toml"),
            (Lines{"vigil.toml:1:1: notify 'statuspage': missing required key 'api_key_file' (or "
                   "'api_key'): the Statuspage API key",
                   "vigil.toml:1:1: notify 'statuspage': missing required key 'page_id' (the "
                   "page's id, as in the API's /v1/pages/PAGE_ID)",
                   "vigil.toml:6:11: notify 'sp': 'api_key' contains a line break or another "
                   "control character: it goes into an HTTP header",
                   "vigil.toml:7:11: notify 'sp': 'page_id' \"../other\" must be 1-64 letters, "
                   "digits, '-' or '_' (it goes into the API's URL)",
                   "vigil.toml:8:24: notify 'sp': 'component_ids': \"c 2\" must be 1-64 letters, "
                   "digits, '-' or '_'"}));
}

TEST(ConfigNotify, WebhookSignatureAndHeadersAreValidated) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
kind = "webhook"
url = "https://hooks.example/"
signature_header = "X-Signature"
[[notify]]
name = "signed"
kind = "webhook"
url = "https://hooks.example/"
hmac_key = "k"
signature_header = "X Signature"
headers = { "X Team" = "a", X-Ok = "fine", X-Multi = "a\r\nInjected: yes", X-Num = 7, content-type = "text/plain", X-Vigil-Signature = "forged" }
[[notify]]
name = "h"
kind = "webhook"
url = "https://hooks.example/"
headers = ["Authorization: x"]
)toml"),
            (Lines{"vigil.toml:4:20: notify 'webhook': 'signature_header' needs 'hmac_key_file' "
                   "(or 'hmac_key'): there is nothing to sign with",
                   "vigil.toml:10:20: notify 'signed': 'signature_header' \"X Signature\" is not "
                   "a valid HTTP header name",
                   "vigil.toml:11:13: notify 'signed': header name 'X Team' is not valid",
                   "vigil.toml:11:54: notify 'signed': header 'X-Multi' must not contain a line "
                   "break",
                   "vigil.toml:11:84: notify 'signed': header 'X-Num' must be a string, not an "
                   "integer",
                   "vigil.toml:11:87: notify 'signed': header 'content-type' is set by vigil",
                   "vigil.toml:11:116: notify 'signed': header 'X-Vigil-Signature' is set by vigil",
                   "vigil.toml:16:11: notify 'h': 'headers' must be a table, e.g. headers = { "
                   "Authorization = \"Bearer ...\" }"}));
}

// ---------------------------------------------------------------------------------------------
// [[notify]]: secrets in files

// `key = "PATH"` in a [[notify]] of `kind` that is otherwise complete.
std::string NotifyWithSecretFile(std::string_view kind, std::string_view key,
                                 const std::string& path) {
  std::string text = "[[notify]]\nkind = \"" + std::string(kind) + "\"\n";
  if (kind == "webhook") text += "url = \"https://hooks.example/\"\n";
  if (kind == "statuspage") text += "page_id = \"p\"\n";
  return text + std::string(key) + " = \"" + path + "\"\n";
}

TEST(ConfigNotifySecrets, FileOfMode0600IsRead) {
  const SecretFile f("ok.key", std::string(kRoutingKey) + "\n", 0600);
  const Config cfg = Valid(NotifyWithSecretFile("pagerduty", "routing_key_file", f.path()));
  ASSERT_EQ(cfg.notify.size(), 1u);
  EXPECT_EQ(cfg.notify[0].secret, kRoutingKey);
  EXPECT_EQ(cfg.notify[0].secret_file, f.path());
}

TEST(ConfigNotifySecrets, OnlyOneTrailingNewlineIsDropped) {
  const SecretFile f("hmac.key", "line\n\n", 0600);
  const Config cfg = Valid(NotifyWithSecretFile("webhook", "hmac_key_file", f.path()));
  ASSERT_EQ(cfg.notify.size(), 1u);
  EXPECT_EQ(cfg.notify[0].secret, "line\n");  // an HMAC key is bytes: the rest is the key's
}

TEST(ConfigNotifySecrets, FileReadableByGroupOrOthersIsRefused) {
  for (const mode_t mode : {0644, 0640, 0604, 0602, 0610}) {
    const SecretFile f("open.key", kRoutingKey, mode);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(
        Errors(NotifyWithSecretFile("pagerduty", "routing_key_file", f.path())),
        Lines{"vigil.toml:3:20: notify 'pagerduty': 'routing_key_file' \"" + f.path() +
              "\" has mode " + octal + ": it must not be readable by group or others (chmod 600)"});
  }
}

TEST(ConfigNotifySecrets, UnreadableEmptyOrOddFilesAreErrors) {
  const std::string missing = testing::TempDir() + "vigil-no-such-dir/pd.key";
  EXPECT_EQ(Errors(NotifyWithSecretFile("pagerduty", "routing_key_file", missing)),
            Lines{"vigil.toml:3:20: notify 'pagerduty': 'routing_key_file' \"" + missing +
                  "\": cannot read it: No such file or directory"});
  const SecretFile empty("empty.key", "\n", 0600);
  EXPECT_EQ(Errors(NotifyWithSecretFile("statuspage", "api_key_file", empty.path())),
            Lines{"vigil.toml:4:16: notify 'statuspage': 'api_key_file' \"" + empty.path() +
                  "\" is empty"});
  EXPECT_EQ(Errors(NotifyWithSecretFile("webhook", "hmac_key_file", "/")),
            Lines{"vigil.toml:4:17: notify 'webhook': 'hmac_key_file' \"/\" is not a regular "
                  "file"});
  EXPECT_EQ(Errors(NotifyWithSecretFile("webhook", "hmac_key_file", "hmac.key")),
            Lines{"vigil.toml:4:17: notify 'webhook': 'hmac_key_file' must be an absolute path, "
                  "not \"hmac.key\""});
  const SecretFile big("big.key", std::string(64 * 1024 + 1, 'k'), 0600);
  EXPECT_EQ(Errors(NotifyWithSecretFile("webhook", "hmac_key_file", big.path())),
            Lines{"vigil.toml:4:17: notify 'webhook': 'hmac_key_file' \"" + big.path() +
                  "\" is larger than 64 KiB: not a key"});
}

TEST(ConfigNotifySecrets, KeyFromAFileIsCheckedLikeAnInlineOne) {
  const SecretFile pd("short.key", "R0ut1ngKeyOf31Characters0000000\n", 0600);
  EXPECT_EQ(Errors(NotifyWithSecretFile("pagerduty", "routing_key_file", pd.path())),
            Lines{"vigil.toml:3:20: notify 'pagerduty': 'routing_key_file' \"" + pd.path() +
                  "\": a routing key is exactly 32 letters and digits (the integration key of "
                  "an Events API v2 integration); this one has 31 characters"});
  const SecretFile sp("two-lines.key", "one\ntwo\n", 0600);
  EXPECT_EQ(Errors(NotifyWithSecretFile("statuspage", "api_key_file", sp.path())),
            Lines{"vigil.toml:4:16: notify 'statuspage': 'api_key_file' \"" + sp.path() +
                  "\" contains a line break or another control character: it goes into an HTTP "
                  "header"});
}

TEST(ConfigNotifySecrets, NoErrorMessageEverContainsTheSecret) {
  // A distinctive secret in every way a secret can be wrong; none of the messages may show it,
  // nor a part of it long enough to matter.
  const std::string secret = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3t";  // 30 characters: too short
  const SecretFile open_file("leak-open.key", secret + "0A", 0644);
  const SecretFile short_file("leak-short.key", secret + "\n", 0600);
  const SecretFile lines_file("leak-lines.key", secret + "\n" + secret + "\n", 0600);
  const std::string text =
      "[[notify]]\nname = \"a\"\nkind = \"pagerduty\"\nrouting_key = \"" + secret +
      "\"\n"
      "[[notify]]\nname = \"b\"\nkind = \"pagerduty\"\nrouting_key = \"" +
      secret + "\"\nrouting_key_file = \"" + short_file.path() +
      "\"\n"
      "[[notify]]\nname = \"c\"\nkind = \"pagerduty\"\nrouting_key_file = \"" +
      open_file.path() +
      "\"\n"
      "[[notify]]\nname = \"d\"\nkind = \"pagerduty\"\nrouting_key_file = \"" +
      short_file.path() +
      "\"\n"
      "[[notify]]\nname = \"e\"\nkind = \"statuspage\"\npage_id = \"p\"\n"
      "api_key_file = \"" +
      lines_file.path() +
      "\"\n"
      "[[notify]]\nname = \"f\"\nkind = \"statuspage\"\npage_id = \"p\"\n"
      "api_key = \"" +
      secret +
      "\\r\\n\"\n"
      "[[notify]]\nname = \"g\"\nkind = \"webhook\"\nurl = \"https://h.example/\"\n"
      "hmac_key = \"" +
      secret + "\"\nrouting_key = \"" + secret + "\"\nheaders = { A = \"" + secret + "\\n\" }\n";
  const Lines errors = Errors(text);
  EXPECT_EQ(errors.size(), 8u) << testing::PrintToString(errors);
  for (const std::string& e : errors) {
    EXPECT_EQ(e.find("S3cr3t"), std::string::npos) << e;
  }
}

// ---------------------------------------------------------------------------------------------
// [[escalation]]

constexpr std::string_view kWebhooks = R"toml(
[[notify]]
name = "oncall-primary"
kind = "webhook"
url = "https://hooks.example/primary"
[[notify]]
name = "oncall-secondary"
kind = "webhook"
url = "https://hooks.example/secondary"
[[notify]]
name = "manager"
kind = "webhook"
url = "https://hooks.example/manager"
)toml";

TEST(ConfigEscalation, ChainsPerTeamAndACatchAll) {
  const Config cfg = Valid(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "payments"
steps = [
  { notify = "oncall-primary" },
  { notify = "oncall-secondary", after = "5m" },
  { notify = "manager", after = "10m" },
]

[[escalation]]
steps = [{ notify = "oncall-primary", after = "0s" }, { notify = "manager", after = "1m" }]

[[escalation]]
team = "web"
[[escalation.steps]]
notify = "oncall-secondary"
)toml");
  ASSERT_EQ(cfg.escalations.size(), 3u);
  const EscalationConfig& pay = cfg.escalations[0];
  EXPECT_EQ(pay.team, "payments");
  ASSERT_EQ(pay.steps.size(), 3u);
  EXPECT_EQ(pay.steps[0].notify, "oncall-primary");
  EXPECT_EQ(pay.steps[0].after, Duration::zero());
  EXPECT_EQ(pay.steps[1].notify, "oncall-secondary");
  EXPECT_EQ(pay.steps[1].after, minutes(5));
  EXPECT_EQ(pay.steps[2].notify, "manager");
  EXPECT_EQ(pay.steps[2].after, minutes(10));
  EXPECT_EQ(pay.where.line, 14);  // after kWebhooks' 12 lines and a blank one
  const EscalationConfig& all = cfg.escalations[1];
  EXPECT_EQ(all.team, "");
  ASSERT_EQ(all.steps.size(), 2u);
  EXPECT_EQ(all.steps[0].after, Duration::zero());
  EXPECT_EQ(all.steps[1].after, minutes(1));
  ASSERT_EQ(cfg.escalations[2].steps.size(), 1u);
  EXPECT_EQ(cfg.escalations[2].steps[0].notify, "oncall-secondary");

  EXPECT_EQ(cfg.escalation_for("payments"), &cfg.escalations[0]);
  EXPECT_EQ(cfg.escalation_for("web"), &cfg.escalations[2]);
  EXPECT_EQ(cfg.escalation_for("search"), &cfg.escalations[1]);  // the catch-all
  EXPECT_EQ(cfg.escalation_for(""), &cfg.escalations[1]);
}

TEST(ConfigEscalation, WithoutACatchAllOtherTeamsHaveNoChain) {
  const Config cfg = Valid(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "payments"
steps = [{ notify = "oncall-primary" }]
)toml");
  EXPECT_NE(cfg.escalation_for("payments"), nullptr);
  EXPECT_EQ(cfg.escalation_for("web"), nullptr);
  EXPECT_EQ(cfg.escalation_for(""), nullptr);
}

TEST(ConfigEscalation, OneNotifierMayServeSeveralTeamsChains) {
  const Config cfg = Valid(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "payments"
steps = [{ notify = "oncall-primary" }, { notify = "manager", after = "5m" }]
[[escalation]]
team = "web"
steps = [{ notify = "oncall-secondary" }, { notify = "manager", after = "5m" }]
)toml");
  EXPECT_EQ(cfg.escalations.size(), 2u);
}

TEST(ConfigEscalation, StepsNameWebhooksOnly) {
  EXPECT_EQ(Errors(std::string(kWebhooks) + R"toml(
[[notify]]
kind = "pagerduty"
routing_key = "R0ut1ngKeyOfExactly32Characters0"
[[notify]]
kind = "oncall"
url = "https://oncall.example/hook"
[[notify]]
kind = "alertmanager"
urls = ["http://am:9093"]
[[notify]]
kind = "statuspage"
api_key = "k"
page_id = "p"

[[escalation]]
steps = [
  { notify = "pagerduty" },
  { notify = "oncall", after = "5m" },
  { notify = "alertmanager", after = "5m" },
  { notify = "statuspage", after = "5m" },
  { notify = "oncall-primry", after = "5m" },
]
)toml"),
            (Lines{"vigil.toml:30:14: escalation (every team): step 1: \"pagerduty\" is kind "
                   "pagerduty: PagerDuty escalates on its own (the service's escalation policy); "
                   "a chain pages webhooks only",
                   "vigil.toml:31:14: escalation (every team): step 2: \"oncall\" is kind oncall: "
                   "Grafana OnCall escalates on its own (the integration's escalation chain); a "
                   "chain pages webhooks only",
                   "vigil.toml:32:14: escalation (every team): step 3: \"alertmanager\" is kind "
                   "alertmanager: Alertmanager routes and repeats on its own (its route tree); a "
                   "chain pages webhooks only",
                   "vigil.toml:33:14: escalation (every team): step 4: \"statuspage\" is kind "
                   "statuspage: a status page informs readers, it pages nobody; a chain pages "
                   "webhooks only",
                   "vigil.toml:34:14: escalation (every team): step 5: no notifier "
                   "\"oncall-primry\" (define it as a [[notify]] with name = \"oncall-primry\" "
                   "and kind = \"webhook\")"}));
}

TEST(ConfigEscalation, StepDelays) {
  EXPECT_EQ(
      Errors(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "payments"
steps = [
  { notify = "oncall-primary", after = "5m" },
  { notify = "oncall-secondary" },
  { notify = "manager", after = "30s" },
]
[[escalation]]
team = "web"
steps = [{ notify = "oncall-primary", after = 0 }, { notify = "manager", after = "0s" }]
)toml"),
      (Lines{"vigil.toml:17:40: escalation 'payments': step 1: 'after' must be \"0s\" or left "
             "out: the first step is paged with the incident",
             "vigil.toml:18:3: escalation 'payments': step 2: missing required key 'after' "
             "(how long step 1 has to acknowledge before this step is paged, at least 1m)",
             "vigil.toml:19:33: escalation 'payments': step 3: 'after' must be at least 1m, "
             "not \"30s\"",
             "vigil.toml:23:47: escalation 'web': step 1: 'after' must be \"0s\" or left "
             "out: the first step is paged with the incident",
             "vigil.toml:23:82: escalation 'web': step 2: 'after' must be greater than "
             "zero"}));
}

TEST(ConfigEscalation, ANotifierAppearsOnceInAChain) {
  EXPECT_EQ(Errors(std::string(kWebhooks) + R"toml(
[[escalation]]
steps = [
  { notify = "oncall-primary" },
  { notify = "manager", after = "5m" },
  { notify = "oncall-primary", after = "5m" },
]
)toml"),
            (Lines{"vigil.toml:18:14: escalation (every team): step 3: \"oncall-primary\" is "
                   "already step 1 of this chain"}));
}

TEST(ConfigEscalation, ChainShape) {
  EXPECT_EQ(Errors(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "a"
[[escalation]]
team = "b"
steps = []
[[escalation]]
team = "c"
steps = { notify = "manager" }
[[escalation]]
team = "d"
steps = ["manager", { notify = "manager", aftr = "5m" }, { after = "5m" }]
stepz = 1
)toml"),
            (Lines{"vigil.toml:14:1: escalation 'a': missing required key 'steps' (e.g. steps = "
                   "[{ notify = \"primary\" }, { notify = \"secondary\", after = \"5m\" }])",
                   "vigil.toml:18:9: escalation 'b': 'steps' must have at least one step",
                   "vigil.toml:21:9: escalation 'c': 'steps' must be an array of tables, e.g. "
                   "steps = [{ notify = \"primary\" }, { notify = \"secondary\", after = \"5m\" }]",
                   "vigil.toml:24:10: escalation 'd': step 1: must be a table like { notify = "
                   "\"primary\", after = \"5m\" }, not a string",
                   "vigil.toml:24:21: escalation 'd': step 2: missing required key 'after' (how "
                   "long step 1 has to acknowledge before this step is paged, at least 1m)",
                   "vigil.toml:24:43: escalation 'd': step 2: unknown key 'aftr' (did you mean "
                   "'after'?)",
                   "vigil.toml:24:58: escalation 'd': step 3: missing required key 'notify' (the "
                   "name of a [[notify]])",
                   "vigil.toml:25:1: escalation 'd': unknown key 'stepz' (did you mean "
                   "'steps'?)"}));
}

TEST(ConfigEscalation, OneChainPerTeam) {
  EXPECT_EQ(Errors(std::string(kWebhooks) + R"toml(
[[escalation]]
team = "payments"
steps = [{ notify = "oncall-primary" }]
[[escalation]]
steps = [{ notify = "oncall-primary" }]
[[escalation]]
team = "payments"
steps = [{ notify = "manager" }]
[[escalation]]
team = ""
steps = [{ notify = "manager" }]
[[escalation]]
team = "pay ments"
steps = [{ notify = "manager" }]
)toml"),
            (Lines{"vigil.toml:20:8: duplicate escalation chain for team 'payments' (first defined "
                   "at vigil.toml:15:8)",
                   "vigil.toml:23:8: duplicate escalation chain for every team (first defined at "
                   "vigil.toml:17:1): give one of them a 'team'",
                   "vigil.toml:26:8: escalation: 'team' \"pay ments\" must be 1-64 letters, "
                   "digits, '-', '_' or '.' (or \"\" for every team)"}));
}

TEST(ConfigEscalation, ANotifierWithAnUnknownKindIsReportedOnce) {
  EXPECT_EQ(Errors(R"toml(
[[notify]]
name = "chat"
kind = "slack"
url = "https://hooks.example/"

[[escalation]]
steps = [{ notify = "chat" }]
)toml"),
            (Lines{"vigil.toml:3:8: notify 'chat': unknown kind \"slack\" (known: alertmanager, "
                   "pagerduty, oncall, statuspage, webhook; for a chat tool or a custom receiver: "
                   "webhook)"}));
}

TEST(ConfigEscalation, EscalationMustBeAnArrayOfTables) {
  EXPECT_EQ(Errors(R"toml(
[escalation]
steps = []
)toml"),
            Lines{"vigil.toml:1:1: 'escalation' must be an array of tables: write [[escalation]]"});
}

// ---------------------------------------------------------------------------------------------
// Provenance (issue 13): a journal check that can act is aimed only by what journald vouches for.

TEST(ConfigProvenance, AnIdentifierCannotAimABlock) {
  EXPECT_EQ(Errors(R"toml(
[action.block.ssh]

[[check]]
name = "ssh"
probe = "journal"
identifier = "sshd"
pattern = '^Failed password for (?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$'
key = "ip"
mitigate = ["block:ssh"]
)toml"),
            (Lines{"vigil.toml:6:14: check 'ssh': 'identifier' matches SYSLOG_IDENTIFIER, which "
                   "any local process can set (systemd-cat -t sshd), and its ladder can act "
                   "(block:ssh): match on what journald records itself instead: write unit = "
                   "\"NAME.service\" (e.g. unit = \"ssh.service\" for sshd), narrowed by uid = 0 "
                   "or exe = \"/usr/sbin/NAME\" when the unit runs other programs"}));
}

// An identifier beside a unit is no better: the two select entries with OR.
TEST(ConfigProvenance, AnIdentifierBesideAUnitIsRefusedToo) {
  EXPECT_EQ(Errors(R"toml(
[action.restart.app]

[[check]]
name = "app-log"
probe = "journal"
unit = "app.service"
identifiers = ["app", "app-worker"]
pattern = "out of memory"
mitigate = ["restart:app"]
)toml"),
            (Lines{"vigil.toml:7:15: check 'app-log': 'identifier' matches SYSLOG_IDENTIFIER, "
                   "which any local process can set (systemd-cat -t app), and its ladder can act "
                   "(restart:app): match on what journald records itself instead: write unit = "
                   "\"NAME.service\" (e.g. unit = \"ssh.service\" for sshd), narrowed by uid = 0 "
                   "or exe = \"/usr/sbin/NAME\" when the unit runs other programs"}));
}

// A journal check joining a service's incident starts that incident's ladder, so it can act
// although it has no ladder of its own.
TEST(ConfigProvenance, JoiningAServiceWithALadderCountsAsActing) {
  EXPECT_EQ(Errors(R"toml(
[action.restart.app]

[[check]]
name = "app"
probe = "http"
url = "http://127.0.0.1:8080/health"
service = "app"
mitigate = ["restart:app"]

[[check]]
name = "app-pool"
probe = "journal"
identifier = "app"
pattern = "connection pool exhausted"
service = "app"
)toml"),
            (Lines{"vigil.toml:13:14: check 'app-pool': 'identifier' matches SYSLOG_IDENTIFIER, "
                   "which any local process can set (systemd-cat -t app), and it joins service "
                   "'app', whose check 'app' can act (restart:app): match on what journald "
                   "records itself instead: write unit = \"NAME.service\" (e.g. unit = "
                   "\"ssh.service\" for sshd), narrowed by uid = 0 or exe = \"/usr/sbin/NAME\" "
                   "when the unit runs other programs"}));
}

TEST(ConfigProvenance, ACommAloneCannotAimABlock) {
  EXPECT_EQ(Errors(R"toml(
[action.block.ssh]

[[check]]
name = "ssh"
probe = "journal"
comm = "sshd"
transport = "syslog"
pattern = '^Invalid user (?P<user>.*) from (?P<ip>\S+) port \d+$'
key = "ip"
mitigate = ["block:ssh"]
)toml"),
            (Lines{"vigil.toml:3:1: check 'ssh': 'comm' and 'transport' alone do not say who "
                   "wrote a line (a process names itself), and its ladder can act (block:ssh): "
                   "add unit = \"NAME.service\", exe = \"/path\" or uid = N"}));
}

TEST(ConfigProvenance, TrustedFieldsAimAnActionAndAnIdentifierStillWatches) {
  const Config c = Valid(R"toml(
[action.block.ssh]

[[check]]
name = "ssh"
probe = "journal"
unit = "ssh.service"
uid = 0
exe = ["/usr/sbin/sshd", "/usr/lib/openssh/sshd-session"]
comm = "sshd"
transport = ["syslog", "journal"]
pattern = '^Invalid user (?P<user>.*) from (?P<ip>\S+) port \d+$'
key = "ip"
mitigate = ["block:ssh"]

[[check]]
name = "cron-errors"
probe = "journal"
identifier = "CRON"
pattern = "error"
)toml");
  ASSERT_EQ(c.checks.size(), 2u);
  const JournalSettings* j = c.checks[0].journal();
  ASSERT_NE(j, nullptr);
  EXPECT_EQ(j->units, (std::vector<std::string>{"ssh.service"}));
  EXPECT_EQ(j->uids, (std::vector<std::string>{"0"}));
  EXPECT_EQ(j->exes, (std::vector<std::string>{"/usr/sbin/sshd", "/usr/lib/openssh/sshd-session"}));
  EXPECT_EQ(j->comms, (std::vector<std::string>{"sshd"}));
  EXPECT_EQ(j->transports, (std::vector<std::string>{"syslog", "journal"}));
  ASSERT_NE(c.checks[1].journal(), nullptr);
  EXPECT_EQ(c.checks[1].journal()->identifiers, (std::vector<std::string>{"CRON"}));
}

TEST(ConfigProvenance, TrustedFieldValuesAreValidated) {
  EXPECT_EQ(Errors(R"toml(
[[check]]
name = "ssh"
probe = "journal"
uid = [0, -1, "root"]
exe = "sshd"
comm = "a-name-longer-than-15"
transport = "udp"
pattern = "x"
)toml"),
            (Lines{"vigil.toml:4:11: check 'ssh': 'uid' must be a user id (an integer "
                   "0-4294967294) or an array of them, e.g. uid = 0",
                   "vigil.toml:4:15: check 'ssh': 'uid' must be a user id (an integer "
                   "0-4294967294) or an array of them, e.g. uid = 0",
                   "vigil.toml:5:7: check 'ssh': 'exe' \"sshd\" must be an absolute path, as in "
                   "/proc/PID/exe (e.g. exe = \"/usr/sbin/sshd\")",
                   "vigil.toml:6:8: check 'ssh': 'comm' \"a-name-longer-than-15\" is not a "
                   "process name: 1 to 15 bytes, as in /proc/PID/comm (e.g. comm = \"sshd\")",
                   "vigil.toml:7:13: check 'ssh': 'transport' \"udp\" must be one of audit, "
                   "driver, syslog, journal, stdout, kernel"}));
}

TEST(ConfigAgent, RetentionAndAdminGroup) {
  const Config c = Valid(R"toml(
[agent]
keep_incidents = "30d"
max_incidents = 500
admin_group = "vigil-admin"
)toml");
  EXPECT_EQ(c.agent.keep_incidents, std::chrono::hours(24 * 30));
  EXPECT_EQ(c.agent.max_incidents, 500);
  EXPECT_EQ(c.agent.admin_group, "vigil-admin");
  EXPECT_EQ(Valid("[agent]\nkeep_incidents = \"forever\"\n").agent.keep_incidents,
            Duration::zero());
  const Config d = Valid("");
  EXPECT_EQ(d.agent.keep_incidents, std::chrono::hours(24 * 90));
  EXPECT_EQ(d.agent.max_incidents, 10'000);
  EXPECT_EQ(d.agent.admin_group, "");
  EXPECT_EQ(Errors(R"toml(
[agent]
max_incidents = 5
admin_group = "Wheel; rm"
)toml"),
            (Lines{"vigil.toml:2:17: [agent]: 'max_incidents' must be between 100 and 10000000, "
                   "not 5",
                   "vigil.toml:3:15: [agent]: 'admin_group' \"Wheel; rm\" is not a group name "
                   "(lower-case letters, digits, '-', '_'; at most 32)"}));
}

// ---------------------------------------------------------------------------------------------
// [fleet] and the per-action fleet caps (docs/FLEET.md)

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
  EXPECT_EQ(f.lease_ttl, seconds(20));
  EXPECT_EQ(f.timeout, seconds(1));
  EXPECT_EQ(f.retry, seconds(3));
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
  EXPECT_EQ(r.config->fleet.lease_ttl, seconds(30));
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

TEST(FleetConfig, AnEmptyEndpointListIsRefused) {
  EXPECT_EQ(Errors(R"toml(
[fleet]
name = "f"
etcd = []
)toml"),
            Lines{"vigil.toml:3:8: [fleet]: 'etcd' is empty: give the cluster's client URLs (e.g. "
                  "etcd = [\"http://10.0.0.1:2379\"])"});
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
