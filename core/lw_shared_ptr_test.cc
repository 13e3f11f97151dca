#include "core/lw_shared_ptr.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "core/testing/alloc_counter.h"

namespace reef {
namespace {

struct tracked {
  explicit tracked(int* alive, std::string v) : alive(alive), value(std::move(v)) { ++*alive; }
  ~tracked() { --*alive; }
  int* alive;
  std::string value;
};

TEST(lw_shared_ptr, the_last_copy_destroys_the_object) {
  int alive = 0;
  lw_shared_ptr<tracked> a = make_lw_shared<tracked>(&alive, "x");
  EXPECT_EQ(alive, 1);
  EXPECT_EQ(a.use_count(), 1u);
  {
    auto b = a;
    EXPECT_EQ(a.use_count(), 2u);
    EXPECT_EQ(b->value, "x");
    EXPECT_EQ(b.get(), a.get());
    EXPECT_TRUE(b == a);
  }
  EXPECT_EQ(a.use_count(), 1u);
  auto c = std::move(a);
  EXPECT_FALSE(a);
  EXPECT_EQ(a.use_count(), 0u);
  EXPECT_EQ(c.use_count(), 1u);
  EXPECT_EQ(alive, 1);
  c = nullptr;
  EXPECT_EQ(alive, 0);
  EXPECT_TRUE(c == nullptr);
}

TEST(lw_shared_ptr, assignment_drops_the_old_object_and_self_assignment_keeps_it) {
  int alive = 0;
  auto a = make_lw_shared<tracked>(&alive, "a");
  auto b = make_lw_shared<tracked>(&alive, "b");
  a = b;
  EXPECT_EQ(alive, 1);
  EXPECT_EQ(a->value, "b");
  auto& same = a;
  a = same;
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_EQ(alive, 1);
}

TEST(lw_shared_ptr, one_allocation_and_copies_allocate_nothing) {
  int alive = 0;
  auto before = testing::allocations();
  auto a = make_lw_shared<tracked>(&alive, "");
  EXPECT_EQ(testing::allocations() - before, 1u) << "the count and the object together";
  before = testing::allocations();
  for (int i = 0; i < 100; ++i) {
    auto copy = a;
    (void)copy;
  }
  EXPECT_EQ(testing::allocations(), before);
}

}  // namespace
}  // namespace reef
