// The human renderings of an incident: the postmortem draft, `vigil incident show` and the
// one-line listing. Incidents are built through a real IncidentBook from findings with fixed
// times (no clock, no sleeping), so these tests also pin what the book records.
//
// Golden file: the postmortem of the main scenario is compared byte for byte with
// tests/unit/golden/postmortem_app_503.md. After an intended change to the renderer (or to the
// incident book's events), regenerate it and review the diff like code:
//
//   VIGIL_UPDATE_GOLDEN=1 ./build/tests/unit/vigil_unit_tests --gtest_filter='Postmortem.Golden*'
//   git diff tests/unit/golden/
#include "agent/incidents/postmortem.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "agent/incidents/incident.h"
#include "agent/incidents/timeline.h"

#ifndef VIGIL_GOLDEN_DIR
#error "VIGIL_GOLDEN_DIR must name tests/unit/golden (set in tests/unit/CMakeLists.txt)"
#endif

namespace vigil {
namespace {

using namespace std::chrono_literals;

// 2026-11-27 00:00:00 UTC plus an offset: the night of the scenario.
TimePoint at(Duration since_midnight) {
  return TimePoint{std::chrono::sys_days{std::chrono::year{2026} / 11 / 27}} + since_midnight;
}

// The scenario's moments.
const TimePoint kFirstFailure = at(1h + 42min + 7s + 123ms);   // the first attempt that got a 503
const TimePoint kHttpFiring = at(1h + 42min + 7s + 530ms);     // after two confirmation re-probes
const TimePoint kOwnerEvidence = at(1h + 42min + 7s + 548ms);  // the owner unit's status and lines
const TimePoint kJournalFiring = at(1h + 42min + 7s + 861ms);
const TimePoint kHttpRecovered = at(1h + 54min + 20s + 530ms);  // 2 healthy results in a row
const TimePoint kJournalRecovered = at(1h + 55min + 2s + 4ms);  // no match within the window

CheckConfig HttpCheck() {
  CheckConfig c;
  c.name = "app-http";
  c.probe = "http";
  c.service = "app";
  c.team = "payments";
  c.owner_unit = "app.service";
  HttpSettings h;
  h.url = "https://app.example.com/healthz";
  c.settings = h;
  return c;
}

CheckConfig LogCheck() {
  CheckConfig c;
  c.name = "app-log";
  c.probe = "journal";
  c.service = "app";
  JournalSettings j;
  j.units = {"app.service"};
  c.settings = j;
  return c;
}

Finding Http503() {
  Finding f;
  f.check = "app-http";
  f.kind = Finding::Kind::firing;
  f.severity = Severity::sev1;
  f.at = kHttpFiring;
  f.since = kFirstFailure;
  Observation& o = f.observation;
  o.check = "app-http";
  o.at = kHttpFiring;
  o.failure = FailureKind::http_5xx;
  o.summary =
      "HTTP 503 in 12ms (expected 200-399): \"connection pool exhausted\" (confirmed by 3 "
      "attempts)";
  o.latency = 12ms;
  o.http.status = 503;
  o.http.total = 12ms;
  o.http.connect = 1ms;
  o.http.first_byte = 11ms;
  o.http.body_head = "connection pool exhausted";
  o.http.attempts = 3;
  f.reason = o.summary;
  return f;
}

Finding PoolExhausted() {
  Finding f;
  f.check = "app-log";
  f.kind = Finding::Kind::firing;
  f.severity = Severity::sev2;
  f.at = kJournalFiring;
  f.since = kJournalFiring;
  Observation& o = f.observation;
  o.check = "app-log";
  o.at = kJournalFiring;
  o.failure = FailureKind::journal_match;
  o.summary = "journal: ERROR connection pool exhausted (max=20)";
  o.evidence = {"ERROR connection pool exhausted (max=20)"};
  f.reason = o.summary;
  return f;
}

Finding Recovered(const std::string& check, Severity last, TimePoint since, TimePoint when,
                  const std::string& summary, const std::string& reason) {
  Finding f;
  f.check = check;
  f.kind = Finding::Kind::recovered;
  f.severity = last;
  f.at = when;
  f.since = since;
  f.observation.check = check;
  f.observation.at = when;
  f.observation.summary = summary;
  if (check == "app-http") {
    f.observation.http.status = 200;
    f.observation.http.total = 9ms;
    f.observation.http.attempts = 1;
  }
  f.reason = reason;
  return f;
}

// The id of the incident a batch of changes belongs to.
std::string id_of(const std::vector<IncidentBook::Change>& changes) {
  return changes.empty() ? std::string() : changes.front().incident;
}

// The app answers 503 because its connection pool is exhausted; the journal says so; both
// recover twelve minutes later without any mitigation.
struct Scenario {
  IncidentBook book{TriageSettings{"web-1"}};
  std::string id;

