#include "agent/core/text.h"

#include <algorithm>

namespace vigil {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

std::vector<LogLine> log_lines(std::string_view data) {
  std::vector<LogLine> out;
  int number = 0;
  std::size_t pos = 0;
  while (pos < data.size()) {
    ++number;
    const std::size_t nl = data.find('\n', pos);
    const bool torn = nl == std::string_view::npos;
    const std::size_t end = torn ? data.size() : nl;
    const std::string_view line = data.substr(pos, end - pos);
    pos = torn ? data.size() : nl + 1;
    const bool blank = std::all_of(line.begin(), line.end(),
                                   [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
    if (!blank) out.push_back(LogLine{number, line, torn});
  }
  return out;
}

}  // namespace vigil
