// Incident timelines (agent/incidents/timeline.h): the fuzz input is the content of one
// DIR/ID.jsonl file.
//  1. Each line through from_json_line: an event that parses survives to_json_line and back
//     unchanged, and is written as exactly one line.
//  2. The file through IncidentStore::load (written to a scratch directory, one file reused), then
//     what the CLI and the daemon do with a loaded incident: the summary JSON (`vigil
//     incidents`), format_incident (`vigil incident show`), format_incidents_table (`vigil
//     incidents`), the postmortem draft, the ladder state. Terminal output holds no control byte
//     but '\n'.
//  3. append() after a torn or garbage last line: the next load has exactly one more event and
//     the same skipped lines (no event is glued to a fragment).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/incidents/incident.h"
#include "agent/incidents/postmortem.h"
#include "agent/incidents/timeline.h"
#include "agent/mitigate/mitigation.h"
#include "tests/fuzz/fuzz_common.h"

namespace vigil {
namespace {

// What a terminal may receive: printable text, UTF-8, and newlines.
bool no_controls(std::string_view s, bool newlines) {
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == '\n' && newlines) continue;
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

void check_lines(std::string_view data) {
  std::size_t pos = 0;
  while (pos < data.size()) {
    const std::size_t nl = std::min(data.find('\n', pos), data.size());
    const std::string_view line = data.substr(pos, nl - pos);
    pos = nl + 1;
    const Result<TimelineEvent> e = from_json_line(line);
    if (!e) {
      FUZZ_CHECK(!e.error().message.empty());
      continue;
    }
    const std::string once = to_json_line(*e);
    FUZZ_CHECK(once.find('\n') == std::string::npos);
    const Result<TimelineEvent> back = from_json_line(once);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(to_json_line(*back) == once);
    FUZZ_CHECK(back->type == e->type);
    FUZZ_CHECK(back->fields == e->fields);
    FUZZ_CHECK(back->evidence == e->evidence);
  }
}

void use(const Incident& inc) {
  const nlohmann::json summary = incident_summary_json(inc);
  // `vigil incidents --json` (json_out in agent/cli.cpp).
  (void)summary.dump(2, ' ', true, nlohmann::json::error_handler_t::replace);
  (void)inc.time_to_resolve();
  (void)inc.time_to_mitigate();
  (void)inc.flapping();
  FUZZ_CHECK(no_controls(format_incident(inc), true));
  const std::string table = format_incidents_table(nlohmann::json::array({summary}), inc.detected);
  // Control characters are escaped, and a line feed in a title never forges a row: a header
  // and one row.
  FUZZ_CHECK(no_controls(table, true));
  FUZZ_CHECK(std::count(table.begin(), table.end(), '\n') == 2);
  (void)render_postmortem(inc);
  (void)ladder_state(inc);
}

}  // namespace
}  // namespace vigil

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const std::string_view text = fuzz::as_text(data, size);
  check_lines(text);

  static const std::string dir = fuzz::scratch_dir() + "/incidents";
  static IncidentStore store(dir);
  std::filesystem::create_directories(dir);
  const std::string id = "20260101-000000-fuzz";
  fuzz::write_file(dir + "/" + id + ".jsonl", text);
  const Result<IncidentStore::Loaded> loaded = store.load(id);
  if (!loaded) {
    FUZZ_CHECK(!loaded.error().message.empty());
    return 0;
  }
  FUZZ_CHECK(!loaded->incident.timeline.empty());
  FUZZ_CHECK(loaded->incident.timeline.front().type == TimelineEvent::Type::opened);
  FUZZ_CHECK(loaded->incident.id == id);
  FUZZ_CHECK(static_cast<std::size_t>(loaded->skipped) <= loaded->warnings.size());
  use(loaded->incident);

  TimelineEvent note;
  note.at = loaded->incident.detected;
  note.type = TimelineEvent::Type::note;
  note.text = "fuzz";
  const Result<bool> appended = store.append(id, note);
  FUZZ_CHECK(appended.has_value());
  const Result<IncidentStore::Loaded> again = store.load(id);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->incident.timeline.size() == loaded->incident.timeline.size() + 1);
  FUZZ_CHECK(again->skipped == loaded->skipped);
  FUZZ_CHECK(again->incident.timeline.back().text == "fuzz");
  return 0;
}
