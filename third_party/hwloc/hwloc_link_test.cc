// Proves //third_party/hwloc compiles and links: the topology is loaded and
// has at least one processing unit.
#include <hwloc.h>

#include <gtest/gtest.h>

namespace {

TEST(hwloc, finds_a_processing_unit) {
  hwloc_topology_t topology;
  ASSERT_EQ(hwloc_topology_init(&topology), 0);
  ASSERT_EQ(hwloc_topology_load(topology), 0);
  EXPECT_GE(hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU), 1);
  hwloc_topology_destroy(topology);
}

}  // namespace
