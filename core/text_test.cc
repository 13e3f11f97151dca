// The shared text helpers, on the edge cases parsers feed them.
#include "core/text.h"

#include <gtest/gtest.h>

#include <string>

namespace reef::text {
namespace {

TEST(text, trim_takes_spaces_and_tabs_only) {
  EXPECT_EQ(trim(" \t a b \t "), "a b");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("\ra\n"), "\ra\n") << "line ends are not blanks";
  EXPECT_EQ(trim_line(" \r\na\t\r\n"), "a");
}

TEST(text, hex_digits_and_case) {
  EXPECT_EQ(hex_digit('0'), 0);
  EXPECT_EQ(hex_digit('9'), 9);
  EXPECT_EQ(hex_digit('a'), 10);
  EXPECT_EQ(hex_digit('F'), 15);
  for (char c : {'g', 'G', ' ', '/', ':', '@', '`', '\0'}) EXPECT_EQ(hex_digit(c), -1) << int(c);
  EXPECT_TRUE(iequals("Content-Length", "content-LENGTH"));
  EXPECT_FALSE(iequals("Host", "Hosts"));
  EXPECT_FALSE(iequals("[", "{")) << "only letters fold";
  EXPECT_EQ(to_lower('\xC4'), '\xC4') << "bytes past ASCII stay";
}

TEST(text, set_text_replaces_and_keeps_the_memory) {
  std::string s(100, 'x');
  const auto capacity = s.capacity();
  const char* data = s.data();
  set_text(s, "short");
  EXPECT_EQ(s, "short");
  EXPECT_EQ(s.capacity(), capacity);
  EXPECT_EQ(s.data(), data) << "no new allocation";
  set_text(s, "");
  EXPECT_TRUE(s.empty());
  const std::string longer(500, 'y');
  set_text(s, longer);
  EXPECT_EQ(s, longer);
}

}  // namespace
}  // namespace reef::text
