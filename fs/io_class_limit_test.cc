// The limit on priority classes, in a binary of its own: classes are
// process-wide and never removed, so filling the table would starve the
// other tests of a binary.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "fs/io_queue.h"

namespace reef {
namespace {

TEST(io_class, the_classes_max_plus_first_name_is_refused_and_existing_ones_still_resolve) {
  io_class first = io_class::named("limit-0", 10);
  for (unsigned i = 1; i < io_class::classes_max; ++i) io_class::named("limit-" + std::to_string(i), 10);
  try {
    io_class::named("one-too-many", 10);
    ADD_FAILURE() << "a class past classes_max";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("one-too-many"), std::string::npos) << e.what();
  }
  EXPECT_EQ(io_class::named("limit-0").id(), first.id()) << "a known name still resolves at the limit";
  EXPECT_EQ(io_class::named("limit-63").id(), io_class::classes_max - 1);
}

}  // namespace
}  // namespace reef
