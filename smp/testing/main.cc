// The main() of gtest binaries whose tests start shards themselves
// (smp::run): the command line's reactor flags (--reactor-backend, ...)
// become the shards' reactor options (testing::command_line_reactor_options).
#include <gtest/gtest.h>

#include <cstdio>

#include "core/reactor_flags.h"
#include "smp/testing/shards.h"

namespace reef::testing {
namespace {
reactor_options parsed;
}  // namespace

reactor_options command_line_reactor_options() { return parsed; }

}  // namespace reef::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  reef::command_line cl = reef::parse_command_line(argc, argv);
  if (!cl.error.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], cl.error.c_str());
    return 2;
  }
  reef::testing::parsed = reef::reactor_options_from_flags();
  return RUN_ALL_TESTS();
}
