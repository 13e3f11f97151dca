#include "core/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace reef {
namespace {

struct point {
  int x, y;
  friend std::ostream& operator<<(std::ostream& os, const point& p) { return os << '(' << p.x << ',' << p.y << ')'; }
};

TEST(format, placeholders_take_the_arguments_in_order) {
  EXPECT_EQ(format("a {} b {} c", 1, "two"), "a 1 b two c");
  EXPECT_EQ(format("{}", 2.5), "2.5");
  EXPECT_EQ(format("no args"), "no args");
  EXPECT_EQ(format("{}{}", std::string("x"), std::string_view("y")), "xy");
  EXPECT_EQ(format("{} {} {}", true, 'c', point{1, 2}), "true c (1,2)");
  const char* none = nullptr;
  EXPECT_EQ(format("{}", none), "(null)");
  EXPECT_EQ(format("{{}} {{{}}}", 7), "{} {7}") << "doubled braces are braces";
}

TEST(format, integer_specs) {
  EXPECT_EQ(format("{:x}", 255), "ff");
  EXPECT_EQ(format("{:X}", 255), "FF");
  EXPECT_EQ(format("{:#x}", 255), "0xff");
  EXPECT_EQ(format("{:#06x}", 255), "0x00ff");
  EXPECT_EQ(format("{:08x}", 0xdeadbeefu), "deadbeef");
  EXPECT_EQ(format("{:o}", 8), "10");
  EXPECT_EQ(format("{:#o}", 8), "010");
  EXPECT_EQ(format("{:b}", 5), "101");
  EXPECT_EQ(format("{:#b}", 5), "0b101");
  EXPECT_EQ(format("{:d}", -42), "-42");
  EXPECT_EQ(format("{:+d}", 42), "+42");
  EXPECT_EQ(format("{: d}", 42), " 42");
  EXPECT_EQ(format("{:05}", -42), "-0042");
  EXPECT_EQ(format("{:5}", 42), "   42") << "numbers align right";
  EXPECT_EQ(format("{:<5}|", 42), "42   |");
  EXPECT_EQ(format("{:*^7}", 42), "**42***");
  EXPECT_EQ(format("{:c}", 65), "A");
  EXPECT_EQ(format("{}", std::numeric_limits<std::int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(format("{:x}", std::numeric_limits<std::uint64_t>::max()), "ffffffffffffffff");
  EXPECT_EQ(format("{:x}", 'A'), "41") << "a character with an integer type prints as a number";
}

TEST(format, floating_specs) {
  EXPECT_EQ(format("{:.2f}", 3.14159), "3.14");
  EXPECT_EQ(format("{:.0f}", 2.5), "2");
  EXPECT_EQ(format("{:8.3f}|", 3.14159), "   3.142|");
  EXPECT_EQ(format("{:08.3f}", -3.14159), "-003.142");
  EXPECT_EQ(format("{:e}", 1234.5), "1.234500e+03");
  EXPECT_EQ(format("{:.1E}", 1234.5), "1.2E+03");
  EXPECT_EQ(format("{:g}", 0.0001), "0.0001");
  EXPECT_EQ(format("{:.3}", 3.14159), "3.14") << "a precision alone: general form";
  EXPECT_EQ(format("{:+.1f}", 1.0), "+1.0");
  EXPECT_EQ(format("{:f}", std::numeric_limits<double>::infinity()), "inf");
  EXPECT_EQ(format("{:05f}", -std::numeric_limits<double>::infinity()), " -inf") << "no zeros into inf";
}

TEST(format, string_and_other_specs) {
  EXPECT_EQ(format("{:>6}|", "ab"), "    ab|");
  EXPECT_EQ(format("{:6}|", "ab"), "ab    |") << "strings align left";
  EXPECT_EQ(format("{:^6}|", "ab"), "  ab  |");
  EXPECT_EQ(format("{:.3}", "abcdef"), "abc") << "a precision cuts a string";
  EXPECT_EQ(format("{:s}", true), "true");
  EXPECT_EQ(format("{:>8}", point{1, 2}), "   (1,2)");
  int x = 0;
  std::string p = format("{:p}", static_cast<const void*>(&x));
  EXPECT_EQ(p.substr(0, 2), "0x");
}

// What does not fit its arguments fails to compile; these are the checks
// the compiler runs (format("{:x}", "text") would not build).
template <typename... A>
constexpr bool accepted(std::string_view text) {
  return core_internal::check_format_for<A...>(text) == nullptr;
}

TEST(format, mismatched_formats_are_refused_when_compiled) {
  static_assert(accepted<int, const char*>("{} {}"));
  static_assert(accepted<int>("{:#010x}"));
  static_assert(accepted<double>("{:+012.3e}"));
  static_assert(accepted<>("{{}}"));
  static_assert(!accepted<int>("{} {}"), "a placeholder without an argument");
  static_assert(!accepted<int, int>("{}"), "an argument without a placeholder");
  static_assert(!accepted<const char*>("{:x}"), "a string is not hex");
  static_assert(!accepted<int>("{:.2}"), "an integer has no precision");
  static_assert(!accepted<double>("{:x}"), "a double is not hex");
  static_assert(!accepted<point>("{:+}"), "operator<< values take width and alignment only");
  static_assert(!accepted<int>("{0}"), "no positions");
  static_assert(!accepted<int>("{:q}"), "no such type");
  static_assert(!accepted<int>("{"), "a lone brace");
  static_assert(!accepted<>("}"), "a lone closing brace");
  static_assert(!accepted<int>("{:5.}"), "a point without a precision");
  static_assert(!accepted<bool>("{:d}"), "a bool is not a number here");
  SUCCEED();
}

}  // namespace
}  // namespace reef
