// Proves //third_party/gtest (with gmock) compiles and links.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(gtest, matchers_link) {
  std::vector<int> v{1, 2, 3};
  EXPECT_THAT(v, ::testing::ElementsAre(1, 2, 3));
}

}  // namespace
