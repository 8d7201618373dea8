// The `vigil` commands that ask the running agent over its control socket: status, incidents,
// incident show, postmortem, maintain, ack. incidents, incident show and postmortem fall back
// to the timelines in the state directory when the agent is not running.
#include <iostream>
#include <string>

#include "agent/cli_commands.h"
#include "agent/control.h"
#include "agent/core/terminal.h"
#include "agent/incidents/incident.h"
#include "agent/incidents/incident_index.h"
#include "agent/incidents/postmortem.h"
#include "agent/incidents/timeline.h"
#include "agent/load_config.h"

namespace vigil::cli {
namespace {

// Where the agent answers, and where its state lives: from --socket, else the config file
// (when readable), else the defaults.
struct Endpoints {
  std::string socket = "/run/vigil/control.sock";
  std::string state_dir = "/var/lib/vigil";
};

Endpoints endpoints(const Args& a) {
  Endpoints e;
  LoadResult loaded = load_config_file(a.config);
  if (loaded.config) {
    e.socket = loaded.config->agent.control_socket;
    e.state_dir = loaded.config->agent.state_dir;
  }
  if (!a.socket.empty()) e.socket = a.socket;
  return e;
}

std::string age(std::string_view since_text, TimePoint now) {
  const std::optional<TimePoint> since = parse_time(since_text);
  if (!since) return "?";
  return format_duration(std::chrono::duration_cast<Duration>(
      std::chrono::duration_cast<std::chrono::seconds>(now - *since)));
}

// A string field of the agent's answer, made safe for the terminal: titles, summaries, keys
// and reasons carry text from the journal and the network (issue 13).
std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? visible(j[key].get<std::string>()) : std::string();
}

// JSON for a terminal or a pipe: ASCII only (\uXXXX escapes), and never an exception on bytes
// that are not UTF-8 (they become U+FFFD).
std::string json_out(const nlohmann::json& j) {
  return j.dump(2, ' ', true, nlohmann::json::error_handler_t::replace);
}

// Left-aligned column.
std::string col(const std::string& text, std::size_t width) {
  return text.size() >= width ? text + " " : text + std::string(width - text.size(), ' ');
}

// An incident from the agent, or from its timeline file when the agent is not running.
Result<Incident> fetch_incident(const Args& a, const std::string& id) {
  if (!valid_incident_id(id)) return make_error("'" + id + "' is not an incident id");
  const Endpoints e = endpoints(a);
  auto reply = control_request(e.socket, {{"cmd", "incident"}, {"id", id}});
  if (reply) {
    if (!reply->value("ok", false)) return make_error(str(*reply, "error"));
    Incident inc;
    inc.id = id;
    int n = 0;
    for (const auto& line : (*reply)["lines"]) {
      ++n;
      auto ev = from_json_line(line.get<std::string>());
      if (!ev) continue;  // a torn line after a crash: the rest still tells the story
      inc.apply(*ev);
    }
    if (n == 0) return make_error("incident " + id + " has an empty timeline");
    return inc;
  }
  auto loaded = IncidentStore(e.state_dir + "/incidents").load(id);
  if (!loaded)
    return make_error(reply.error().message +
                      "; and from the state directory: " + loaded.error().message);
  return std::move(loaded->incident);
}

}  // namespace

