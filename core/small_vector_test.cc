// small_vector: inline up to N, then on the heap, with every element
// constructed and destroyed once (counted), moved and copied either way.
#include "core/small_vector.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/testing/counted.h"

namespace reef {
namespace {

using testing::counted;

std::vector<int> values(const small_vector<counted, 2>& v) {
  std::vector<int> out;
  for (auto& c : v) out.push_back(c.value ? *c.value : -1);
  return out;
}

TEST(small_vector, grows_past_its_inline_room_and_keeps_order) {
  {
    small_vector<counted, 2> v;
    EXPECT_TRUE(v.empty());
    for (int i = 0; i < 5; ++i) v.emplace_back(i);
    EXPECT_EQ(values(v), (std::vector<int>{0, 1, 2, 3, 4}));
    v.insert(v.begin(), counted(9));
    EXPECT_EQ(values(v), (std::vector<int>{9, 0, 1, 2, 3, 4}));
    v.erase(v.begin(), v.begin() + 2);
    EXPECT_EQ(values(v), (std::vector<int>{1, 2, 3, 4}));
    v.resize(1);
    EXPECT_EQ(values(v), (std::vector<int>{1}));
    EXPECT_EQ(counted::alive, 1);
  }
  EXPECT_EQ(counted::alive, 0);
}

TEST(small_vector, moves_inline_and_heap_contents) {
  {
    small_vector<counted, 2> a;
    a.emplace_back(1);
    small_vector<counted, 2> b(std::move(a));
    EXPECT_TRUE(a.empty());
    EXPECT_EQ(values(b), std::vector<int>{1});
    small_vector<counted, 2> big;
    for (int i = 0; i < 4; ++i) big.emplace_back(i);
    b = std::move(big);
    EXPECT_EQ(values(b), (std::vector<int>{0, 1, 2, 3}));
    EXPECT_TRUE(big.empty());
    big.emplace_back(7);  // usable after a move
    EXPECT_EQ(values(big), std::vector<int>{7});
    EXPECT_EQ(counted::alive, 5);
  }
  EXPECT_EQ(counted::alive, 0);
}

TEST(small_vector, copies) {
  small_vector<std::string, 1> a;
  a.push_back("one");
  a.push_back("two");
  small_vector<std::string, 1> b = a;
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(b[1], "two");
  small_vector<std::string, 1> c;
  c.push_back("x");
  c = b;
  EXPECT_EQ(c.front(), "one");
  EXPECT_EQ(c.back(), "two");
  std::span<const std::string> view = c;
  EXPECT_EQ(view.size(), 2u);
}

TEST(small_vector, inserts_bytewise_movable_elements_anywhere) {
  // (ints move by memmove: front, middle and end, inline and past it.)
  small_vector<int, 2> v;
  v.insert(v.begin(), 2);
  v.insert(v.begin(), 0);
  v.insert(v.begin() + 1, 1);  // grows here
  v.insert(v.end(), 4);
  v.insert(v.begin() + 3, 3);
  EXPECT_EQ(std::vector<int>(v.begin(), v.end()), (std::vector<int>{0, 1, 2, 3, 4}));
}

}  // namespace
}  // namespace reef
