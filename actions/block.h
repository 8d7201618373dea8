// The block action's building blocks: ufw argv, reading `ufw status`, the list of blocks vigil
// holds (with expiry and escalation for repeat offenders), and reconciling that list with ufw.
// It executes; whether to block is the incident book's call (see shared/DESIGN.md).
//
// Why these commands (ANCHORS.md #6, Debian 12's ufw 0.36.2):
//  - `ufw deny from IP` appends after the allow rules and so blocks nothing an allow rule lets
//    in; `ufw insert 1` fails on an empty rule list and across families. `ufw prepend` puts the
//    rule first among the rules of its family (v4 or v6) and works on an empty list.
//  - ufw's before.rules accept ESTABLISHED traffic before any user rule: a block stops new
//    connections only. `ss -K dst IP` kills the open ones (needs CAP_NET_ADMIN and a kernel with
//    CONFIG_INET_DIAG_DESTROY).
//  - Every rule vigil adds carries the comment "vigil: <incident id>", so vigil only ever deletes
//    its own rules, and a restart can find them again (reconcile()).
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/duration.h"
#include "agent/core/ip.h"
#include "agent/core/observation.h"
#include "agent/core/result.h"

namespace vigil {

inline constexpr const char* kUfwPath = "/usr/sbin/ufw";
// Debian 12 and Ubuntu 22.04 are merged-/usr: /bin/ss and /usr/bin/ss are the same file, and
// /usr/bin is where iproute2 installs it.
inline constexpr const char* kSsPath = "/usr/bin/ss";
// What every vigil rule's comment starts with.
inline constexpr std::string_view kBlockCommentPrefix = "vigil: ";

// An incident id as the incident book makes them: "YYYYMMDD-HHMMSS-slug", the slug being
// lower-case letters, digits and single '-' inside (a "-2" suffix included), at most 96 bytes.
// Only such ids go into a firewall comment: nothing from a log line ever does.
bool valid_block_incident(std::string_view incident);

// "vigil: <incident>". Error: the id is not valid_block_incident().
Result<std::string> block_comment(std::string_view incident);
// The incident of a comment block_comment() made; nullopt for any other comment (an admin's,
// "vigil: keep", "not vigil: x", trailing text).
std::optional<std::string> incident_of_comment(std::string_view comment);

// {ufw, prepend, deny, from, IP, comment, COMMENT}. Error: COMMENT is not block_comment()'s
// form (checked here too, so an unchecked string can never reach the firewall).
Result<std::vector<std::string>> ufw_block_argv(const IpAddress& ip, const std::string& comment);
// {ufw, delete, deny, from, IP, comment, COMMENT}. The comment must be the rule's own: ufw
// deletes only an exact match, comment included, so vigil can never delete an admin's rule for
// the same address (newer ufw versions delete a commented rule when no comment is given; with
// one they do not). Each call deletes one copy. Error: as ufw_block_argv().
Result<std::vector<std::string>> ufw_unblock_argv(const IpAddress& ip, const std::string& comment);
// {ss, -K, dst, IP}; an IPv6 address in [brackets] (ss reads "dst 2001:db8::1" as address
// "2001:db8:" port 1).
std::vector<std::string> ss_kill_argv(const IpAddress& ip);
// {ufw, status}: "Status: active" or "Status: inactive", then the rules.
std::vector<std::string> ufw_status_argv();
// The output limit to run ufw_status_argv() with. Why 4 MiB: a rule line is about 100 bytes, so
// this lists some 40,000 rules; the default 64 KiB would cut a listing at about 600, and a cut
// listing makes every rule after the cut look removed by hand (see reconcile()).
inline constexpr std::size_t kMaxUfwStatusOutput = 4 << 20;
// How long one ufw command may take: a second or two is normal; ten is a hung ufw (its lock
// held by an admin's session).
inline constexpr Duration kUfwTimeout{10'000};

// What a ufw rule change said it did (its stdout, under LC_ALL=C).
enum class UfwChange {
  changed,          // "Rule inserted", "Rule added", "Rules updated", "Rule deleted", ...
  already_present,  // "Skipping inserting existing rule": a rule for this address that differs
                    // at most in action or comment exists (an admin's "allow from IP", or an
                    // earlier vigil rule); nothing was added, so this block is NOT in effect
                    // unless the existing rule is vigil's own
  not_present,      // "Could not delete non-existent rule"
  unknown,          // anything else: read the output
};
UfwChange ufw_change(std::string_view out);

// A DENY-from rule tagged by vigil, as `ufw status` shows it.
struct UfwRule {
  IpAddress ip;
  std::string comment;   // "vigil: <incident>"
  std::string incident;  // from the comment
  bool v6 = false;       // listed as an IPv6 rule ("Anywhere (v6)")
};

struct UfwStatus {
  bool active = false;
  std::vector<UfwRule> rules;  // vigil's rules, in ufw's order
  // Lines whose comment starts with "vigil:" but that are not of the shape vigil writes (another
  // action, direction, port, a network, a malformed tag): never touched, worth a warning.
  std::vector<std::string> unrecognized;
};

// Reads `ufw status` (also `status verbose` and `status numbered`). The first non-empty line
// must be "Status: active" or "Status: inactive". Rules without a vigil tag are ignored. Errors:
// empty output, anything else first (e.g. "ERROR: You need to be root to run this script").
// Give it only a complete listing: check CommandResult::out_truncated first.
Result<UfwStatus> parse_ufw_status(std::string_view text);

struct BlockSettings {
  // The first block of an address. Why 1 h: long enough to end a brute-force run (bots move on
  // after a few refusals), short enough that a wrongly blocked customer is back the same hour.
  Duration block_for = std::chrono::hours(1);
  // The longest block, whatever the offence. Why 1 day: escalation reaches it at the 6th offence
  // (1, 2, 4, 8, 16, 24 h); longer blocks mostly land on reassigned dynamic or CGNAT addresses
  // and the innocent users behind them, and a persistent attacker who returns is blocked again,
  // at the cap, because remember_for outlasts it.
  Duration max_block_for = std::chrono::hours(24);
  // How long a block counts toward the next one's length. Why 7 days: covers weekly scanning
  // cycles, and forgets an address that behaved for a week (it may belong to someone else now).
  Duration remember_for = std::chrono::hours(24 * 7);
  // Kill the address's established connections after blocking it (`ss -K`).
  bool kill_connections = true;
};

// block_for * 2^(offence-1), capped at max_block_for; offence < 1 counts as 1; never overflows
// (a huge offence gives the cap). Zero or negative block_for gives zero.
Duration block_duration(int offence, Duration block_for, Duration max_block_for);

// One address vigil blocked.
struct BlockEntry {
  IpAddress ip;
  std::string incident;  // the incident that blocked it; the rule's comment is block_comment()
  TimePoint since{};
  TimePoint until{};
  int offence = 1;  // 1 for the first block within remember_for, 2 for the next, ...
};

// The addresses vigil blocked, with when each block ends, plus a history of block times per
// address (kept remember_for) so repeat offenders get longer blocks. Pure: nothing here runs a
// command; the caller runs ufw and records what succeeded.
class BlockList {
 public:
  explicit BlockList(Duration remember_for = BlockSettings{}.remember_for);

  // The entry a block of `ip` for `incident` at `now` would get: offence = offences(ip, now)
  // + 1, until = now + block_duration(). Records nothing: call add() once ufw succeeded.
  BlockEntry plan(const IpAddress& ip, std::string incident, TimePoint now,
                  const BlockSettings& settings) const;
  // Records a block: the entry (replacing any entry of the same address) and its `since` in the
  // address's history. History older than remember_for before `since` is dropped. False, and
  // nothing recorded, for an entry from_json() would refuse (an incident that is not
  // valid_block_incident(), until before since, an offence below 1): saving it would make the
  // whole file unreadable. plan() with an incident block_comment() accepted never gives one.
  bool add(BlockEntry entry);
  // Drops the entry of `ip` (after ufw deleted its rule); the history stays. False if none.
  bool remove(const IpAddress& ip);
  // The entry of `ip`, or nullptr.
  const BlockEntry* find(const IpAddress& ip) const;
  // Entries whose block ended (until <= now), ordered by address.
  std::vector<BlockEntry> expired(TimePoint now) const;
  // How many blocks of `ip` started within remember_for before `now` (a clock that stepped
  // back counts later ones too).
  int offences(const IpAddress& ip, TimePoint now) const;
  // Forgets history older than remember_for before `now`.
  void prune(TimePoint now);

  // Every entry, ordered by address.
  std::vector<BlockEntry> entries() const;
  std::size_t size() const { return entries_.size(); }
  Duration remember_for() const { return remember_for_; }

  // {"version":1,"blocks":[{"ip","incident","since","until","offence"}],
  //  "history":[{"ip","blocks":["RFC 3339",...]}]}
  std::string to_json() const;
  // Reads to_json()'s form. Anything unexpected (bad JSON, unknown version, a missing or
  // mistyped field, a bad address, time or incident id, since after until, an offence below 1,
  // an address twice) is an error that says what and where.
  static Result<BlockList> from_json(std::string_view text,
                                     Duration remember_for = BlockSettings{}.remember_for);

  struct Loaded;
  // Reads PATH (e.g. STATE/blocks.json). A missing file is an empty list; an unreadable or
  // corrupt one is an empty list plus a warning naming the file and the problem. Then reconcile()
  // finds vigil's rules unknown and deletes them: an unblock too early beats a block forever.
  static Loaded load(const std::string& path, Duration remember_for = BlockSettings{}.remember_for);
  // Writes PATH atomically (temporary file, fsync, rename, fsync of the directory).
  Result<bool> save(const std::string& path) const;

 private:
  // Forgets the addresses whose last block is oldest (and that are not blocked now) while the
  // history holds more than kMaxHistoryTimes block times.
  void compact();

  Duration remember_for_;
  std::map<std::string, BlockEntry> entries_;              // by canonical address
  std::map<std::string, std::vector<TimePoint>> history_;  // by canonical address, oldest first
  std::size_t history_times_ = 0;                          // the times in history_, all told
};

struct BlockList::Loaded {
  BlockList list;
  std::string warning;  // empty when the file was read, or did not exist
};

// What to do so that ufw and the block list agree again (at start, and after any failure).
struct ReconcilePlan {
  struct Delete {
    enum class Why {
      expired,  // its entry's block ended
    };
    UfwRule rule;  // delete with ufw_unblock_argv(rule.ip, rule.comment), then remove(rule.ip)
    Why why = Why::expired;
  };
  std::vector<Delete> to_delete;
  // vigil's rules the list does not track: its state was lost or corrupt, or vigil died between
  // `ufw insert` and saving the list. The block was meant, so it is kept, as a new entry (its
  // incident from the comment, offence 1) that ends `adopt_for` from now: never unblocked
  // early because a file was lost, never held forever either. One entry per address.
  std::vector<BlockEntry> adopt;
  // Entries whose rule is no longer in ufw: someone removed it by hand (or the block never took
  // effect). The address stays unblocked; drop the entry and report it.
  std::vector<BlockEntry> forget;
  // Entries whose block is in place and due later.
  std::vector<BlockEntry> keep;
  // ufw is inactive, so its rules could not be seen: the list was trusted (expired entries are
  // deleted, which `ufw delete` does in the rules file even while inactive; nothing is forgotten).
  bool ufw_inactive = false;
};

// Pure; `status` must come from a complete listing (see kMaxUfwStatusOutput). Rules are
// matched to entries by address, whatever incident their comment names (a
// re-block keeps the first rule, as ufw will not insert a second one differing only in comment).
// A tagged rule listed twice (only a hand edit of user.rules can do that) is kept while its
// entry lasts (a second identical DENY changes nothing) and deleted copy by copy when it ends:
// one Delete per listed copy, since each `ufw delete` removes the first exact match. Rules
// without vigil's tag are never in to_delete.
ReconcilePlan reconcile(const BlockList& list, const UfwStatus& status, TimePoint now,
                        Duration adopt_for);

}  // namespace vigil
