// Splitting the text system tools print (ufw, /proc/net/*): views into the caller's string.
#pragma once

#include <string_view>
#include <vector>

namespace vigil {

// The lines of `text`, without their '\n' (and a '\r' before it); no empty last line for a
// text that ends in '\n'.
std::vector<std::string_view> split_lines(std::string_view text);

// The words of `s`, separated by runs of spaces and tabs.
std::vector<std::string_view> split_words(std::string_view s);

}  // namespace vigil
