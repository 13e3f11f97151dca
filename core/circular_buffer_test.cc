// circular_buffer: first in, first out across wrap-around and growth, with
// every element constructed and destroyed once (counted), and an element
// that throws while it is made leaving the buffer as it was.
#include "core/circular_buffer.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>
#include <stdexcept>

#include "core/testing/counted.h"

namespace reef {
namespace {

using testing::counted;

TEST(circular_buffer, matches_a_deque_through_wraps_and_growth) {
  std::mt19937 random(7);  // fixed: a failure names its step
  {
    circular_buffer<counted> ring;
    std::deque<int> expected;
    int next = 0;
    for (int step = 0; step < 20000; ++step) {
      // Pushes win slightly, so the ring both wraps and grows.
      if (random() % 100 < 52 || expected.empty()) {
        ring.emplace_back(next);
        expected.push_back(next++);
      } else {
        ASSERT_EQ(*ring.front().value, expected.front()) << "step " << step;
        ring.pop_front();
        expected.pop_front();
      }
      ASSERT_EQ(ring.size(), expected.size()) << "step " << step;
      ASSERT_EQ(counted::alive, static_cast<int>(expected.size())) << "step " << step;
      if (!expected.empty()) {
        ASSERT_EQ(*ring.back().value, expected.back()) << "step " << step;
        const std::size_t middle = expected.size() / 2;
        ASSERT_EQ(*ring[middle].value, expected[middle]) << "step " << step;
      }
    }
    EXPECT_EQ(ring.capacity() & (ring.capacity() - 1), 0u) << "a power of two";
    ring.clear();
    EXPECT_TRUE(ring.empty());
    EXPECT_EQ(counted::alive, 0);
    ring.emplace_back(1);  // usable after clear()
    EXPECT_EQ(*ring.front().value, 1);
  }
  EXPECT_EQ(counted::alive, 0) << "the destructor destroyed what was left";
}

TEST(circular_buffer, moves_leave_the_source_empty) {
  circular_buffer<counted> a;
  for (int i = 0; i < 5; ++i) a.emplace_back(i);
  a.pop_front();
  circular_buffer<counted> b(std::move(a));
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(*b.front().value, 1);
  circular_buffer<counted> c;
  c.emplace_back(42);
  c = std::move(b);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(*c.back().value, 4);
  EXPECT_EQ(counted::alive, 4) << "the element c held was destroyed";
  c.clear();
  EXPECT_EQ(counted::alive, 0);
}

struct throws_when_made {
  explicit throws_when_made(bool fail) {
    if (fail) throw std::runtime_error("no");
  }
  throws_when_made(throws_when_made&&) noexcept = default;
};

TEST(circular_buffer, an_element_that_throws_leaves_it_unchanged) {
  circular_buffer<throws_when_made> ring;
  ring.emplace_back(false);
  ring.emplace_back(false);
  EXPECT_THROW(ring.emplace_back(true), std::runtime_error);
  EXPECT_EQ(ring.size(), 2u);
  for (int i = 0; i < 2; ++i) ring.emplace_back(false);  // the ring is now full (4)
  EXPECT_THROW(ring.emplace_back(true), std::runtime_error) << "thrown before it grows";
  EXPECT_EQ(ring.size(), 4u);
}

}  // namespace
}  // namespace reef
