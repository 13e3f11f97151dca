// queue<T> and pipe<T>.
#include "core/queue.h"

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "core/coroutine.h"
#include "core/pipe.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

using namespace std::chrono_literals;

REEF_TEST(queue, push_refuses_at_the_limit) {
  queue<int> q(2);
  EXPECT_TRUE(q.push(1));
  EXPECT_TRUE(q.push(2));
  EXPECT_TRUE(q.full());
  EXPECT_FALSE(q.push(3)) << "full: refused, not dropped silently";
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.pop(), 1);
  EXPECT_EQ(q.pop(), 2);
  EXPECT_TRUE(q.empty());
  return make_ready_future<>();
}

REEF_TEST(queue, push_eventually_waits_for_room) {
  queue<int> q(1);
  co_await q.push_eventually(1);
  auto second = q.push_eventually(2);
  EXPECT_FALSE(second.available());
  EXPECT_EQ(q.pop(), 1);
  co_await std::move(second);
  EXPECT_EQ(q.pop(), 2);
}

REEF_TEST(queue, pop_eventually_waits_for_an_item) {
  queue<std::string> q(4);
  auto item = q.pop_eventually();
  co_await sleep(100us);
  EXPECT_FALSE(item.available());
  q.push("late");
  EXPECT_EQ(co_await std::move(item), "late");
}

REEF_TEST(queue, abort_fails_the_waiting_consumer) {
  queue<int> q(1);
  auto item = q.pop_eventually();
  q.abort(std::make_exception_ptr(std::runtime_error("aborted")));
  EXPECT_THROW(co_await std::move(item), std::runtime_error);
  EXPECT_THROW(co_await q.push_eventually(1), std::runtime_error);
}

REEF_TEST(queue, a_waiting_consumer_gets_its_item_even_if_the_queue_goes_first) {
  auto q = std::make_unique<queue<int>>(4);
  auto f = q->pop_eventually();
  q->push(7);
  q.reset();  // before the consumer's continuation ran: it must not need the queue
  EXPECT_EQ(co_await std::move(f), 7);
  auto q2 = std::make_unique<queue<int>>(1);
  auto g = q2->pop_eventually();
  q2.reset();
  EXPECT_THROW(co_await std::move(g), broken_promise);
  // And a producer that waited for room.
  auto q3 = std::make_unique<queue<int>>(1);
  q3->push(1);
  auto h = q3->push_eventually(2);
  EXPECT_EQ(q3->pop(), 1);
  q3.reset();
  co_await std::move(h);
}

REEF_TEST(pipe, items_in_order_then_end_of_stream) {
  pipe<int> p(2);
  auto reader = std::move(p.reader);
  {
    auto writer = std::move(p.writer);
    co_await writer.write(1);
    co_await writer.write(2);
    auto third = writer.write(3);
    EXPECT_FALSE(third.available()) << "a full pipe holds the writer back";
    EXPECT_EQ(co_await reader.read(), std::optional<int>(1));
    co_await std::move(third);
  }  // the writer is gone: end of stream after the buffered items
  EXPECT_EQ(co_await reader.read(), std::optional<int>(2));
  EXPECT_EQ(co_await reader.read(), std::optional<int>(3));
  EXPECT_EQ(co_await reader.read(), std::nullopt);
}

REEF_TEST(pipe, reader_waits_for_the_writer) {
  pipe<std::unique_ptr<int>> p(1);
  auto item = p.reader.read();
  EXPECT_FALSE(item.available());
  co_await p.writer.write(std::make_unique<int>(5));
  auto got = co_await std::move(item);
  EXPECT_EQ(**got, 5);
}

REEF_TEST(pipe, writes_fail_once_the_reader_is_gone) {
  pipe<int> p(1);
  auto writer = std::move(p.writer);
  co_await writer.write(1);
  auto blocked = writer.write(2);
  { auto reader = std::move(p.reader); }
  EXPECT_THROW(co_await std::move(blocked), broken_pipe_exception);
  EXPECT_THROW(co_await writer.write(3), broken_pipe_exception);
}

}  // namespace
}  // namespace reef
