#include "agent/incidents/report.h"

#include <sstream>

#include "agent/core/terminal.h"
#include "agent/sys/log.h"

namespace vigil {

std::string format_finding(const Finding& f) {
  std::ostringstream out;
  out << f.check;
  if (!f.key.empty()) out << "[" << f.key << "]";
  out << ": ";
  switch (f.kind) {
    case Finding::Kind::firing:
      out << to_string(f.severity) << " firing: " << f.reason;
      break;
    case Finding::Kind::severity_changed:
      out << to_string(f.severity) << " (was " << (f.previous ? to_string(*f.previous) : "?")
          << "): " << f.reason;
      break;
    case Finding::Kind::changed:
      out << to_string(f.severity) << " still firing, " << f.reason;
      break;
    case Finding::Kind::recovered: {
      const auto lasted = std::chrono::duration_cast<Duration>(f.at - f.since);
      out << "recovered after " << format_duration(lasted) << " (was " << to_string(f.severity)
          << "): " << f.reason;
      break;
    }
  }
  return out.str();
}

std::string format_observation(const Observation& obs) {
  std::ostringstream out;
  out << "check:    " << obs.check << "\n"
      << "result:   " << (obs.ok() ? "ok" : "FAIL (" + std::string(to_string(obs.failure)) + ")")
      << "\n"
      << "summary:  " << visible(obs.summary) << "\n";
  if (obs.http.status != 0) out << "status:   " << obs.http.status << "\n";
  if (obs.http.attempts > 0) {  // an HTTP observation
    out << "timing:   total " << obs.http.total.count() << "ms, connect "
        << obs.http.connect.count() << "ms, tls " << obs.http.tls.count() << "ms, first byte "
        << obs.http.first_byte.count() << "ms\n"
        << "attempts: " << obs.http.attempts << "\n";
  }
  if (!obs.http.error.empty()) out << "error:    " << visible(obs.http.error) << "\n";
  if (!obs.http.body_head.empty()) out << "body:     " << visible(obs.http.body_head) << "\n";
  if (!obs.key.empty()) out << "key:      " << visible(obs.key) << "\n";
  for (const std::string& line : obs.evidence) out << "evidence: " << visible(line) << "\n";
  return out.str();
}

std::string describe_check(const CheckConfig& c) {
  std::ostringstream out;
  out << c.name << ": " << c.probe;
  if (const HttpSettings* h = c.http()) {
    out << " " << (h->method == HttpMethod::head ? "HEAD" : "GET") << " " << h->url << " every "
        << format_duration(c.interval) << ", timeout " << format_duration(c.timeout) << ", confirm "
        << c.confirm << "x" << format_duration(c.confirm_interval);
    if (c.latency_warn) out << ", latency_warn " << format_duration(*c.latency_warn);
    if (c.latency_crit) out << ", latency_crit " << format_duration(*c.latency_crit);
  } else if (const UnitSettings* u = c.unit()) {
    for (const std::string& unit : u->units) out << " " << unit;
    out << " expected " << (u->expect == UnitExpect::active ? "active" : "inactive") << ", loop at "
        << u->restart_loop_count << " restarts within " << format_duration(u->restart_loop_window);
  } else if (const JournalSettings* j = c.journal()) {
    for (const std::string& unit : j->units) out << " unit=" << unit;
    for (const std::string& id : j->identifiers) out << " identifier=" << id;
    for (const std::string& v : j->uids) out << " uid=" << v;
    for (const std::string& v : j->exes) out << " exe=" << v;
    for (const std::string& v : j->comms) out << " comm=" << v;
    for (const std::string& v : j->transports) out << " transport=" << v;
    out << ", " << j->patterns.size() << " pattern(s), " << j->count << " within "
        << format_duration(j->window);
    if (!j->key.empty()) out << " per " << j->key;
  }
  out << ", fail_after " << c.fail_after << ", recover_after " << c.recover_after;
  return out.str();
}

void log_finding(const Finding& f) {
  sys::LogLevel level = sys::LogLevel::notice;
  std::string_view id = sys::kMsgCheckRecovered;
  if (f.kind != Finding::Kind::recovered) {
    id = f.kind == Finding::Kind::firing ? sys::kMsgCheckFiring : sys::kMsgCheckSeverity;
    switch (f.severity) {
      case Severity::sev1:
        level = sys::LogLevel::crit;
        break;
      case Severity::sev2:
        level = sys::LogLevel::err;
        break;
      case Severity::sev3:
        level = sys::LogLevel::warning;
        break;
    }
  }
  const Observation& o = f.observation;
  std::string evidence;
  for (const std::string& line : o.evidence) evidence += line + "\n";
  sys::log(level, format_finding(f),
           {{"MESSAGE_ID", std::string(id)},
            {"VIGIL_CHECK", f.check},
            {"VIGIL_SEVERITY", std::string(to_string(f.severity))},
            {"VIGIL_STATE", std::string(to_string(f.kind))},
            {"VIGIL_FAILURE", std::string(to_string(o.failure))},
            {"VIGIL_HTTP_STATUS", std::to_string(o.http.status)},
            {"VIGIL_LATENCY_MS", std::to_string(o.latency.count())},
            {"VIGIL_ERROR", o.http.error},
            {"VIGIL_BODY_HEAD", o.http.body_head},
            {"VIGIL_KEY", f.key},
            {"VIGIL_EVIDENCE", evidence}});
}

}  // namespace vigil