int cmd_status(const Args& a) {
  auto reply = control_request(endpoints(a).socket, {{"cmd", "status"}});
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    // 3 like systemctl status' "not running"; anything else (permission, timeout) is 2.
    return reply.error().message.find("not running") != std::string::npos ? 3 : 2;
  }
  if (!reply->value("ok", false) || !(*reply)["checks"].is_array() ||
      !(*reply)["incidents"].is_array() || !(*reply)["maintenance"].is_array()) {
    std::cerr << "vigil: unexpected answer from the agent: " << str(*reply, "error") << "\n";
    return 2;
  }
  const nlohmann::json& r = *reply;
  if (a.json) {
    std::cout << json_out(r) << "\n";
    return r["incidents"].empty() ? 0 : 1;
  }
  const TimePoint now = parse_time(str(r, "now")).value_or(Clock::now());
  const auto& incidents = r["incidents"];
  std::cout << (incidents.empty() ? "● " : "× ") << "vigil " << str(r, "version") << " on "
            << str(r, "host") << (r.value("dry_run", false) ? " (dry-run)" : "") << "\n";
  std::cout << "     Config: " << str(r, "config") << "\n";
  std::cout << "    Running: since " << str(r, "started") << " (" << age(str(r, "started"), now)
            << ")\n";
  std::cout << "  Incidents: " << incidents.size() << " open\n";
  for (const auto& m : r["maintenance"]) {
    std::string which;
    for (const auto& c : m["checks"]) {
      which += (which.empty() ? "" : ", ") + visible(c.is_string() ? c.get<std::string>() : "");
    }
    std::cout << "Maintenance: " << (which.empty() ? "all checks" : which) << " until "
              << str(m, "until") << (str(m, "reason").empty() ? "" : " (" + str(m, "reason") + ")")
              << "\n";
  }
  if (r.contains("blocks")) {
    for (const auto& b : r["blocks"]) {
      std::cout << "Blocked: " << str(b, "ip") << " until " << str(b, "until") << " (incident "
                << str(b, "incident") << ")\n";
    }
  }
  if (r.contains("protection_warnings") && r["protection_warnings"].is_array()) {
    for (const auto& w : r["protection_warnings"]) {
      std::cout << "Blocks held: " << visible(w.is_string() ? w.get<std::string>() : "")
                << " (vigil cannot tell who must never be blocked)\n";
    }
  }
  if (r.contains("fleet") && r["fleet"].is_object()) {
    const auto& f = r["fleet"];
    std::string held;
    if (f.contains("held") && f["held"].is_object()) {
      for (const auto& item : f["held"].items()) {
        held += (held.empty() ? "" : ", ") + visible(item.key());
      }
    }
    const std::string error = str(f, "error");
    const std::string endpoint = str(f, "endpoint");
    std::cout << "      Fleet: " << str(f, "name") << " (etcd "
              << (endpoint.empty() ? "not answering" : endpoint) << "; lease " << str(f, "lease")
              << ")" << (held.empty() ? "" : "; holding slots: " + held)
              << (error.empty() ? "" : "; " + error) << "\n";
  }
  if (r.contains("circuits")) {
    for (const auto& c : r["circuits"]) {
      std::cout << "Circuit open: " << str(c, "key") << " since " << str(c, "opened") << ": "
                << str(c, "reason") << " (no automatic action; `vigil ack` closes it)\n";
    }
  }
  if (r.contains("paging") && r["paging"].is_object()) {
    const auto& p = r["paging"];
    if (p.value("queued", 0) > 0 || p.value("dropped_total", 0) > 0 ||
        p.value("failed_total", 0) > 0) {
      std::cout << "Pages: " << p.value("queued", 0) << " queued";
      if (p.contains("oldest")) std::cout << " (oldest " << str(p, "oldest") << ")";
      std::cout << ", " << p.value("delivered_total", 0) << " delivered, "
                << p.value("failed_total", 0) << " refused, " << p.value("dropped_total", 0)
                << " dropped since start\n";
    }
  }
  std::cout << "\nCHECK" << std::string(20, ' ') << "PROBE    STATE     SEV   LAST\n";
  for (const auto& c : r["checks"]) {
    std::string state = str(c, "state");
    if (c.value("maintenance", false)) state += "*";
    std::cout << col(str(c, "name"), 25) << col(str(c, "probe"), 9) << col(state, 10)
              << col(str(c, "severity").empty() ? "-" : str(c, "severity"), 6) << str(c, "summary")
              << "\n";
  }
  if (!incidents.empty()) {
    std::cout << "\nINCIDENT" << std::string(30, ' ') << "SEV   STATE       AGE      TITLE\n";
    for (const auto& i : incidents) {
      std::cout << col(str(i, "id"), 38) << col(str(i, "severity"), 6) << col(str(i, "state"), 12)
                << col(age(str(i, "detected"), now), 9) << marked_title(i) << "\n";
    }
  }
  return incidents.empty() ? 0 : 1;
}

