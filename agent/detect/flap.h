// FlapDetector: is a check "flapping", changing state so often that each change is noise rather
// than news? Nagios' percent state change without its weighting: the share of consecutive result
// pairs, among the last `window` results, whose states differ. Hysteresis between two thresholds
// keeps a check hovering near one of them from toggling the flapping state itself. Pure: one
// result in, at most one event out; no clock.
//
// Why the defaults in FlapSettings (window 20, low 25 %, high 50 %):
// - 20 results is Nagios' history (it keeps 21 results, 20 possible changes): long enough to tell
//   a pattern from a coincidence, short enough to decide within minutes (at the default 10 s
//   interval, the first decision comes after 100 s, a full window spans 200 s). Here 20 kept
//   results give 19 possible changes.
// - A check alternating every result has a rate of 100 %; one brief outage (ok, bad, ok) is 2
//   changes in 19, about 10 %; three short outages in a window are 6/19, about 32 %.
// - Nagios compiles in low 20 % / high 30 % (its sample nagios.cfg ships 5 % / 20 %); Shinken's
//   and Centreon Engine's examples use 25 % / 50 %. We take the latter: Nagios weights recent
//   changes up to 1.25x, we do not, and at 30 % three unrelated outages in 20 results would
//   already flag a check. At 50 % flapping needs 10 of 19 possible changes (five round trips
//   between ok and failed in 20 results); it stops at 4 changes or fewer (two outages). The gap
//   between the thresholds is the hysteresis.
#pragma once

#include <cstdint>
#include <optional>

#include "agent/config/config.h"

namespace vigil {

class FlapDetector {
 public:
  // The window is clamped to [2, 64]: one result has no change to count, and the history is one
  // 64-bit word. low and high are used as given; the config layer reports bad values.
  explicit FlapDetector(FlapSettings settings);

  // Feeds one result. Returns Flapping::started on the result at which flapping starts (rate
  // strictly above high), Flapping::stopped on the one at which it stops (rate strictly below
  // low), nullopt otherwise: each start and each stop is reported exactly once. No decision is made
  // before half the window (rounded up, at least 2) has been seen, so a new check's first few
  // results cannot flag it.
  std::optional<Flapping> add(Health result);

  // Whether the last start has not yet been followed by a stop.
  bool flapping() const { return flapping_; }
  // After a restart: the check was flapping (its incident says so). Starts in that state, so
  // that calming down is reported and the incident can close.
  void restore_flapping() { flapping_ = true; }

  // State changes between consecutive kept results / (kept results - 1), in [0, 1]; 0 with
  // fewer than 2 results.
  double rate() const;

  // The number of results kept: those added so far, at most the (clamped) window.
  int results() const { return results_; }

 private:
  FlapSettings settings_;
  int min_results_;  // results needed before add() may decide
  // The newest result in bit 0 (1 = healthy), older ones above it. Results beyond the window
  // stay in the word until shifted out; rate() looks at the newest results_ bits only.
  std::uint64_t history_ = 0;
  int results_ = 0;
  bool flapping_ = false;
};

}  // namespace vigil
