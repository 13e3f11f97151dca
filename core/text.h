// Small text helpers that parsers across Reef share: trimming, hex digits,
// ASCII case. Pure functions; only set_text() allocates (as the string
// it fills needs).
//
// Thread rules: none.
#pragma once

#include <string>
#include <string_view>

namespace reef::text {

/// Whether `c` is a space or a horizontal tab (HTTP's optional whitespace).
constexpr bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

/// `s` without leading and trailing spaces and tabs.
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

/// `s` without leading and trailing spaces, tabs, CRs and LFs (a line of a
/// text file, whatever its line ends).
constexpr std::string_view trim_line(std::string_view s) noexcept {
  auto space = [](char c) { return is_blank(c) || c == '\r' || c == '\n'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

/// The value of a hex digit (either case), or -1.
constexpr int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// ASCII lower case (other bytes as they are).
constexpr char to_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

/// Whether `a` and `b` are equal ignoring ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

/// `s` = `v`, reusing `s`'s memory: for the short strings of a parser, an
/// append to an emptied string costs half of assign()'s general path.
/// REQUIRES: `v` does not view `s`'s own characters.
inline void set_text(std::string& s, std::string_view v) {
  s.clear();
  s.append(v.data(), v.size());
}

}  // namespace reef::text