int cmd_incident_show(const Args& a) {
  if (a.positional.size() != 2 || a.positional[0] != "show") {
    return usage_error("usage: vigil incident show ID");
  }
  auto inc = fetch_incident(a, a.positional[1]);
  if (!inc) {
    std::cerr << "vigil: " << inc.error().message << "\n";
    return 1;
  }
  if (a.json) {
    nlohmann::json events = nlohmann::json::array();
    for (const TimelineEvent& e : inc->timeline) {
      events.push_back(nlohmann::json::parse(to_json_line(e), nullptr, false));
    }
    std::cout << json_out(nlohmann::json{{"id", inc->id}, {"timeline", events}}) << "\n";
    return 0;
  }
  std::cout << format_incident(*inc);
  return 0;
}

int cmd_postmortem(const Args& a) {
  if (a.positional.size() != 1) return usage_error("usage: vigil postmortem ID");
  auto inc = fetch_incident(a, a.positional[0]);
  if (!inc) {
    std::cerr << "vigil: " << inc.error().message << "\n";
    return 1;
  }
  std::cout << render_postmortem(*inc);
  return 0;
}

int cmd_incidents(const Args& a) {
  std::optional<Duration> since;
  if (!a.since.empty()) {
    auto d = parse_duration(a.since);
    if (!d) return usage_error("--since: " + d.error().message);
    since = *d;
  }
  const Endpoints e = endpoints(a);
  nlohmann::json list = nlohmann::json::array();
  auto reply = control_request(e.socket, {{"cmd", "incidents"}});
  if (reply && reply->value("ok", false)) {
    list = (*reply)["incidents"];
  } else {
    // The agent is not running: read the timelines ourselves.
    // The agent's index gives the summary of every resolved timeline it still describes.
    const IncidentStore store(e.state_dir + "/incidents");
    IncidentIndex index(e.state_dir + "/incident-index.jsonl");
    (void)index.load();  // unreadable: every timeline is read
    for (const std::string& id : store.list()) {
      if (const auto stamp = store.stamp(id)) {
        if (const IncidentIndex::Entry* entry = index.find(id, *stamp)) {
          list.push_back(entry->summary);
          continue;
        }
      }
      auto loaded = store.load(id);
      if (!loaded) continue;
      list.push_back(incident_summary_json(loaded->incident));
    }
    if (!reply) std::cerr << "vigil: " << reply.error().message << "; read " << store.dir() << "\n";
  }
  const TimePoint now = Clock::now();
  nlohmann::json shown = nlohmann::json::array();
  for (const auto& i : list) {
    const bool open = str(i, "state") != "resolved";
    if (a.open_only && !open) continue;
    if (since && !open) {  // an incident still open is news whenever it began
      const auto detected = parse_time(str(i, "detected"));
      if (!detected || now - *detected > *since) continue;
    }
    shown.push_back(i);
  }
  if (a.json) {
    std::cout << json_out(shown) << "\n";
    return 0;
  }
  if (shown.empty()) {
    std::cout << "no incidents" << (a.open_only ? " open" : "") << "\n";
    return 0;
  }
  std::cout << format_incidents_table(shown, now);
  return 0;
}

int cmd_maintain(const Args& a) {
  if (a.for_.empty()) return usage_error("usage: vigil maintain --for 30m [CHECK...]");
  auto d = parse_duration(a.for_);
  if (!d || d->count() <= 0) {
    return usage_error("--for: " +
                       (d ? std::string("must be greater than zero") : d.error().message));
  }
  nlohmann::json req = {
      {"cmd", "maintain"}, {"for_ms", d->count()}, {"checks", a.positional}, {"reason", a.reason}};
  auto reply = control_request(endpoints(a).socket, req);
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    return 1;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "vigil: " << str(*reply, "error") << "\n";
    return 1;
  }
  std::cout << "maintenance window for "
            << (a.positional.empty() ? std::string("all checks")
                                     : std::to_string(a.positional.size()) + " check(s)")
            << " until " << str(*reply, "until")
            << ": observing and recording; no pages, no mitigations\n";
  return 0;
}

int cmd_ack(const Args& a) {
  if (a.positional.size() != 1) return usage_error("usage: vigil ack ID");
  auto reply = control_request(endpoints(a).socket, {{"cmd", "ack"}, {"id", a.positional[0]}});
  if (!reply) {
    std::cerr << "vigil: " << reply.error().message << "\n";
    return 1;
  }
  if (!reply->value("ok", false)) {
    std::cerr << "vigil: " << str(*reply, "error") << "\n";
    return 1;
  }
  std::cout << "acknowledged " << a.positional[0] << "\n";
  return 0;
}

}  // namespace vigil::cli
