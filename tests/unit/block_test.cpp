// The block action's pure parts: argv building and comment tags, `ufw status` parsing on real
// output shapes, ufw's change messages, escalation, the block list and its persistence, and the
// reconcile plan. Nothing here runs ufw or ss.
#include "actions/block.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

namespace vigil {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Argv = std::vector<std::string>;

constexpr const char* kIncident = "20260127-101500-sshd-brute-force";

IpAddress ip(std::string_view text) {
  Result<IpAddress> r = parse_ip(text);
  EXPECT_TRUE(r) << text;
  return r ? *r : IpAddress{};
}

TimePoint at(std::chrono::seconds s) {
  using namespace std::chrono;
  return sys_days{year{2026} / 1 / 27} + 10h + s;
}

std::string comment(std::string_view incident = kIncident) {
  Result<std::string> c = block_comment(incident);
  EXPECT_TRUE(c) << incident;
  return c ? *c : std::string{};
}

// --- argv and comments ---

TEST(BlockArgv, BlockPrependsADenyWithTheComment) {
  Result<Argv> v4 = ufw_block_argv(ip("203.0.113.7"), comment());
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_EQ(*v4, (Argv{"/usr/sbin/ufw", "prepend", "deny", "from", "203.0.113.7", "comment",
                       "vigil: 20260127-101500-sshd-brute-force"}));
  Result<Argv> v6 = ufw_block_argv(ip("2001:DB8:0::42"), comment());
  ASSERT_TRUE(v6);
  EXPECT_EQ((*v6)[4], "2001:db8::42");  // canonical form
}

TEST(BlockArgv, UnblockDeletesTheExactRuleWithItsComment) {
  Result<Argv> argv = ufw_unblock_argv(ip("203.0.113.7"), comment());
  ASSERT_TRUE(argv);
  EXPECT_EQ(*argv, (Argv{"/usr/sbin/ufw", "delete", "deny", "from", "203.0.113.7", "comment",
                         "vigil: 20260127-101500-sshd-brute-force"}));
}

TEST(BlockArgv, RefusesACommentThatIsNotVigils) {
  for (const std::string bad :
       {"", "vigil:", "vigil: ", "keep", "vigil: x; reboot", "vigil: 20260127-101500-sshd'",
        "vigil: 20260127-101500-sshd extra", "VIGIL: 20260127-101500-sshd"}) {
    EXPECT_FALSE(ufw_block_argv(ip("203.0.113.7"), bad)) << bad;
    EXPECT_FALSE(ufw_unblock_argv(ip("203.0.113.7"), bad)) << bad;
  }
}

TEST(BlockArgv, SsKillBracketsIpv6) {
  EXPECT_EQ(ss_kill_argv(ip("203.0.113.7")), (Argv{"/usr/bin/ss", "-K", "dst", "203.0.113.7"}));
  EXPECT_EQ(ss_kill_argv(ip("2001:db8::42")), (Argv{"/usr/bin/ss", "-K", "dst", "[2001:db8::42]"}));
  EXPECT_EQ(ss_kill_argv(ip("::ffff:203.0.113.7")),
            (Argv{"/usr/bin/ss", "-K", "dst", "203.0.113.7"}));
}

TEST(BlockArgv, Status) { EXPECT_EQ(ufw_status_argv(), (Argv{"/usr/sbin/ufw", "status"})); }

TEST(BlockComment, ValidIncidentIds) {
  for (const char* id : {"20260127-101500-sshd", "20260127-101500-sshd-brute-force-2",
                         "20260127-101500-a", "20260127-101500-203-0-113-7"}) {
    EXPECT_TRUE(valid_block_incident(id)) << id;
    Result<std::string> c = block_comment(id);
    ASSERT_TRUE(c) << id;
    EXPECT_EQ(*c, std::string("vigil: ") + id);
    EXPECT_EQ(incident_of_comment(*c), std::string(id));
  }
}

TEST(BlockComment, InvalidIncidentIds) {
  for (const std::string& id : std::vector<std::string>{
           "", "20260127-101500-", "20260127-101500", "2026012-101500-sshd", "20260127_101500-sshd",
           "2026o127-101500-sshd", "20260127-101500-SSHD", "20260127-101500--sshd",
           "20260127-101500-sshd-", "20260127-101500-ssh--d", "20260127-101500-ssh d",
           "20260127-101500-ssh'd", "20260127-101500-ssh;reboot", "20260127-101500-ssh\nd",
           std::string("20260127-101500-ss\0h", 20), "20260127-101500-" + std::string(81, 'a')}) {
    EXPECT_FALSE(valid_block_incident(id)) << id;
    EXPECT_FALSE(block_comment(id)) << id;
  }
  EXPECT_TRUE(valid_block_incident("20260127-101500-" + std::string(80, 'a')));
}

TEST(BlockComment, IncidentOfOtherComments) {
  EXPECT_EQ(incident_of_comment("office network"), std::nullopt);
  EXPECT_EQ(incident_of_comment("vigil: keep this one"), std::nullopt);
  EXPECT_EQ(incident_of_comment("not vigil: 20260127-101500-sshd"), std::nullopt);
  EXPECT_EQ(incident_of_comment("vigil:20260127-101500-sshd"), std::nullopt);
  EXPECT_EQ(incident_of_comment("vigil: 20260127-101500-sshd "), std::nullopt);
}

// --- ufw status ---

// ufw 0.36 prints each rule as "%-26s %-12s%-26s%s%s" (to, action, from, attributes, " # "
// comment), IPv4 rules first; prepend puts vigil's DENY first in its family.
constexpr const char* kActive = R"(Status: active

To                         Action      From
--                         ------      ----
Anywhere                   DENY        203.0.113.7                # vigil: 20260127-101500-sshd-brute-force
8080/tcp                   ALLOW       Anywhere                  
22/tcp                     ALLOW       10.0.0.0/8                 # office network
Anywhere (v6)              DENY        2001:db8::42               # vigil: 20260127-101502-nginx-scan-2
8080/tcp (v6)              ALLOW       Anywhere (v6)             
)";

