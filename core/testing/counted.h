// An element for container tests that counts how many of its kind are
// alive (every constructor adds one, the destructor takes one away) and
// owns a heap int, so that a lost or doubled destruction shows as a count
// that does not return to 0, or as a leak or double free under ASan.
//
//   { small_vector<testing::counted, 2> v; v.emplace_back(1); }
//   EXPECT_EQ(testing::counted::alive, 0);
#pragma once

#include <memory>
#include <utility>

namespace reef::testing {

struct counted {
  static inline int alive = 0;

  explicit counted(int v = 0) : value(std::make_unique<int>(v)) { ++alive; }
  counted(counted&& o) noexcept : value(std::move(o.value)) { ++alive; }
  counted& operator=(counted&& o) noexcept {
    value = std::move(o.value);
    return *this;
  }
  ~counted() { --alive; }

  std::unique_ptr<int> value;
};

}  // namespace reef::testing
