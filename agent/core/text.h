// Splitting text into views of the caller's string: what system tools print (ufw,
// /proc/net/*) and vigil's own JSON-lines logs.
#pragma once

#include <string_view>
#include <vector>

namespace vigil {

// The lines of `text`, without their '\n' (and a '\r' before it); no empty last line for a
// text that ends in '\n'.
std::vector<std::string_view> split_lines(std::string_view text);

// The words of `s`, separated by runs of spaces and tabs.
std::vector<std::string_view> split_words(std::string_view s);

// One record of a JSON-lines log (vigil's timelines, the outbox).
struct LogLine {
  int number = 0;         // from 1, as an editor counts the file's lines
  std::string_view text;  // without its '\n'
  bool torn = false;      // the last line, without its '\n' (a crash mid-write)
};
// The lines of a JSON-lines log that are not blank (spaces, tabs, '\r' only).
std::vector<LogLine> log_lines(std::string_view data);

}  // namespace vigil