TEST(BlockUfwStatus, ActiveWithAllowAndVigilRules) {
  Result<UfwStatus> s = parse_ufw_status(kActive);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->active);
  ASSERT_EQ(s->rules.size(), 2u);
  EXPECT_EQ(s->rules[0].ip, ip("203.0.113.7"));
  EXPECT_FALSE(s->rules[0].v6);
  EXPECT_EQ(s->rules[0].comment, "vigil: 20260127-101500-sshd-brute-force");
  EXPECT_EQ(s->rules[0].incident, "20260127-101500-sshd-brute-force");
  EXPECT_EQ(s->rules[1].ip, ip("2001:db8::42"));
  EXPECT_TRUE(s->rules[1].v6);
  EXPECT_EQ(s->rules[1].incident, "20260127-101502-nginx-scan-2");
  EXPECT_TRUE(s->unrecognized.empty());
}

TEST(BlockUfwStatus, Inactive) {
  for (const char* text : {"Status: inactive\n", "Status: inactive", "\nStatus: inactive\r\n"}) {
    Result<UfwStatus> s = parse_ufw_status(text);
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_FALSE(s->active);
    EXPECT_TRUE(s->rules.empty());
  }
}

TEST(BlockUfwStatus, ActiveWithoutRules) {
  Result<UfwStatus> s = parse_ufw_status("Status: active\n");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->active);
  EXPECT_TRUE(s->rules.empty());
}

TEST(BlockUfwStatus, AdminRulesMentioningVigilAreNotOurs) {
  constexpr const char* kText = R"(Status: active

To                         Action      From
--                         ------      ----
Anywhere                   DENY        198.51.100.9               # blocked by hand, see vigil: 20260127-101500-sshd
Anywhere                   DENY        198.51.100.10              # vigil: keep this one
22/tcp                     DENY        192.0.2.1                  # vigil: 20260127-101500-sshd
Anywhere                   REJECT      192.0.2.2                  # vigil: 20260127-101500-sshd
Anywhere                   DENY        192.0.2.0/24               # vigil: 20260127-101500-sshd
Anywhere on eth0           DENY        192.0.2.5                  # vigil: 20260127-101500-sshd
Anywhere                   DENY        192.0.2.6                  (log) # vigil: 20260127-101500-sshd
Anywhere                   DENY        2001:db8::7                # vigil: 20260127-101500-sshd
Anywhere                   DENY        192.0.2.8                 

192.0.2.3                  DENY OUT    Anywhere                   # vigil: 20260127-101500-sshd
)";
  Result<UfwStatus> s = parse_ufw_status(kText);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->rules.empty());
  // The first and the untagged last DENY are silently someone else's; the rest carry a vigil
  // tag in a shape vigil never writes, worth a warning but never touched.
  ASSERT_EQ(s->unrecognized.size(), 8u);
  EXPECT_NE(s->unrecognized[0].find("198.51.100.10"), std::string::npos);
  EXPECT_NE(s->unrecognized[7].find("DENY OUT"), std::string::npos);
}

