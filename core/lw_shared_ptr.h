// A shared pointer for one shard: like std::shared_ptr, but its count is a
// plain integer (no atomic operation per copy) and make_lw_shared() puts the
// count and the object in one allocation.
//
//   auto state = make_lw_shared<connection_state>(fd);
//   return read().then([state](buffer b) { state->consume(b); });   // a copy: one increment
//
// Thread rules: a lw_shared_ptr and its copies belong to one thread (shard):
// copying or dropping one on another thread is a data race on the count.
// To share across shards use foreign_ptr (smp/foreign_ptr.h) or a
// std::shared_ptr.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "core/assert.h"

namespace reef {

template <typename T>
class lw_shared_ptr;

template <typename T, typename... A>
lw_shared_ptr<T> make_lw_shared(A&&... a);

namespace core_internal {

// The one allocation: the count, then the object.
template <typename T>
struct lw_shared_block {
  template <typename... A>
  explicit lw_shared_block(A&&... a) : value(std::forward<A>(a)...) {}
  std::size_t count = 1;
  T value;
};

}  // namespace core_internal

template <typename T>
class lw_shared_ptr {
 public:
  using element_type = T;

  lw_shared_ptr() noexcept = default;
  lw_shared_ptr(std::nullptr_t) noexcept {}  // NOLINT: as std::shared_ptr
  lw_shared_ptr(const lw_shared_ptr& o) noexcept : _block(o._block) {
    if (_block != nullptr) ++_block->count;
  }
  lw_shared_ptr(lw_shared_ptr&& o) noexcept : _block(std::exchange(o._block, nullptr)) {}
  lw_shared_ptr& operator=(const lw_shared_ptr& o) noexcept {
    lw_shared_ptr(o).swap(*this);
    return *this;
  }
  lw_shared_ptr& operator=(lw_shared_ptr&& o) noexcept {
    lw_shared_ptr(std::move(o)).swap(*this);
    return *this;
  }
  lw_shared_ptr& operator=(std::nullptr_t) noexcept {
    reset();
    return *this;
  }
  ~lw_shared_ptr() { release(); }

  T* get() const noexcept { return _block != nullptr ? &_block->value : nullptr; }
  T& operator*() const noexcept {
    REEF_DEBUG_ASSERT(_block != nullptr);
    return _block->value;
  }
  T* operator->() const noexcept { return get(); }
  explicit operator bool() const noexcept { return _block != nullptr; }

  /// How many lw_shared_ptrs share the object (0 for an empty one).
  std::size_t use_count() const noexcept { return _block != nullptr ? _block->count : 0; }

  /// Drops this reference (the object goes with the last).
  void reset() noexcept {
    release();
    _block = nullptr;
  }

  void swap(lw_shared_ptr& o) noexcept { std::swap(_block, o._block); }

  friend bool operator==(const lw_shared_ptr& a, const lw_shared_ptr& b) noexcept { return a._block == b._block; }
  friend bool operator==(const lw_shared_ptr& a, std::nullptr_t) noexcept { return a._block == nullptr; }

 private:
  template <typename U, typename... A>
  friend lw_shared_ptr<U> make_lw_shared(A&&... a);

  explicit lw_shared_ptr(core_internal::lw_shared_block<T>* b) noexcept : _block(b) {}

  void release() noexcept {
    if (_block != nullptr && --_block->count == 0) delete _block;
  }

  core_internal::lw_shared_block<T>* _block = nullptr;
};

/// A new T(a...) shared by the returned pointer; one allocation.
template <typename T, typename... A>
lw_shared_ptr<T> make_lw_shared(A&&... a) {
  return lw_shared_ptr<T>(new core_internal::lw_shared_block<T>(std::forward<A>(a)...));
}

}  // namespace reef
