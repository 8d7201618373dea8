// The sshd patterns vigil ships and documents (issue 13), run through the real config parser and
// JournalScanner against every OpenSSH 9.x message form, with the user names an attacker picks:
// spaces, "from ADDR port N" inside the name, quotes, control bytes, 10 kB. The client chooses
// its user name; sshd writes the address itself, last. Whatever the name, the key is the
// client's real address or nothing, never the address written into the name.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/load_config.h"
#include "probes/journal.h"

namespace vigil {
namespace {

// The address the attacker wants blocked, and the one it really connects from.
constexpr std::string_view kVictim = "10.0.0.5";
constexpr std::string_view kAttacker = "203.0.113.9";

// The patterns of docs/MITIGATIONS.md's table, as TOML literal strings. The first is the one
// etc/vigil.toml, README.md and vigil.toml(5) ship (DocsShipTheTestedPatterns checks them).
constexpr std::string_view kFailed =
    R"('^Failed (?:password|keyboard-interactive/pam) for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2$')";
constexpr std::string_view kInvalid = R"('^Invalid user (?P<user>.*) from (?P<ip>\S+) port \d+$')";
constexpr std::string_view kPam =
    R"('^pam_unix\(sshd:auth\): authentication failure; logname=\S* uid=\d+ euid=\d+ tty=ssh ruser=\S* rhost=(?P<ip>\S+)(?:  user=.*)?$')";
constexpr std::string_view kMaxTries =
    R"('^(?:error: )?maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*) from (?P<ip>\S+) port \d+ ssh2 \[preauth\]$')";
constexpr std::string_view kPreauth =
    R"('^(?:Disconnected from|Connection closed by|Connection reset by) (?:invalid|authenticating) user (?P<user>.*) (?P<ip>\S+) port \d+ \[preauth\]$')";

std::string ReadSource(const std::string& rel) {
  std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(in.good()) << "cannot read " << rel;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// One acting check with `pattern`, aimed as the docs say (unit and uid), parsed for real: the
// provenance rule must accept it.
class Check {
 public:
  explicit Check(std::string_view pattern)
      : text_(
            "[action.block.ssh]\n\n[[check]]\nname = \"ssh\"\nprobe = \"journal\"\n"
            "unit = \"ssh.service\"\nuid = 0\npattern = " +
            std::string(pattern) + "\nkey = \"ip\"\ncount = 1\nmitigate = [\"block:ssh\"]\n"),
        loaded_(parse_config(text_, "vigil.toml")) {
    for (const ConfigError& e : loaded_.errors) ADD_FAILURE() << e.to_string();
    if (loaded_.config) scanner_.emplace(*loaded_.config->checks.at(0).journal());
  }
  // The key the line is counted under; "" when it does not count (no match, or not an IP).
  std::string key(std::string_view line) {
    if (!scanner_) return "no scanner";
    const JournalScanner::Result r = scanner_->scan(line, TimePoint{} + std::chrono::hours(1));
    return r.matched && r.rejected.empty() ? r.key : "";
  }

 private:
  std::string text_;
  LoadResult loaded_;
  std::optional<JournalScanner> scanner_;
};

// The names an attacker logs in with. Each is put where sshd puts the user.
std::vector<std::string> HostileNames() {
  const std::string v(kVictim);
  return {
      "root",
      "",
      "x from " + v + " port 22",
      "x from " + v + " port 22 ssh2",
      "x " + v + " port 22 [preauth]",
      "rhost=" + v,
      "x from " + v + " port 22 ssh2 [preauth]",
      "o'brien \"x\" from " + v + " port 22",
      "\x1b[2J\x1b[31mx from " + v + " port 22\x07",
      "\\033[31mx from " + v + " port 22",  // sshd's own escaping of a control byte
      "x\tfrom\t" + v + "\tport\t22",
      std::string(10'000, 'a') + " from " + v + " port 22",
      std::string(100, 'b'),  // sshd's cut: %.100s
  };
}

struct Form {
  const char* name;
  std::string_view pattern;
  // The line sshd writes for user `u` from kAttacker.
  std::string (*line)(const std::string& u);
};

std::string A() { return std::string(kAttacker); }

const Form kForms[] = {
    {"Failed password", kFailed,
     [](const std::string& u) {
       return "Failed password for " + u + " from " + A() + " port 5555 ssh2";
     }},
    {"Failed password, invalid user", kFailed,
     [](const std::string& u) {
       return "Failed password for invalid user " + u + " from " + A() + " port 5555 ssh2";
     }},
    {"Failed keyboard-interactive/pam", kFailed,
     [](const std::string& u) {
       return "Failed keyboard-interactive/pam for invalid user " + u + " from " + A() +
              " port 5555 ssh2";
     }},
    {"Invalid user", kInvalid,
     [](const std::string& u) { return "Invalid user " + u + " from " + A() + " port 5555"; }},
    {"pam_unix authentication failure", kPam,
     [](const std::string& u) {
       return "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
              "rhost=" +
              A() + "  user=" + u;
     }},
    {"maximum authentication attempts", kMaxTries,
     [](const std::string& u) {
       return "error: maximum authentication attempts exceeded for invalid user " + u + " from " +
              A() + " port 5555 ssh2 [preauth]";
     }},
    {"Disconnected from invalid user", kPreauth,
     [](const std::string& u) {
       return "Disconnected from invalid user " + u + " " + A() + " port 5555 [preauth]";
     }},
    {"Connection closed by authenticating user", kPreauth,
     [](const std::string& u) {
       return "Connection closed by authenticating user " + u + " " + A() + " port 5555 [preauth]";
     }},
    {"Connection reset by invalid user", kPreauth,
     [](const std::string& u) {
       return "Connection reset by invalid user " + u + " " + A() + " port 5555 [preauth]";
     }},
};

TEST(SshdPatterns, EveryFormKeysTheRealAddressWhateverTheUserName) {
  for (const Form& f : kForms) {
    Check c(f.pattern);
    for (const std::string& name : HostileNames()) {
      const std::string line = f.line(name);
      if (f.pattern == kFailed && name.empty()) continue;  // sshd always names the user there
      EXPECT_EQ(c.key(line), kAttacker) << f.name << ": " << line.substr(0, 200);
    }
  }
}

// A line cut short, a newline in the name (sshd escapes it, a forged line may not), trailing
// text after sshd's own suffix: no count, and certainly not for the victim.
TEST(SshdPatterns, MalformedLinesNeverKeyTheVictim) {
  const std::string v(kVictim);
  const std::vector<std::pair<std::string_view, std::string>> cases = {
      {kFailed, "Failed password for invalid user x from " + v + " port 22"},
      {kFailed, "Failed password for invalid user x from " + v + " port 22 ssh2\nfrom " + A() +
                    " port 5555 ssh2"},
      {kFailed, "Failed password for x from " + A() + " port 5555 ssh2 from " + v + " port 2"},
      {kFailed, "Accepted password for x from " + v + " port 22 ssh2"},
      {kFailed, " Failed password for x from " + v + " port 22 ssh2"},
      {kFailed, "Failed password for root from 1.2.3.4;reboot port 22 ssh2"},
      {kFailed, "Failed password for root from $(id) port 22 ssh2"},
      {kInvalid, "Invalid user x from " + v + " port 22 something"},
      {kPam,
       "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost= "
       " user=x rhost=" +
           v},
      {kPreauth, "Connection closed by " + v + " port 22 [preauth]"},
  };
  for (const auto& [pattern, line] : cases) {
    Check c(pattern);
    const std::string k = c.key(line);
    EXPECT_NE(k, kVictim) << line;
    EXPECT_TRUE(k.empty() || k == kAttacker) << line << " -> " << k;
  }
}

TEST(SshdPatterns, IPv6AndMappedAddressesAreKeyedCanonically) {
  Check c(kFailed);
  EXPECT_EQ(c.key("Failed password for invalid user x from 10.0.0.5 port 22 from 2001:db8::7 "
                  "port 5555 ssh2"),
            "2001:db8::7");
  EXPECT_EQ(c.key("Failed password for root from ::ffff:203.0.113.9 port 5555 ssh2"), kAttacker);
}

// The shipped and documented texts are the tested ones, character for character.
TEST(SshdPatterns, DocsShipTheTestedPatterns) {
  const std::string shipped = "pattern = " + std::string(kFailed);
  EXPECT_NE(ReadSource("etc/vigil.toml").find("# " + shipped), std::string::npos);
  EXPECT_NE(ReadSource("README.md").find(shipped), std::string::npos);
  EXPECT_NE(ReadSource("docs/MITIGATIONS.md").find(shipped), std::string::npos);
  // roff: '-' is written \- and '\' is written \e.
  std::string man = ReadSource("docs/vigil.toml.5");
  for (std::size_t at = 0; (at = man.find("\\-", at)) != std::string::npos;)
    man.replace(at, 2, "-");
  for (std::size_t at = 0; (at = man.find("\\e", at)) != std::string::npos; ++at) {
    man.replace(at, 2, "\\");
  }
  EXPECT_NE(man.find(shipped), std::string::npos);
  // The table: every form's pattern, with '|' escaped for Markdown.
  const std::string doc = ReadSource("docs/MITIGATIONS.md");
  for (std::string_view p : {kFailed, kInvalid, kPam, kMaxTries, kPreauth}) {
    std::string cell(p);
    for (std::size_t at = 0; (at = cell.find('|', at)) != std::string::npos; at += 2) {
      cell.replace(at, 1, "\\|");
    }
    EXPECT_NE(doc.find("`" + cell + "`"), std::string::npos) << p;
  }
}

}  // namespace
}  // namespace vigil