TEST(BlockUfwStatus, Verbose) {
  constexpr const char* kText = R"(Status: active
Logging: on (low)
Default: deny (incoming), allow (outgoing), disabled (routed)
New profiles: skip

To                         Action      From
--                         ------      ----
Anywhere                   DENY IN     203.0.113.7                # vigil: 20260127-101500-sshd
22/tcp                     ALLOW IN    Anywhere                  
)";
  Result<UfwStatus> s = parse_ufw_status(kText);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_TRUE(s->active);
  ASSERT_EQ(s->rules.size(), 1u);
  EXPECT_EQ(s->rules[0].ip, ip("203.0.113.7"));
}

TEST(BlockUfwStatus, Numbered) {
  constexpr const char* kText = R"(Status: active

     To                         Action      From
     --                         ------      ----
[ 1] Anywhere                   DENY IN     203.0.113.7                # vigil: 20260127-101500-sshd
[ 2] 22/tcp                     ALLOW IN    Anywhere                  
[ 3] Anywhere (v6)              DENY IN     2001:db8::42               # vigil: 20260127-101500-sshd
)";
  Result<UfwStatus> s = parse_ufw_status(kText);
  ASSERT_TRUE(s) << s.error().message;
  ASSERT_EQ(s->rules.size(), 2u);
  EXPECT_TRUE(s->rules[1].v6);
}

TEST(BlockUfwStatus, Garbage) {
  for (const char* text : {"", "\n\n", "ERROR: You need to be root to run this script\n",
                           "Status: maybe\n", "status: active\n", "\x01\xff garbage",
                           "To Action From\nAnywhere DENY 1.2.3.4 # vigil: 20260127-101500-a\n"}) {
    Result<UfwStatus> s = parse_ufw_status(text);
    EXPECT_FALSE(s) << text;
  }
  Result<UfwStatus> s = parse_ufw_status("ERROR: You need to be root to run this script\n");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("You need to be root"), std::string::npos);
}

TEST(BlockUfwChange, Messages) {
  EXPECT_EQ(ufw_change("Rule inserted\n"), UfwChange::changed);
  EXPECT_EQ(ufw_change("Rule inserted (v6)\n"), UfwChange::changed);
  EXPECT_EQ(ufw_change("Rule added\n"), UfwChange::changed);
  EXPECT_EQ(ufw_change("Rules updated\n"), UfwChange::changed);
  EXPECT_EQ(ufw_change("Rule deleted (v6)\n"), UfwChange::changed);
  EXPECT_EQ(ufw_change("Skipping inserting existing rule\n"), UfwChange::already_present);
  EXPECT_EQ(ufw_change("Skipping adding existing rule (v6)\n"), UfwChange::already_present);
  EXPECT_EQ(ufw_change("Could not delete non-existent rule\n"), UfwChange::not_present);
  EXPECT_EQ(ufw_change(""), UfwChange::unknown);
  EXPECT_EQ(ufw_change("WARN: something\n"), UfwChange::unknown);
}

// --- escalation ---

TEST(BlockDuration, DoublesPerOffenceUpToTheCap) {
  EXPECT_EQ(block_duration(1, 1h, 24h), 1h);
  EXPECT_EQ(block_duration(2, 1h, 24h), 2h);
  EXPECT_EQ(block_duration(3, 1h, 24h), 4h);
  EXPECT_EQ(block_duration(5, 1h, 24h), 16h);
  EXPECT_EQ(block_duration(6, 1h, 24h), 24h);
  EXPECT_EQ(block_duration(7, 1h, 24h), 24h);
}

TEST(BlockDuration, EdgeCases) {
  EXPECT_EQ(block_duration(0, 1h, 24h), 1h);
  EXPECT_EQ(block_duration(-5, 1h, 24h), 1h);
  EXPECT_EQ(block_duration(std::numeric_limits<int>::max(), 1h, 24h), 24h);
  EXPECT_EQ(block_duration(64, 1ms, Duration::max()), Duration::max());
  EXPECT_EQ(block_duration(200, Duration::max() / 3, Duration::max()), Duration::max());
  EXPECT_EQ(block_duration(1, 48h, 24h), 24h);  // the cap wins over a longer first block
  EXPECT_EQ(block_duration(3, Duration{0}, 24h), Duration{0});
  EXPECT_EQ(block_duration(3, -1h, 24h), Duration{0});
}

