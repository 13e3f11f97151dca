// Proves //third_party/c_ares compiles and links: the library initializes
// and reports its version.
#include <ares.h>

#include <gtest/gtest.h>

namespace {

TEST(c_ares, initializes) {
  ASSERT_EQ(ares_library_init(ARES_LIB_INIT_ALL), ARES_SUCCESS);
  int version = 0;
  EXPECT_NE(ares_version(&version), nullptr);
  EXPECT_GE(version, 0x011200);
  ares_library_cleanup();
}

}  // namespace
