#include "agent/core/observation.h"

#include <array>
#include <utility>

namespace vigil {
namespace {

constexpr std::array<std::pair<FailureKind, std::string_view>, kFailureKindCount> kFailureNames{{
    {FailureKind::none, "ok"},
    {FailureKind::refused, "refused"},
    {FailureKind::timeout, "timeout"},
    {FailureKind::reset, "reset"},
    {FailureKind::dns, "dns"},
    {FailureKind::tls, "tls"},
    {FailureKind::protocol, "protocol"},
    {FailureKind::http_5xx, "http_5xx"},
    {FailureKind::http_4xx, "http_4xx"},
    {FailureKind::http_status, "http_status"},
    {FailureKind::body, "body"},
    {FailureKind::error, "error"},
    {FailureKind::unit_failed, "failed"},
    {FailureKind::unit_inactive, "inactive"},
    {FailureKind::restart_loop, "restart_loop"},
    {FailureKind::start_limit, "start_limit"},
    {FailureKind::not_found, "not_found"},
    {FailureKind::journal_match, "match"},
}};

}  // namespace

std::string_view to_string(Severity s) {
  switch (s) {
    case Severity::sev1:
      return "SEV1";
    case Severity::sev2:
      return "SEV2";
    case Severity::sev3:
      return "SEV3";
  }
  return "SEV?";
}

std::optional<Severity> parse_severity(std::string_view text) {
  if (text.size() != 4) return std::nullopt;
  auto upper = [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; };
  if (upper(text[0]) != 'S' || upper(text[1]) != 'E' || upper(text[2]) != 'V') return std::nullopt;
  switch (text[3]) {
    case '1':
      return Severity::sev1;
    case '2':
      return Severity::sev2;
    case '3':
      return Severity::sev3;
    default:
      return std::nullopt;
  }
}

std::string_view to_string(FailureKind k) {
  for (const auto& [kind, name] : kFailureNames) {
    if (kind == k) return name;
  }
  return "error";
}

std::optional<FailureKind> parse_failure_kind(std::string_view text) {
  for (const auto& [kind, name] : kFailureNames) {
    if (name == text && kind != FailureKind::none) return kind;
  }
  return std::nullopt;
}

std::string_view to_string(Finding::Kind k) {
  switch (k) {
    case Finding::Kind::firing:
      return "firing";
    case Finding::Kind::severity_changed:
      return "severity-changed";
    case Finding::Kind::changed:
      return "changed";
    case Finding::Kind::recovered:
      return "recovered";
  }
  return "?";
}

}  // namespace vigil