// --- block list ---

void add(BlockList& list, BlockEntry e) { EXPECT_TRUE(list.add(std::move(e))); }

// Issue 13: weeks of sustained blocking at the default rate (10 a minute, each block 1 h) never
// outgrow what the next start can read: before the fix the file passed 8 MiB within 6 days and
// was then dropped as corrupt, with every block in it.
TEST(BlockList, WeeksOfSustainedBlockingStayLoadable) {
  BlockList list;
  const auto v6 = [](int n) {
    char text[64];
    std::snprintf(text, sizeof text, "2001:db8:%x:%x::%x", (n >> 16) & 0xffff, n & 0xffff, n % 7);
    return ip(text);
  };
  constexpr int kPerDay = 10 * 60 * 24;
  std::size_t largest = 0;
  for (int n = 0; n < 8 * kPerDay; ++n) {
    const TimePoint since = at(std::chrono::seconds(6 * n));
    add(list, BlockEntry{v6(n), kIncident, since, since + 1h, 1});
    if (n % 1000 == 0) list.prune(since);
    // The active blocks: the last hour's.
    if (n >= 600) list.remove(v6(n - 600));
    if (n % 50'000 == 0) largest = std::max(largest, list.to_json().size());
  }
  largest = std::max(largest, list.to_json().size());
  EXPECT_LT(largest, std::size_t{8} << 20) << "a week at the default rate is a few MiB";
  // Through the file, as the next start reads it.
  char dir[] = "/tmp/vigil-blocks-test-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/blocks.json";
  ASSERT_TRUE(list.save(path));
  BlockList::Loaded loaded = BlockList::load(path);
  std::remove(path.c_str());
  rmdir(dir);
  EXPECT_EQ(loaded.warning, "");
  const BlockList* back = &loaded.list;
  EXPECT_EQ(back->entries().size(), 600u);
  // The newest offender still counts as one; one forgotten long ago does not.
  EXPECT_EQ(back->offences(v6(8 * kPerDay - 1), at(std::chrono::seconds(6 * 8 * kPerDay))), 1);
}

TEST(BlockList, HistoryIsBoundedAndKeepsTheAddressesBlockedNow) {
  BlockList list(std::chrono::hours(24 * 365));
  for (int n = 0; n < 220'000; ++n) {
    char text[32];
    std::snprintf(text, sizeof text, "10.%d.%d.%d", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
    const TimePoint since = at(std::chrono::seconds(n));
    add(list, BlockEntry{ip(text), kIncident, since, since + 1h, 1});
    if (n > 0 && n % 2 == 0) {
      std::snprintf(text, sizeof text, "10.%d.%d.%d", ((n - 1) >> 16) & 0xff, ((n - 1) >> 8) & 0xff,
                    (n - 1) & 0xff);
      list.remove(ip(text));  // every other address stays blocked
    }
  }
  const std::string text = list.to_json();
  EXPECT_LT(text.size(), std::size_t{32} << 20);
  EXPECT_EQ(list.offences(ip("10.0.0.0"), at(220'000s)), 1) << "still blocked: kept";
  EXPECT_EQ(list.offences(ip("10.0.0.1"), at(220'000s)), 0) << "oldest unblocked: forgotten";
  EXPECT_EQ(list.offences(ip("10.3.91.95"), at(220'000s)), 1) << "the newest: kept";
}

TEST(BlockList, AddRefusesWhatCouldNotBeSaved) {
  BlockList list;
  const IpAddress a = ip("203.0.113.7");
  EXPECT_FALSE(list.add(BlockEntry{a, "x; reboot", at(0s), at(0s) + 1h, 1}));
  EXPECT_FALSE(list.add(BlockEntry{a, kIncident, at(0s), at(0s) - 1s, 1}));
  EXPECT_FALSE(list.add(BlockEntry{a, kIncident, at(0s), at(0s) + 1h, 0}));
  EXPECT_EQ(list.size(), 0u);
  EXPECT_EQ(list.offences(a, at(0s)), 0);
}

TEST(BlockList, PlanAddFindRemove) {
  BlockList list;
  const BlockSettings settings;
  const BlockEntry planned = list.plan(ip("203.0.113.7"), kIncident, at(0s), settings);
  EXPECT_EQ(planned.offence, 1);
  EXPECT_EQ(planned.since, at(0s));
  EXPECT_EQ(planned.until, at(0s) + 1h);
  EXPECT_EQ(list.find(ip("203.0.113.7")), nullptr);  // plan records nothing
  add(list, planned);
  const BlockEntry* found = list.find(ip("::ffff:203.0.113.7"));
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->incident, kIncident);
  EXPECT_EQ(list.size(), 1u);
  EXPECT_TRUE(list.remove(ip("203.0.113.7")));
  EXPECT_FALSE(list.remove(ip("203.0.113.7")));
  EXPECT_EQ(list.find(ip("203.0.113.7")), nullptr);
  EXPECT_EQ(list.offences(ip("203.0.113.7"), at(60s)), 1);  // history stays
}

TEST(BlockList, RepeatOffendersGetLongerBlocksWithinRememberFor) {
  BlockList list(7 * 24h);
  const BlockSettings settings;
  const IpAddress a = ip("2001:db8::42");
  TimePoint now = at(0s);
  std::vector<Duration> lengths;
  for (int i = 0; i < 7; ++i) {
    const BlockEntry e = list.plan(a, kIncident, now, settings);
    EXPECT_EQ(e.offence, i + 1);
    lengths.push_back(std::chrono::duration_cast<Duration>(e.until - e.since));
    add(list, e);
    list.remove(a);
    now = e.until + 1h;
  }
  EXPECT_EQ(lengths, (std::vector<Duration>{1h, 2h, 4h, 8h, 16h, 24h, 24h}));
  // A week after the last block, it is a first offence again.
  EXPECT_EQ(list.offences(a, now + 7 * 24h), 0);
  EXPECT_EQ(list.plan(a, kIncident, now + 8 * 24h, settings).offence, 1);
  // Other addresses are not affected.
  EXPECT_EQ(list.offences(ip("2001:db8::43"), now), 0);
}

TEST(BlockList, OffencesOnlyCountWithinTheWindow) {
  BlockList list(24h);
  const IpAddress a = ip("203.0.113.7");
  add(list, BlockEntry{a, kIncident, at(0s), at(0s) + 1h, 1});
  add(list, BlockEntry{a, kIncident, at(0s) + 10h, at(0s) + 12h, 2});
  EXPECT_EQ(list.offences(a, at(0s) + 11h), 2);
  EXPECT_EQ(list.offences(a, at(0s) + 24h + 1s), 1);
  EXPECT_EQ(list.offences(a, at(0s) + 34h + 1s), 0);
  list.prune(at(0s) + 24h + 1s);
  EXPECT_EQ(list.offences(a, at(0s)), 1);
  list.prune(at(0s) + 48h);
  EXPECT_EQ(list.offences(a, at(0s)), 0);
}

TEST(BlockList, AddReplacesTheEntryOfTheSameAddress) {
  BlockList list;
  const IpAddress a = ip("203.0.113.7");
  add(list, BlockEntry{a, kIncident, at(0s), at(0s) + 1h, 1});
  add(list, BlockEntry{a, "20260127-111500-nginx", at(30s), at(30s) + 2h, 2});
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list.find(a)->incident, "20260127-111500-nginx");
  EXPECT_EQ(list.offences(a, at(60s)), 2);
}

TEST(BlockList, Expired) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.7"), kIncident, at(0s), at(0s) + 1h, 1});
  add(list, BlockEntry{ip("203.0.113.8"), kIncident, at(0s), at(0s) + 2h, 1});
  add(list, BlockEntry{ip("2001:db8::1"), kIncident, at(0s), at(0s) + 30min, 1});
  EXPECT_TRUE(list.expired(at(0s)).empty());
  const std::vector<BlockEntry> due = list.expired(at(0s) + 1h);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_EQ(due[0].ip, ip("2001:db8::1"));
  EXPECT_EQ(due[1].ip, ip("203.0.113.7"));
  EXPECT_EQ(list.expired(at(0s) + 3h).size(), 3u);
}

TEST(BlockList, JsonRoundTrip) {
  BlockList list(7 * 24h);
  add(list, BlockEntry{ip("203.0.113.7"), kIncident, at(0s), at(0s) + 1h, 1});
  add(list, BlockEntry{ip("2001:db8::42"), "20260127-101502-nginx-scan-2", at(5s), at(5s) + 2h, 2});
  add(list, BlockEntry{ip("198.51.100.1"), kIncident, at(0s) - 48h, at(0s) - 47h, 1});
  list.remove(ip("198.51.100.1"));  // only history left
  const std::string json = list.to_json();
  Result<BlockList> back = BlockList::from_json(json, 7 * 24h);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->size(), 2u);
  const BlockEntry* e = back->find(ip("2001:db8::42"));
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->incident, "20260127-101502-nginx-scan-2");
  EXPECT_EQ(e->since, at(5s));
  EXPECT_EQ(e->until, at(5s) + 2h);
  EXPECT_EQ(e->offence, 2);
  EXPECT_EQ(back->offences(ip("198.51.100.1"), at(0s)), 1);
  EXPECT_EQ(back->to_json(), json);
}

TEST(BlockList, FromJsonRefusesAnythingUnexpected) {
  const std::string good_entry =
      R"({"ip":"203.0.113.7","incident":"20260127-101500-sshd","since":"2026-01-27T10:00:00.000Z","until":"2026-01-27T11:00:00.000Z","offence":1})";
  const auto doc = [](const std::string& blocks, const std::string& history = "[]") {
    return R"({"version":1,"blocks":)" + blocks + R"(,"history":)" + history + "}";
  };
  ASSERT_TRUE(BlockList::from_json(doc("[" + good_entry + "]")));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{", "bad JSON"},
      {"[]", "not a JSON object"},
      {R"({"version":2,"blocks":[],"history":[]})", "unknown version"},
      {R"({"blocks":[],"history":[]})", "version"},
      {R"({"version":1,"history":[]})", "blocks"},
      {R"({"version":1,"blocks":[]})", "history"},
      {doc("[1]"), "blocks[0] is not an object"},
      {doc(R"([{"ip":"203.0.113.007","incident":"20260127-101500-sshd","since":"2026-01-27T10:00:00Z","until":"2026-01-27T11:00:00Z","offence":1}])"),
       "blocks[0]"},
      {doc(R"([{"ip":"203.0.113.7","incident":"x; reboot","since":"2026-01-27T10:00:00Z","until":"2026-01-27T11:00:00Z","offence":1}])"),
       "incident"},
      {doc(R"([{"ip":"203.0.113.7","incident":"20260127-101500-sshd","since":"yesterday","until":"2026-01-27T11:00:00Z","offence":1}])"),
       "since"},
      {doc(R"([{"ip":"203.0.113.7","incident":"20260127-101500-sshd","since":"2026-01-27T12:00:00Z","until":"2026-01-27T11:00:00Z","offence":1}])"),
       "since is after until"},
      {doc(R"([{"ip":"203.0.113.7","incident":"20260127-101500-sshd","since":"2026-01-27T10:00:00Z","until":"2026-01-27T11:00:00Z","offence":0}])"),
       "offence"},
      {doc(R"([{"ip":"203.0.113.7","incident":"20260127-101500-sshd","since":"2026-01-27T10:00:00Z","until":"2026-01-27T11:00:00Z","offence":"1"}])"),
       "offence"},
      {doc("[" + good_entry + "," + good_entry + "]"), "twice"},
      {doc("[]", R"([{"ip":"203.0.113.7","blocks":["nope"]}])"), "history[0].blocks[0]"},
      {doc("[]", R"([{"ip":"203.0.113.7","blocks":[]},{"ip":"203.0.113.7","blocks":[]}])"),
       "twice"},
  };
  for (const auto& [text, what] : cases) {
    Result<BlockList> r = BlockList::from_json(text);
    ASSERT_FALSE(r) << text;
    EXPECT_NE(r.error().message.find(what), std::string::npos)
        << text << " -> " << r.error().message;
  }
}

class BlockListFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-block-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST_F(BlockListFile, MissingFileIsAnEmptyListWithoutWarning) {
  BlockList::Loaded l = BlockList::load(dir_ + "/blocks.json");
  EXPECT_EQ(l.list.size(), 0u);
  EXPECT_EQ(l.warning, "");
}

TEST_F(BlockListFile, SaveThenLoad) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.7"), kIncident, at(0s), at(0s) + 1h, 1});
  const std::string path = dir_ + "/state/blocks.json";
  Result<bool> saved = list.save(path);
  ASSERT_TRUE(saved) << saved.error().message;
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  BlockList::Loaded l = BlockList::load(path);
  EXPECT_EQ(l.warning, "");
  ASSERT_NE(l.list.find(ip("203.0.113.7")), nullptr);
  EXPECT_EQ(l.list.to_json(), list.to_json());
}

TEST_F(BlockListFile, CorruptFileIsAnEmptyListAndAWarningNamingIt) {
  const std::string path = dir_ + "/blocks.json";
  std::ofstream(path) << R"({"version":1,"blocks":[{"ip":"not an ip"}],"history":[]})";
  BlockList::Loaded l = BlockList::load(path);
  EXPECT_EQ(l.list.size(), 0u);
  EXPECT_NE(l.warning.find(path), std::string::npos) << l.warning;
  EXPECT_NE(l.warning.find("corrupt"), std::string::npos) << l.warning;

  std::ofstream(path, std::ios::trunc) << "garbage\n";
  l = BlockList::load(path);
  EXPECT_EQ(l.list.size(), 0u);
  EXPECT_NE(l.warning.find(path), std::string::npos);
}

TEST_F(BlockListFile, UnreadableFileIsAnEmptyListAndAWarning) {
  const std::string path = dir_ + "/blocks.json";
  fs::create_directory(path);  // a directory: open() works, read() fails with EISDIR
  BlockList::Loaded l = BlockList::load(path);
  EXPECT_EQ(l.list.size(), 0u);
  EXPECT_NE(l.warning.find(path), std::string::npos);
}

// --- reconcile ---

UfwRule rule(std::string_view address, std::string_view incident = kIncident) {
  UfwRule r;
  r.ip = ip(address);
  r.v6 = r.ip.family == IpAddress::Family::v6;
  r.incident = std::string(incident);
  r.comment = comment(incident);
  return r;
}

TEST(BlockReconcile, KeepsExpiresForgetsAndAdoptsUnknown) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.1"), kIncident, at(0s), at(0s) + 2h, 1});     // live
  add(list, BlockEntry{ip("203.0.113.2"), kIncident, at(0s), at(0s) + 30min, 1});  // expired
  add(list, BlockEntry{ip("203.0.113.3"), kIncident, at(0s), at(0s) + 2h, 1});  // removed by hand
  add(list, BlockEntry{ip("2001:db8::4"), kIncident, at(0s), at(0s) + 2h, 1});  // live, v6
  UfwStatus status;
  status.active = true;
  status.rules = {rule("203.0.113.1"), rule("203.0.113.2"), rule("203.0.113.9"),
                  rule("2001:db8::4")};

  const ReconcilePlan plan = reconcile(list, status, at(0s) + 1h, 30min);
  EXPECT_FALSE(plan.ufw_inactive);
  ASSERT_EQ(plan.to_delete.size(), 1u);
  EXPECT_EQ(plan.to_delete[0].rule.ip, ip("203.0.113.2"));
  EXPECT_EQ(plan.to_delete[0].why, ReconcilePlan::Delete::Why::expired);
  // vigil's rule the list does not know (state lost): kept, and ends 30 min from now.
  ASSERT_EQ(plan.adopt.size(), 1u);
  EXPECT_EQ(plan.adopt[0].ip, ip("203.0.113.9"));
  EXPECT_EQ(plan.adopt[0].incident, kIncident);
  EXPECT_EQ(plan.adopt[0].since, at(0s) + 1h);
  EXPECT_EQ(plan.adopt[0].until, at(0s) + 1h + 30min);
  EXPECT_EQ(plan.adopt[0].offence, 1);
  ASSERT_EQ(plan.forget.size(), 1u);
  EXPECT_EQ(plan.forget[0].ip, ip("203.0.113.3"));
  ASSERT_EQ(plan.keep.size(), 2u);
  EXPECT_EQ(plan.keep[0].ip, ip("2001:db8::4"));
  EXPECT_EQ(plan.keep[1].ip, ip("203.0.113.1"));
}

// A lost or corrupt blocks.json must not unblock the attackers vigil blocked: their rules are
// adopted (and expire adopt_for from now); an admin's rules are never touched.
TEST(BlockReconcile, EmptyListAdoptsEveryVigilRuleAndNothingElse) {
  Result<UfwStatus> status = parse_ufw_status(kActive);
  ASSERT_TRUE(status);
  const ReconcilePlan plan = reconcile(BlockList{}, *status, at(0s), 1h);
  EXPECT_TRUE(plan.to_delete.empty());
  ASSERT_EQ(plan.adopt.size(), 2u);  // the two vigil rules; never 8080/tcp or the office
  for (const BlockEntry& e : plan.adopt) {
    EXPECT_TRUE(valid_block_incident(e.incident)) << e.incident;
    EXPECT_EQ(e.until, at(0s) + 1h);
  }
  EXPECT_TRUE(plan.forget.empty());
  EXPECT_TRUE(plan.keep.empty());
}

TEST(BlockReconcile, AnUntrackedRuleListedTwiceIsAdoptedOnce) {
  UfwStatus status;
  status.active = true;
  status.rules = {rule("203.0.113.9"), rule("203.0.113.9")};
  const ReconcilePlan plan = reconcile(BlockList{}, status, at(0s), 1h);
  ASSERT_EQ(plan.adopt.size(), 1u);
  EXPECT_TRUE(plan.to_delete.empty());
}

TEST(BlockReconcile, RuleWithAnotherIncidentsTagBelongsToTheAddressEntry) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.1"), "20260127-120000-nginx", at(0s), at(0s) + 2h, 2});
  UfwStatus status;
  status.active = true;
  status.rules = {rule("203.0.113.1", "20260127-101500-sshd")};
  ReconcilePlan plan = reconcile(list, status, at(0s) + 1h, 1h);
  EXPECT_TRUE(plan.to_delete.empty());
  EXPECT_TRUE(plan.forget.empty());
  ASSERT_EQ(plan.keep.size(), 1u);
  // Once expired, it is deleted with its own comment, the only one ufw will match.
  plan = reconcile(list, status, at(0s) + 3h, 1h);
  ASSERT_EQ(plan.to_delete.size(), 1u);
  EXPECT_EQ(plan.to_delete[0].rule.comment, "vigil: 20260127-101500-sshd");
  Result<Argv> argv = ufw_unblock_argv(plan.to_delete[0].rule.ip, plan.to_delete[0].rule.comment);
  ASSERT_TRUE(argv);
  EXPECT_EQ(argv->back(), "vigil: 20260127-101500-sshd");
}

TEST(BlockReconcile, DuplicatesAreKeptWhileLiveAndAllDeletedWhenDue) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.1"), kIncident, at(0s), at(0s) + 2h, 1});
  UfwStatus status;
  status.active = true;
  status.rules = {rule("203.0.113.1"), rule("203.0.113.1")};
  ReconcilePlan plan = reconcile(list, status, at(0s) + 1h, 1h);
  EXPECT_TRUE(plan.to_delete.empty());
  EXPECT_EQ(plan.keep.size(), 1u);
  plan = reconcile(list, status, at(0s) + 2h, 1h);
  EXPECT_EQ(plan.to_delete.size(), 2u);
  EXPECT_TRUE(plan.keep.empty());
  EXPECT_TRUE(plan.forget.empty());
}

TEST(BlockReconcile, ExpiredEntryWhoseRuleIsGoneIsForgotten) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.1"), kIncident, at(0s), at(0s) + 1h, 1});
  UfwStatus status;
  status.active = true;
  const ReconcilePlan plan = reconcile(list, status, at(0s) + 2h, 1h);
  EXPECT_TRUE(plan.to_delete.empty());
  ASSERT_EQ(plan.forget.size(), 1u);
}

TEST(BlockReconcile, InactiveUfwTrustsTheList) {
  BlockList list;
  add(list, BlockEntry{ip("203.0.113.1"), kIncident, at(0s), at(0s) + 2h, 1});
  add(list, BlockEntry{ip("2001:db8::2"), kIncident, at(0s), at(0s) + 30min, 1});
  UfwStatus status;  // inactive: the listing shows no rules at all
  const ReconcilePlan plan = reconcile(list, status, at(0s) + 1h, 1h);
  EXPECT_TRUE(plan.ufw_inactive);
  EXPECT_TRUE(plan.forget.empty());
  ASSERT_EQ(plan.keep.size(), 1u);
  EXPECT_EQ(plan.keep[0].ip, ip("203.0.113.1"));
  ASSERT_EQ(plan.to_delete.size(), 1u);
  EXPECT_EQ(plan.to_delete[0].rule.ip, ip("2001:db8::2"));
  EXPECT_TRUE(plan.to_delete[0].rule.v6);
  EXPECT_EQ(plan.to_delete[0].rule.comment, "vigil: 20260127-101500-sshd-brute-force");
}

}  // namespace
}  // namespace vigil
