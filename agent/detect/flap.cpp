#include "agent/detect/flap.h"

#include <algorithm>
#include <bit>

namespace vigil {
namespace {

// The history is one 64-bit word, and at least two results are needed for one change.
constexpr int kMinWindow = 2;
constexpr int kMaxWindow = 64;

FlapSettings clamped(FlapSettings settings) {
  settings.window = std::clamp(settings.window, kMinWindow, kMaxWindow);
  return settings;
}

}  // namespace

FlapDetector::FlapDetector(FlapSettings settings)
    : settings_(clamped(settings)),
      // Half the window, rounded up: a rate over fewer results says little (a new check's first
      // ok, bad would be 100 %). At least 2, the fewest results with a rate at all.
      min_results_(std::max(kMinWindow, (settings_.window + 1) / 2)) {}

std::optional<Flapping> FlapDetector::add(Health result) {
  // Unsigned shift: the bit leaving at the top is simply dropped; results_ never exceeds 64.
  history_ = (history_ << 1) | (result == Health::healthy ? 1u : 0u);
  results_ = std::min(results_ + 1, settings_.window);
  if (results_ < min_results_) return std::nullopt;

  const double r = rate();
  if (!flapping_ && r > settings_.high) {
    flapping_ = true;
    return Flapping::started;
  }
  if (flapping_ && r < settings_.low) {
    flapping_ = false;
    return Flapping::stopped;
  }
  return std::nullopt;
}

double FlapDetector::rate() const {
  if (results_ < 2) return 0.0;
  const int pairs = results_ - 1;  // at most 63, so the shift below is defined
  // Bit i of history ^ (history >> 1) is set when result i differs from the older result i + 1;
  // keep the bits of the pairs inside the window.
  const std::uint64_t pair_mask = (std::uint64_t{1} << pairs) - 1;
  const int changes = std::popcount((history_ ^ (history_ >> 1)) & pair_mask);
  return static_cast<double>(changes) / static_cast<double>(pairs);
}

}  // namespace vigil
