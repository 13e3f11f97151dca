// Proves //third_party/absl compiles and links: a flag is parsed from an
// argv and a string is formatted.
#include <absl/flags/flag.h>
#include <absl/flags/parse.h>
#include <absl/strings/str_format.h>

#include <gtest/gtest.h>

ABSL_FLAG(int, reef_link_test_value, 1, "a flag for the link test");

namespace {

TEST(absl, flag_parses_and_string_formats) {
  char program[] = "absl_link_test";
  char flag[] = "--reef_link_test_value=7";
  char* argv[] = {program, flag, nullptr};
  absl::ParseCommandLine(2, argv);
  EXPECT_EQ(absl::GetFlag(FLAGS_reef_link_test_value), 7);
  EXPECT_EQ(absl::StrFormat("%d-%s", 3, "x"), "3-x");
}

}  // namespace
