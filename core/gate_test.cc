#include "core/gate.h"

#include <chrono>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(gate, close_waits_for_holders) {
  gate g;
  bool finished = false;
  auto work = with_gate(g, [&]() -> future<> {
    co_await sleep(1ms);
    finished = true;
  });
  EXPECT_EQ(g.get_count(), 1u);
  co_await g.close();
  EXPECT_TRUE(finished) << "close() resolved before the holder left";
  co_await std::move(work);
}

REEF_TEST(gate, closed_gate_refuses_entry) {
  gate g;
  co_await g.close();
  EXPECT_THROW(g.enter(), gate_closed_exception);
  EXPECT_FALSE(g.try_enter());
  EXPECT_THROW(g.check(), gate_closed_exception);
  bool ran = false;
  EXPECT_THROW(co_await with_gate(g, [&] { ran = true; }), gate_closed_exception);
  EXPECT_FALSE(ran);
}

REEF_TEST(gate, holder_leaves_on_destruction) {
  gate g;
  {
    auto h = g.hold();
    EXPECT_EQ(g.get_count(), 1u);
    auto moved = std::move(h);
    EXPECT_EQ(g.get_count(), 1u);
  }
  EXPECT_EQ(g.get_count(), 0u);
  co_await g.close();
}

REEF_TEST(gate, failing_work_still_leaves) {
  gate g;
  auto f = with_gate(g, []() -> future<> {
    co_await sleep(100us);
    throw std::runtime_error("work failed");
  });
  EXPECT_THROW(co_await std::move(f), std::runtime_error);
  EXPECT_EQ(g.get_count(), 0u);
  co_await g.close();
}

}  // namespace
}  // namespace reef
