#include "agent/core/terminal.h"

#include <cstdio>

namespace vigil {

namespace {

void hex_byte(std::string& out, unsigned char u) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "\\x%02x", u);
  out += hex;
}

// The length of the well-formed UTF-8 sequence at `s` (RFC 3629: no overlongs, no surrogates,
// nothing above U+10FFFF), and its code point; 0 when it is not one.
std::size_t utf8_sequence(std::string_view s, char32_t& cp) {
  const auto b = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  char32_t min = 0;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
    min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
    min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

std::string visible(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u < 0x80) {
      if (u == '\n') {
        out += "\\n";
      } else if (u == '\t') {
        out += "\\t";
      } else if (u == '\r') {
        out += "\\r";
      } else if (u < 0x20 || u == 0x7f) {
        hex_byte(out, u);
      } else {
        out += static_cast<char>(u);
      }
      ++i;
      continue;
    }
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(text.substr(i), cp);
    if (n == 0) {
      hex_byte(out, u);
      ++i;
    } else if (cp <= 0x9f) {
      hex_byte(out, static_cast<unsigned char>(cp));  // a C1 control, shown as its 8-bit code
      i += n;
    } else if ((cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069)) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u{%04x}", static_cast<unsigned>(cp));
      out += buf;
      i += n;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace vigil