  // Up to (and including) the journal finding: the incident is open.
  void fail() {
    id = id_of(book.on_finding(HttpCheck(), Http503()));
    book.add_evidence(HttpCheck(), "", "owner unit app.service",
                      {"app.service: active (running) since 2026-11-26 23:10:02 UTC, NRestarts=0",
                       "WARN db: waiting for a free connection (31 waiters)"},
                      kOwnerEvidence);
    book.on_finding(LogCheck(), PoolExhausted());
  }
  void recover() {
    book.on_finding(HttpCheck(),
                    Recovered("app-http", Severity::sev1, kFirstFailure, kHttpRecovered,
                              "HTTP 200 in 9ms", "HTTP 200 in 9ms (2 good results in a row)"));
    book.on_finding(LogCheck(),
                    Recovered("app-log", Severity::sev2, kJournalFiring, kJournalRecovered,
                              "no match within the last 10m", "no match within the last 10m"));
  }
  const Incident& incident() const {
    const Incident* inc = book.find(id);
    EXPECT_NE(inc, nullptr) << id;
    return *inc;
  }
};

Incident ResolvedIncident() {
  Scenario s;
  s.fail();
  s.recover();
  return s.incident();
}

Incident OpenIncident() {
  Scenario s;
  s.fail();
  return s.incident();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The lines of `text` between the heading `## name` and the next "## " heading.
std::string section(const std::string& text, const std::string& name) {
  const std::string heading = "\n## " + name + "\n";
  const std::size_t start = text.find(heading);
  if (start == std::string::npos) return {};
  const std::size_t end = text.find("\n## ", start + heading.size());
  return text.substr(start + 1, end == std::string::npos ? std::string::npos : end - start);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Cells a GFM table row splits into: '|' not preceded by a backslash.
int unescaped_pipes(const std::string& row) {
  int n = 0;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (row[i] == '\\') {
      ++i;
    } else if (row[i] == '|') {
      ++n;
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// render_postmortem

TEST(Postmortem, GoldenAppHttp503) {
  const std::string path = std::string(VIGIL_GOLDEN_DIR) + "/postmortem_app_503.md";
  const std::string actual = render_postmortem(ResolvedIncident());
  const char* update = std::getenv("VIGIL_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
    GTEST_SKIP() << "rewrote " << path << ": review it with git diff";
  }
  const std::string expected = read_file(path);
  ASSERT_FALSE(expected.empty()) << path << " is missing: run with VIGIL_UPDATE_GOLDEN=1";
  EXPECT_EQ(actual, expected) << "the postmortem changed; if intended, regenerate " << path
                              << " with VIGIL_UPDATE_GOLDEN=1 and review the diff";
}

TEST(Postmortem, HoldsTheFactsThatMatter) {
  const std::string md = render_postmortem(ResolvedIncident());
  EXPECT_EQ(md.rfind("# Postmortem 20261127-014207-app: app: HTTP 503", 0), 0u);
  // The 503 and the journal line, both as evidence at detection.
  const std::string detection = section(md, "Detection");
  EXPECT_NE(detection.find("HTTP 503 in 12ms"), std::string::npos) << detection;
  EXPECT_NE(detection.find("ERROR connection pool exhausted (max=20)"), std::string::npos)
      << detection;
  // The first failing observation, the declaration and the time between, to the millisecond.
  EXPECT_NE(detection.find("2026-11-27 01:42:07.123 UTC"), std::string::npos) << detection;
  EXPECT_NE(detection.find("2026-11-27 01:42:07.530 UTC"), std::string::npos) << detection;
  EXPECT_NE(detection.find("407ms"), std::string::npos) << detection;
  EXPECT_NE(md.find("## Root cause"), std::string::npos);
  EXPECT_NE(md.find("_To be written by the responders._"), std::string::npos);
  EXPECT_NE(md.find("| Action | Owner | Due | Ticket |"), std::string::npos);
  for (const char* heading : {"Summary", "Impact", "Detection", "Timeline", "Mitigations",
                              "Metrics", "Root cause", "Action items", "Lessons learned"}) {
    EXPECT_FALSE(section(md, heading).empty()) << heading;
  }
  // Resolved: not a draft of an ongoing incident; MTTR is 01:42:07.123 -> 01:55:02.004.
  EXPECT_EQ(md.find("Ongoing incident"), std::string::npos);
  EXPECT_NE(section(md, "Metrics").find("| Time to resolve | 12m54s |"), std::string::npos);
}

TEST(Postmortem, HttpChecksComeFirstInTheImpact) {
  const std::string impact = section(render_postmortem(ResolvedIncident()), "Impact");
  const std::size_t http = impact.find("`app-http` (HTTP)");
  const std::size_t log = impact.find("`app-log` (journal)");
  ASSERT_NE(http, std::string::npos) << impact;
  ASSERT_NE(log, std::string::npos) << impact;
  EXPECT_LT(http, log);
}

TEST(Postmortem, TimelineHasOneRowPerEvent) {
  const Incident inc = ResolvedIncident();
  const std::string timeline = section(render_postmortem(inc), "Timeline");
  int rows = 0;
  for (const std::string& line : lines_of(timeline)) {
    if (line.rfind("| 2026-", 0) == 0) ++rows;
  }
  EXPECT_EQ(rows, static_cast<int>(inc.timeline.size())) << timeline;
}

TEST(Postmortem, TimelineEscapesPipesAndNewlines) {
  Scenario s;
  s.fail();
  TimelineEvent note;
  note.at = kJournalFiring + 1s;
  note.type = TimelineEvent::Type::note;
  note.text = "grep ERROR | wc -l\nsaid 31\r\nthen <html><body>503</body></html> `x`";
  ASSERT_FALSE(s.book.record(s.id, note).empty());
  s.book.add_evidence(LogCheck(), "", "journal lines", {"a|b", "c\nd", "e\\|f"},
                      kJournalFiring + 2s);
  const std::string timeline = section(render_postmortem(s.incident()), "Timeline");
  EXPECT_NE(timeline.find("grep ERROR \\| wc -l<br>said 31<br>then &lt;html>&lt;body>503"),
            std::string::npos)
      << timeline;
  EXPECT_NE(timeline.find("journal lines<br>a\\|b<br>c<br>d<br>e\\\\\\|f"), std::string::npos)
      << timeline;
  // Every row of the table, header included, still has exactly three cells.
  int rows = 0;
  for (const std::string& line : lines_of(timeline)) {
    if (line.empty() || line.front() != '|') continue;
    ++rows;
    EXPECT_EQ(unescaped_pipes(line), 4) << line;
  }
  EXPECT_EQ(rows, static_cast<int>(s.incident().timeline.size()) + 2);  // + header, separator
}

TEST(Postmortem, EvidenceCannotCloseTheFencedBlock) {
  Scenario s;
  s.fail();
  s.book.add_evidence(LogCheck(), "", "journal lines", {"```", "pwned ```` here"},
                      kJournalFiring + 1s);
  const std::string detection = section(render_postmortem(s.incident()), "Detection");
  EXPECT_NE(detection.find("\n`````text\n"), std::string::npos) << detection;
}

TEST(Postmortem, OpenIncidentIsADraftOfAnOngoingIncident) {
  const std::string md = render_postmortem(OpenIncident());
  const std::size_t ongoing = md.find("**Ongoing incident.**");
  ASSERT_NE(ongoing, std::string::npos) << md;
  EXPECT_LT(ongoing, md.find("## Summary"));
  EXPECT_NE(md.find("still open"), std::string::npos);
  EXPECT_NE(md.find("| Time to resolve | still open |"), std::string::npos);
  EXPECT_NE(md.find("→ ongoing"), std::string::npos);
}

TEST(Postmortem, NoMitigationSaysSo) {
  const std::string md = render_postmortem(ResolvedIncident());
  EXPECT_NE(section(md, "Mitigations").find("No automatic mitigation was run."), std::string::npos);
  EXPECT_NE(md.find("| Time to mitigate | no mitigation |"), std::string::npos);
}

TEST(Postmortem, MitigationsAreListedWithTheirOutcome) {
  Scenario s;
  s.fail();
  TimelineEvent m;
  m.at = kJournalFiring + 3s;
  m.type = TimelineEvent::Type::mitigation;
  m.text = "restarted by vigil (ladder step 1)";
  m.fields = {{"action", "restart"}, {"target", "app.service"}, {"outcome", "succeeded"}};
  ASSERT_FALSE(s.book.record(s.id, m).empty());
  s.recover();
  const std::string md = render_postmortem(s.incident());
  const std::string mitigations = section(md, "Mitigations");
  EXPECT_EQ(mitigations.find("No automatic mitigation"), std::string::npos) << mitigations;
  EXPECT_NE(mitigations.find("`restart` of `app.service`: **succeeded**"), std::string::npos)
      << mitigations;
  // 01:42:07.123 -> 01:42:10.861.
  EXPECT_NE(md.find("| Time to mitigate | 3.738s |"), std::string::npos) << md;
}

// ---------------------------------------------------------------------------------------------
// format_incident

TEST(FormatIncident, ShowsHeaderMembersEvidenceAndTimeline) {
  const Incident inc = ResolvedIncident();
  const std::string text = format_incident(inc);
  for (const char* want :
       {"Incident 20261127-014207-app\n", "SEV2 when resolved, SEV1 at peak", "payments", "web-1",
        "2026-11-27 01:42:07.123 UTC", "(MTTD 407ms)", "(MTTR 12m54s)", "\nMembers\n",
        "\nEvidence\n", "    ERROR connection pool exhausted (max=20)\n",
        "    WARN db: waiting for a free connection (31 waiters)\n", "\nTimeline\n"}) {
    EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }
  // Members: each with its state, severity and failure.
  const std::string members = text.substr(text.find("\nMembers\n"));
  EXPECT_NE(members.find("app-http  recovered"), std::string::npos) << members;
  EXPECT_NE(members.find("SEV1  http_5xx"), std::string::npos) << members;
  EXPECT_NE(members.find("SEV2  match"), std::string::npos) << members;
  // Timeline: one line per event.
  const std::string timeline = text.substr(text.find("\nTimeline\n") + 10);
  EXPECT_EQ(lines_of(timeline).size(), inc.timeline.size()) << timeline;
}

TEST(FormatIncident, OpenIncidentHasNoResolution) {
  const std::string text = format_incident(OpenIncident());
  EXPECT_NE(text.find("resolved   -  (still open)"), std::string::npos) << text;
  EXPECT_NE(text.find("firing"), std::string::npos) << text;
}

TEST(FormatIncident, ControlCharactersNeverReachTheTerminal) {
  Scenario s;
  s.fail();
  s.book.add_evidence(LogCheck(), "", "journal lines", {"\x1b[31mERROR\x1b[0m red\tand\nmore"},
                      kJournalFiring + 1s);
  const std::string text = format_incident(s.incident());
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  EXPECT_NE(text.find("\\x1b[31mERROR\\x1b[0m red\\tand\\nmore"), std::string::npos) << text;
}

// ---------------------------------------------------------------------------------------------
// format_incidents_table (`vigil incidents`), from the summaries the agent and its index give

TEST(FormatIncidentsTable, FixedColumnsOpenAndResolved) {
  Incident open = OpenIncident();
  open.title = "app: HTTP 503";
  Incident other = open;
  other.id = "20261127-014207-db";
  other.state = IncidentState::mitigating;
  other.title = "db: connection refused";
  const nlohmann::json list = {incident_summary_json(open),
                               incident_summary_json(ResolvedIncident()),
                               incident_summary_json(other)};
  const std::string table = format_incidents_table(list, open.detected + 12min + 30s);
  std::vector<std::string> lines;
  for (std::size_t at = 0, end; (end = table.find('\n', at)) != std::string::npos; at = end + 1) {
    lines.push_back(table.substr(at, end - at));
  }
  ASSERT_EQ(lines.size(), 4u) << table;
  // id at 0, severity at 38, peak at 44, state at 50, detected at 62, lasted at 87, then the
  // title (a wider cell pushes it right by its excess and one space).
  EXPECT_EQ(lines[0], "INCIDENT" + std::string(30, ' ') +
                          "SEV   PEAK  STATE       DETECTED                 LASTED   TITLE");
  EXPECT_EQ(lines[1],
            "20261127-014207-app" + std::string(19, ' ') +
                "SEV1  SEV1  triaged     2026-11-27T01:42:07      open 12m30s app: HTTP 503");
  EXPECT_EQ(lines[3], "20261127-014207-db" + std::string(20, ' ') +
                          "SEV1  SEV1  mitigating  2026-11-27T01:42:07      open 12m30s "
                          "db: connection refused");
  // Resolved: the severity now, the peak, and how long it lasted (started to resolved).
  EXPECT_EQ(lines[2].substr(38, 49), "SEV2  SEV1  resolved    2026-11-27T01:42:07      ")
      << lines[2];
  EXPECT_EQ(lines[2].substr(87, 12), "12m54s881ms ") << lines[2];
}

// What the responders must see at a glance (docs/PAGING.md: "nobody got a page"): a window
// held its pages, or its member flaps.
TEST(FormatIncidentsTable, MaintenanceAndFlappingAreMarked) {
  Incident inc = OpenIncident();
  inc.title = "app: HTTP 503 in 12ms";
  inc.maintenance = true;
  nlohmann::json summary = incident_summary_json(inc);
  EXPECT_EQ(summary["flapping"], false);
  EXPECT_EQ(marked_title(summary), "[maintenance] app: HTTP 503 in 12ms");
  summary["flapping"] = true;
  EXPECT_EQ(marked_title(summary), "[maintenance] [flapping] app: HTTP 503 in 12ms");
  EXPECT_NE(format_incidents_table(nlohmann::json::array({summary}), inc.detected)
                .find("[maintenance] [flapping] app: HTTP 503"),
            std::string::npos);
  // An index entry written before the field existed: no mark, no error.
  summary.erase("flapping");
  summary.erase("maintenance");
  EXPECT_EQ(marked_title(summary), "app: HTTP 503 in 12ms");
}

// The summaries come over the control socket or from files: text is made visible, and a field
// of the wrong type (a hand-edited index) shows as empty or "?", never as an exception.
TEST(FormatIncidentsTable, HostileOrBrokenSummaries) {
  nlohmann::json summary = incident_summary_json(OpenIncident());
  summary["title"] = "\x1b[31mred\x1b[0m\nline";
  summary["detected"] = 42;
  summary["maintenance"] = "yes";
  const std::string table =
      format_incidents_table(nlohmann::json::array({summary, "not an object", 7}), TimePoint{});
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_NE(table.find("\\x1b[31mred\\x1b[0m\\nline"), std::string::npos) << table;
  EXPECT_NE(table.find(" ? "), std::string::npos) << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2) << "a header and one row: " << table;
  EXPECT_EQ(format_incidents_table(nlohmann::json::object(), TimePoint{}).find('\n'),
            table.find('\n'));
}

}  // namespace
}  // namespace vigil
