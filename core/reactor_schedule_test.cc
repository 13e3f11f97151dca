// The run queue under memory pressure: scheduling never allocates, so a
// task is never run inline by schedule(), even when operator new fails.
// A binary of its own: it replaces operator new (//core/testing:alloc_counter).
#include <gtest/gtest.h>

#include <vector>

#include "core/reactor.h"
#include "core/testing/alloc_counter.h"

namespace reef {
namespace {

struct order_task final : task {
  void run_and_dispose() noexcept override { order->push_back(index); }
  std::vector<int>* order = nullptr;
  int index = 0;
};

TEST(reactor, schedule_queues_tasks_even_when_memory_runs_out) {
  reactor r;
  constexpr int n = 5000;  // well past any preallocated capacity
  std::vector<int> order;
  order.reserve(n);
  std::vector<order_task> tasks(n);
  for (int i = 0; i < n; ++i) {
    tasks[i].order = &order;
    tasks[i].index = i;
  }
  {
    testing::allocation_failure_scope no_memory;
    for (auto& t : tasks) schedule(&t);
  }
  EXPECT_TRUE(order.empty()) << order.size() << " tasks ran inside schedule()";
  EXPECT_EQ(r.tasks_queued(), static_cast<std::size_t>(n));
  r.run_pending_tasks();
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (order[i] != i) {
      ADD_FAILURE() << "task " << order[i] << " ran in position " << i;
      break;
    }
  }
}

}  // namespace
}  // namespace reef
