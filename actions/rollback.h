// The rollback action: an app deployed as DIR/releases/<name>/ with DIR/current -> releases/<name>
// (a symlink, relative or absolute) is switched back to the last release that passed its health
// checks. It executes; whether to run is the incident book's call (see shared/DESIGN.md).
//
// Safety rules (ANCHORS.md #5): the switch is a symlink() to a temporary name then a rename()
// over `current`, so a reader sees the old release or the new one, never nothing (never
// `ln -sfn`, never unlink first); the target is a release that was live while health checks
// passed, never just "the previous directory"; from -> to is reported so a human can roll forward.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/core/observation.h"
#include "agent/core/result.h"

namespace vigil {

// A release name is one plain path component: not empty, no '/', no NUL, not "." or "..", at
// most 255 bytes (NAME_MAX). Anything else could leave DIR/releases/.
bool valid_release_name(std::string_view name);

// One release that was live while the app's health checks passed.
struct KnownGoodRelease {
  std::string release;
  TimePoint first_healthy{};
  TimePoint last_healthy{};
};

// Which releases were healthy, most recently healthy first. Order is by the calls to
// mark_good(), not by the times passed in, so a clock step cannot reorder history.
class ReleaseHistory {
 public:
  // Twenty: a rollback goes back one or two releases; the rest is for a human rolling forward
  // or back by hand, and keeps the file a few kB.
  static constexpr std::size_t kDefaultLimit = 20;

  explicit ReleaseHistory(std::size_t limit = kDefaultLimit);

  enum class Change {
    refreshed,  // `release` already was the most recently healthy one: only last_healthy moved
    promoted,   // a release known before became the most recently healthy one again
    added,      // a release never seen healthy before (the oldest may have been dropped)
  };
  // Records that `release` was live while the health checks passed at `at`: it becomes the
  // most recently healthy release; first_healthy stays, last_healthy becomes `at` (never moves
  // back). Beyond the limit the least recently healthy releases are dropped. `refreshed` does
  // not change what plan_rollback() picks, so a caller marking on every passing check may save
  // only on `promoted` and `added`. Error: an invalid release name.
  Result<Change> mark_good(std::string_view release, TimePoint at);

  // Removes `release` (it was rolled back from: proven bad, whatever passed before it), so a
  // later failure never plans a switch back to it. True if it was known.
  bool forget(std::string_view release);

  // Most recently healthy first.
  const std::vector<KnownGoodRelease>& releases() const { return releases_; }
  // The record of `release`, or nullptr.
  const KnownGoodRelease* find(std::string_view release) const;
  std::size_t limit() const { return limit_; }

  // {"version":1,"releases":[{"release":"A","first_healthy":"RFC 3339","last_healthy":...}]}
  std::string to_json() const;
  // Reads to_json()'s form. Anything unexpected (bad JSON, unknown version, a missing or
  // mistyped field, a bad time, an invalid or duplicate release name) is an error that says
  // what: a half-trusted history could roll back to a release that never passed health. More
  // releases than `limit` keep the most recent ones.
  static Result<ReleaseHistory> from_json(std::string_view text, std::size_t limit = kDefaultLimit);

  struct Loaded;
  // Reads PATH (e.g. STATE/releases/APP.json). A missing file is an empty history; an
  // unreadable or corrupt one is an empty history plus a warning naming the file and the
  // problem (empty means "no known-good release": rollbacks are refused, never guessed).
  static Loaded load(const std::string& path, std::size_t limit = kDefaultLimit);
  // Writes PATH atomically (temporary file, fsync, rename, fsync of the directory), creating
  // its directory.
  Result<bool> save(const std::string& path) const;

