// Proves //third_party/dpdk compiles and links rte_eal_init.
#include <rte_eal.h>
#include <rte_version.h>

#include <gtest/gtest.h>

#include <string>

namespace {

TEST(dpdk, eal_init_links_and_rejects_bad_arguments) {
  EXPECT_EQ(std::string(rte_version()).rfind("DPDK 22.11", 0), 0u) << rte_version();
  char program[] = "dpdk_link_test";
  char bad[] = "--no-such-eal-option";
  char* argv[] = {program, bad, nullptr};
  // A bad option is refused before EAL touches memory or devices.
  EXPECT_LT(rte_eal_init(2, argv), 0);
}

}  // namespace
