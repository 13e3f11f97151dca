#include "apps/memcached/options.h"

#include <gtest/gtest.h>

namespace reef::memcached {
namespace {

using args = std::vector<std::string>;

TEST(options, short_flags_become_long_ones) {
  EXPECT_EQ(translate_memcached_flags({"memcached", "-p", "11211", "-U", "0", "-l", "127.0.0.1", "-m", "64", "-c",
                                       "10", "-I", "2m", "-t", "2"}),
            (args{"memcached", "--port", "11211", "--udp-port", "0", "--listen", "127.0.0.1", "--memory-limit-mb",
                  "64", "--conn-limit", "10", "--max-item-size", "2m", "--smp", "2"}));
  EXPECT_EQ(translate_memcached_flags({"memcached", "-p11211", "-t=4"}),
            (args{"memcached", "--port", "11211", "--smp", "4"}));
  EXPECT_EQ(translate_memcached_flags({"memcached", "--threads=3", "--memory-limit", "8"}),
            (args{"memcached", "--smp=3", "--memory-limit-mb", "8"}));
}

TEST(options, everything_else_passes_through) {
  // Reef's flags, unknown ones (the template reports them), and what
  // follows "--".
  EXPECT_EQ(translate_memcached_flags({"memcached", "--smp", "1", "-x", "--bogus", "--", "-p"}),
            (args{"memcached", "--smp", "1", "-x", "--bogus", "--", "-p"}));
}

TEST(options, sizes_take_suffixes_and_refuse_garbage) {
  EXPECT_EQ(parse_size("1048576"), 1048576u);
  EXPECT_EQ(parse_size("1m"), 1048576u);
  EXPECT_EQ(parse_size("512K"), 524288u);
  EXPECT_EQ(parse_size("1g"), std::size_t{1} << 30);
  EXPECT_FALSE(parse_size(""));
  EXPECT_FALSE(parse_size("m"));
  EXPECT_FALSE(parse_size("-1"));
  EXPECT_FALSE(parse_size("1.5m"));
  EXPECT_FALSE(parse_size("99999999999999999999"));
  EXPECT_FALSE(parse_size("2048g"));
}

}  // namespace
}  // namespace reef::memcached