 private:
  std::size_t limit_;
  std::vector<KnownGoodRelease> releases_;
};

struct ReleaseHistory::Loaded {
  ReleaseHistory history;
  std::string warning;  // empty when the file was read, or did not exist
};

// STATE_DIR/releases/APP.json. Error: APP is not a valid file name (same rule as releases).
Result<std::string> release_history_path(const std::string& state_dir, std::string_view app);

// The release DIR/current points to. Errors: current is missing, is not a symlink, points
// outside DIR/releases/ (compared after resolving both, so "releases/../releases/A" and an
// absolute link through a symlinked DIR are fine), or its release directory is gone.
Result<std::string> current_release(const std::string& dir);

// When DIR/current was last switched (the link's own mtime, to the second), if it exists.
std::optional<TimePoint> release_switched(const std::string& dir);

struct RollbackPlan {
  std::string from;                  // the current release
  std::string to;                    // the release to switch to
  std::vector<std::string> skipped;  // more recently healthy releases whose directory is gone
};
// The release a rollback would switch to: the most recently healthy release that is not the
// current one and whose directory still exists. Errors (each says why): current_release()'s,
// "no known-good release other than the current one", or "release X is gone" when every
// candidate's directory was removed.
Result<RollbackPlan> plan_rollback(const std::string& dir, const ReleaseHistory& history);

struct ReleaseSwitch {
  std::string from;
  std::string to;
  // Set when the switch happened but could not be made durable (fsync of DIR failed): the link
  // is live now, a crash could still bring the old one back.
  std::string warning;
};
// Points DIR/current at releases/TO atomically: symlink() to a unique temporary name in DIR,
// rename() over current, fsync(DIR). Keeps the link's style: a relative link stays relative,
// an absolute one absolute (only its last component changes). The temporary link never
// survives, on success or failure. Errors: TO is not a plain name, DIR/releases/TO is not a
// directory, current_release()'s errors (a regular directory is never replaced), or the
// system calls' (with errno text). Switching to the current release rewrites the link
// (harmless) and reports from == to.
Result<ReleaseSwitch> switch_release(const std::string& dir, std::string_view to);

// What a rollback did, for the incident timeline: enough for a human to roll forward
// (switch `current` back to `from`).
struct RollbackOutcome {
  std::string action = "rollback";
  std::string target;           // the app, as configured
  std::string from;             // "" when the current release could not be read
  std::string to;               // "" when there was no release to go to
  std::string message;          // one line: what happened or why not
  bool ok = false;              // true: switched (or, in dry-run, would switch)
  DryRun dry_run = DryRun::no;  // yes: nothing was changed, `message` says what would be
};

struct RollbackRequest {
  std::string app;  // the target's name, for the outcome and messages
  std::string dir;  // the deploy directory holding releases/ and current
  DryRun dry_run = DryRun::no;
};
// plan_rollback() then switch_release(). Dry-run plans only and says "would roll back".
// Never throws; every refusal is an outcome with ok == false and the reason.
RollbackOutcome rollback(const RollbackRequest& request, const ReleaseHistory& history);

// rollback() in two halves, for a switch made by another process (as DIR's owner, see
// deploy_owner()). begin_rollback() plans: a refusal, and in dry-run what would be done, is
// final (switch_pending == false, `outcome` is rollback()'s); otherwise outcome.from/to say
// what to switch and end_rollback() turns the switch's result into the outcome.
struct PlannedRollback {
  RollbackOutcome outcome;
  bool switch_pending = false;
  std::string skipped;  // " (skipped, directory gone: X Y)" or ""
};
PlannedRollback begin_rollback(const RollbackRequest& request, const ReleaseHistory& history);
// `switched` is switch_release()'s result or the other process's; `as_whom` ("" or
// "as www-data (uid 33)") is said after "switched FROM -> TO".
RollbackOutcome end_rollback(const RollbackRequest& request, const PlannedRollback& planned,
                             const Result<ReleaseSwitch>& switched, std::string_view as_whom);

// Who owns DIR (following a symlinked DIR): `current` is replaced by a rename in DIR, which
// takes write permission on DIR, and vigil (root without CAP_DAC_OVERRIDE) has it only on what
// root owns. For any other owner the switch runs as that owner: the least privilege that can
// make it, and root never writes in a tree its app user controls.
struct DeployOwner {
  unsigned uid = 0;
  unsigned gid = 0;
};
Result<DeployOwner> deploy_owner(const std::string& dir);

}  // namespace vigil
