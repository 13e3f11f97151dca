#include "smp/topology.h"

#include <gtest/gtest.h>

#include <set>

namespace reef {
namespace {

// Two NUMA nodes, two cores each, two PUs per core: CPUs 0-7, where
// CPU n is on core n/2 and node n/4.
topology two_nodes() {
  std::vector<cpu_info> cpus;
  std::vector<numa_node_info> nodes(2);
  for (unsigned n = 0; n < 8; ++n) {
    cpus.push_back(cpu_info{n, n / 2, n / 4});
    nodes[n / 4].cpus.push_back(n);
  }
  nodes[0].os_index = 0;
  nodes[1].os_index = 1;
  nodes[0].memory_bytes = nodes[1].memory_bytes = 1ull << 30;
  return topology(std::move(cpus), std::move(nodes), "test");
}

TEST(topology, discovers_this_machine) {
  topology t = topology::discover();
  ASSERT_FALSE(t.cpus().empty());
  ASSERT_FALSE(t.numa_nodes().empty());
  EXPECT_GT(t.total_memory_bytes(), 0u);
  std::set<unsigned> in_nodes;
  for (const auto& n : t.numa_nodes()) in_nodes.insert(n.cpus.begin(), n.cpus.end());
  for (const auto& c : t.cpus()) {
    EXPECT_TRUE(in_nodes.count(c.os_index)) << "CPU " << c.os_index << " is on no node";
    EXPECT_EQ(t.find_cpu(c.os_index), &c);
  }
  EXPECT_EQ(t.find_cpu(100000), nullptr);
}

TEST(topology, parse_cpuset_reads_ranges_and_lists) {
  EXPECT_EQ(parse_cpuset("0-3,8"), (std::vector<unsigned>{0, 1, 2, 3, 8}));
  EXPECT_EQ(parse_cpuset("5"), (std::vector<unsigned>{5}));
  EXPECT_EQ(parse_cpuset("2-2"), (std::vector<unsigned>{2}));
}

TEST(topology, parse_cpuset_rejects_garbage_naming_the_flag) {
  for (const char* bad : {"", ",", "1,", ",1", "a", "1-", "-1", "3-1", "1,1", "0-2,1", "1 ", " 1",
                          "99999", "1;2", "0x1", "1--2"}) {
    try {
      parse_cpuset(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const flag_error& e) {
      EXPECT_NE(std::string(e.what()).find("--cpuset"), std::string::npos) << e.what();
    }
  }
}

TEST(topology, fewer_shards_spread_over_nodes_and_cores) {
  topology t = two_nodes();
  auto two = select_cpus(t, 2, std::nullopt);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_NE(two[0].numa_node, two[1].numa_node);
  auto four = select_cpus(t, 4, std::nullopt);
  std::set<unsigned> cores;
  for (const auto& c : four) cores.insert(c.core);
  EXPECT_EQ(cores.size(), 4u) << "four shards on four distinct cores before any hyperthread";
  EXPECT_EQ(select_cpus(t, std::nullopt, std::nullopt).size(), 8u);
}

TEST(topology, cpuset_limits_the_choice) {
  topology t = two_nodes();
  auto chosen = select_cpus(t, std::nullopt, std::vector<unsigned>{6, 2});
  ASSERT_EQ(chosen.size(), 2u);
  EXPECT_EQ(chosen[0].os_index, 6u);
  EXPECT_EQ(chosen[1].os_index, 2u);
  EXPECT_EQ(select_cpus(t, 1, std::vector<unsigned>{3, 4}).size(), 1u);
}

TEST(topology, impossible_requests_name_the_flag) {
  topology t = two_nodes();
  auto expect_error = [&](std::optional<unsigned> smp, std::optional<std::vector<unsigned>> set,
                          const char* flag) {
    try {
      select_cpus(t, smp, set);
      ADD_FAILURE() << "accepted a request that names " << flag;
    } catch (const flag_error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  expect_error(9, std::nullopt, "--smp");
  expect_error(0, std::nullopt, "--smp");
  expect_error(3, std::vector<unsigned>{0, 1}, "--smp");
  expect_error(std::nullopt, std::vector<unsigned>{1, 12}, "--cpuset");
  expect_error(std::nullopt, std::vector<unsigned>{}, "--cpuset");
}

}  // namespace
}  // namespace reef
