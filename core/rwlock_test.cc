#include "core/rwlock.h"

#include <string>
#include <vector>

#include "core/coroutine.h"
#include "core/sleep.h"
#include "core/testing/test.h"

namespace reef {
namespace {

REEF_TEST(rwlock, readers_share_and_a_writer_is_alone) {
  rwlock lock;
  co_await lock.read_lock();
  co_await lock.read_lock();
  EXPECT_TRUE(lock.locked());
  EXPECT_FALSE(lock.try_write_lock()) << "readers hold it";
  auto writer = lock.write_lock();
  EXPECT_FALSE(writer.available());
  lock.read_unlock();
  EXPECT_FALSE(writer.available()) << "one reader still holds it";
  lock.read_unlock();
  co_await std::move(writer);
  EXPECT_FALSE(lock.try_read_lock()) << "the writer holds it alone";
  lock.write_unlock();
  EXPECT_FALSE(lock.locked());
}

REEF_TEST(rwlock, a_waiting_writer_is_not_overtaken_by_later_readers) {
  rwlock lock;
  std::vector<std::string> order;
  co_await lock.read_lock();
  auto writer = lock.write_lock().then([&] {
    order.push_back("writer");
    lock.write_unlock();
  });
  auto late_reader = lock.read_lock().then([&] {
    order.push_back("reader");
    lock.read_unlock();
  });
  EXPECT_FALSE(late_reader.available()) << "behind the waiting writer";
  lock.read_unlock();
  co_await std::move(writer);
  co_await std::move(late_reader);
  EXPECT_EQ(order, (std::vector<std::string>{"writer", "reader"}));
}

REEF_TEST(rwlock, holders_release_when_they_go) {
  rwlock lock;
  {
    auto h = co_await lock.hold_write_lock();
    EXPECT_TRUE(lock.locked());
    auto moved = std::move(h);
    EXPECT_TRUE(lock.locked());
  }
  EXPECT_FALSE(lock.locked());
  auto r1 = co_await lock.hold_read_lock();
  auto r2 = co_await lock.hold_read_lock();
  r1.release();
  EXPECT_TRUE(lock.locked());
  r2.release();
  EXPECT_FALSE(lock.locked());
}

}  // namespace
}  // namespace reef
