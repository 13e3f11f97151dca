// A reader-writer lock for the fibers of one shard: many readers at once,
// or one writer.
//
//   rwlock lock;
//   co_await lock.read_lock();    ... lock.read_unlock();
//   auto held = co_await lock.hold_write_lock();   // released when `held` goes
//
// Fair: waiters are served in arrival order, so a waiting writer is not
// overtaken by readers that came after it, and no side starves. Built on a
// semaphore whose every unit is one reader; a writer takes them all.
//
// Thread rules: one thread (shard). Nothing here blocks the thread: a lock
// that cannot be had now is a future.
#pragma once

#include <cstddef>
#include <utility>

#include "core/future.h"
#include "core/semaphore.h"

namespace reef {

class rwlock {
 public:
  /// Released when destroyed (or moved from: then nothing).
  class holder {
   public:
    holder() noexcept = default;
    holder(holder&& o) noexcept : _lock(std::exchange(o._lock, nullptr)), _units(o._units) {}
    holder& operator=(holder&& o) noexcept {
      if (this != &o) {
        release();
        _lock = std::exchange(o._lock, nullptr);
        _units = o._units;
      }
      return *this;
    }
    ~holder() { release(); }
    /// Releases now.
    void release() noexcept {
      if (_lock != nullptr) std::exchange(_lock, nullptr)->_sem.signal(_units);
    }

   private:
    friend class rwlock;
    holder(rwlock* l, std::size_t units) noexcept : _lock(l), _units(units) {}
    rwlock* _lock = nullptr;
    std::size_t _units = 0;
  };

  rwlock() noexcept : _sem(all) {}
  rwlock(const rwlock&) = delete;
  rwlock& operator=(const rwlock&) = delete;

  /// Resolves when this reader may go in (no writer holds or waits ahead).
  future<> read_lock() noexcept { return _sem.wait(1); }
  void read_unlock() noexcept { _sem.signal(1); }
  /// Resolves when this writer holds the lock alone.
  future<> write_lock() noexcept { return _sem.wait(all); }
  void write_unlock() noexcept { _sem.signal(all); }

  /// At once if nobody waits and no writer holds (readers: and no writer
  /// waits); false otherwise.
  bool try_read_lock() noexcept { return _sem.try_wait(1); }
  bool try_write_lock() noexcept { return _sem.try_wait(all); }

  /// read_lock()/write_lock() with a holder that unlocks.
  future<holder> hold_read_lock() noexcept {
    return read_lock().then([this] { return holder(this, 1); });
  }
  future<holder> hold_write_lock() noexcept {
    return write_lock().then([this] { return holder(this, all); });
  }

  /// Whether nobody holds it.
  bool locked() const noexcept { return _sem.available_units() != static_cast<ssize_t>(all); }

 private:
  static constexpr std::size_t all = semaphore::max_counter();
  semaphore _sem;
};

}  // namespace reef
