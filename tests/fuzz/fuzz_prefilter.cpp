// The journal scanner's literal prefilter (required_prefix / required_literal in
// probes/journal.cpp) on any pattern: a prefilter that is wrong loses matches silently (a brute
// force nobody counts), so it must never reject a line the regex matches.
//
// Input: the first line is an operator's pattern, compiled as parse_config compiles patterns
// (agent/config/journal.cpp: Latin-1, 8 MiB, quiet); every further line is a journal message. For
// each message, JournalScanner (with and without a capture key) must agree with a plain RE2 match,
// and every match must start with required_prefix and contain required_literal.
#include <re2/re2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "agent/config/config.h"
#include "agent/load_config.h"
#include "probes/journal.h"
#include "tests/fuzz/fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vigil;
  const std::string_view text = fuzz::as_text(data, size);
  const std::size_t first = std::min(text.find('\n'), text.size());
  const std::string source(text.substr(0, first));
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(8 << 20);
  opts.set_encoding(re2::RE2::Options::EncodingLatin1);
  auto re = std::make_shared<const re2::RE2>(source, opts);
  if (!re->ok()) return 0;

  const std::string prefix = required_prefix(source);
  const std::string literal = required_literal(source);
  if (!prefix.empty()) {
    // What the scanner relies on: the prefix is one of the required runs, so never the longer.
    FUZZ_CHECK(literal.size() >= prefix.size());
  }

  JournalSettings plain;
  plain.units = {"fuzz.service"};
  plain.patterns = {JournalPattern{source, re}};
  plain.count = 2;
  JournalSettings keyed = plain;
  const auto& groups = re->NamedCapturingGroups();
  if (!groups.empty()) keyed.key = groups.begin()->first;
  JournalScanner by_line(plain);
  JournalScanner by_key(keyed);

  TimePoint at = TimePoint(std::chrono::sys_days(std::chrono::year{2026} / 1 / 1));
  std::size_t pos = first + 1;
  while (pos <= text.size()) {
    const std::size_t nl = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    at += std::chrono::seconds(1);
    const bool hit = re2::RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *re);
    if (hit) {
      FUZZ_CHECK(line.substr(0, prefix.size()) == prefix);
      FUZZ_CHECK(line.find(literal) != std::string_view::npos);
    }
    const JournalScanner::Result a = by_line.scan(line, at);
    FUZZ_CHECK(a.matched == hit);
    const JournalScanner::Result b = by_key.scan(line, at);
    FUZZ_CHECK((b.matched || !b.rejected.empty()) == hit);
  }
  return 0;
}
