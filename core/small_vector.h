// A vector that keeps its first N elements inside itself: no allocation
// until it holds more. For the short lists on hot paths (a packet's
// fragments and deleters: almost always one or two).
//
//   small_vector<fragment, 2> v;   // no allocation for two
//   v.push_back(f);
//
// A subset of std::vector: what those paths use. Thread rules: as
// std::vector.
#pragma once

#include <algorithm>
#include <cstring>
#include <cstddef>
#include <memory>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "core/assert.h"

namespace reef {

/// Whether a T may be moved by copying its bytes and forgetting the
/// original (no destructor run on it): true for trivially copyable types,
/// and for types that say so (a handle that owns through one pointer).
template <typename T>
struct is_trivially_relocatable : std::is_trivially_copyable<T> {};

template <typename T, std::size_t N>
class small_vector {
  static_assert(N > 0);
  // (Growing moves the elements: a move that throws would leave them
  // half moved.)
  static_assert(std::is_nothrow_move_constructible_v<T>, "small_vector needs elements that move without throwing");

 public:
  using value_type = T;
  using iterator = T*;
  using const_iterator = const T*;

  small_vector() noexcept = default;
  small_vector(const small_vector& o) : small_vector() {
    reserve(o._size);
    std::uninitialized_copy(o.begin(), o.end(), _data);
    _size = o._size;
  }
  small_vector(small_vector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : small_vector() {
    take(std::move(o));
  }
  small_vector& operator=(const small_vector& o) {
    if (this != &o) {
      clear();
      reserve(o._size);
      std::uninitialized_copy(o.begin(), o.end(), _data);
      _size = o._size;
    }
    return *this;
  }
  small_vector& operator=(small_vector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) {
      clear();
      release_heap();
      take(std::move(o));
    }
    return *this;
  }
  ~small_vector() {
    clear();
    release_heap();
  }

  std::size_t size() const noexcept { return _size; }
  bool empty() const noexcept { return _size == 0; }
  T* data() noexcept { return _data; }
  const T* data() const noexcept { return _data; }
  T* begin() noexcept { return _data; }
  T* end() noexcept { return _data + _size; }
  const T* begin() const noexcept { return _data; }
  const T* end() const noexcept { return _data + _size; }
  T& operator[](std::size_t i) noexcept { return _data[i]; }
  const T& operator[](std::size_t i) const noexcept { return _data[i]; }
  T& front() noexcept { return _data[0]; }
  const T& front() const noexcept { return _data[0]; }
  T& back() noexcept { return _data[_size - 1]; }
  const T& back() const noexcept { return _data[_size - 1]; }
  operator std::span<const T>() const noexcept { return {_data, _size}; }

  void reserve(std::size_t n) {
    if (n <= _capacity) return;
    const std::size_t capacity = std::max(n, _capacity * 2);
    if (capacity > std::size_t(-1) / sizeof(T)) throw std::bad_alloc();
    T* fresh = static_cast<T*>(::operator new(capacity * sizeof(T), std::align_val_t(alignof(T))));
    for (std::size_t i = 0; i < _size; ++i) {
      new (fresh + i) T(std::move(_data[i]));
      _data[i].~T();
    }
    release_heap();
    _data = fresh;
    _capacity = capacity;
  }

  template <typename... A>
  T& emplace_back(A&&... a) {
    if (_size == _capacity) [[unlikely]] {
      return grow_and_emplace_back(std::forward<A>(a)...);
    }
    new (_data + _size) T(std::forward<A>(a)...);
    return _data[_size++];
  }
  void push_back(const T& v) { emplace_back(v); }
  void push_back(T&& v) { emplace_back(std::move(v)); }

  /// Inserts `v` before `at`.
  void insert(const T* at, T v) {
    const std::size_t index = static_cast<std::size_t>(at - _data);
    if constexpr (is_trivially_relocatable<T>::value) {
      // (A header in front of a packet's fragments.)
      if (_size == _capacity) [[unlikely]] reserve(_size + 1);
      // (Element by element from the back: lists this short cost less so
      // than a call to memmove.)
      for (std::size_t i = _size; i > index; --i) {
        std::memcpy(static_cast<void*>(_data + i), static_cast<const void*>(_data + i - 1), sizeof(T));
      }
      new (_data + index) T(std::move(v));
      ++_size;
    } else {
      emplace_back(std::move(v));
      std::rotate(_data + index, _data + _size - 1, _data + _size);
    }
  }

  /// Removes [first, last).
  void erase(const T* first, const T* last) noexcept {
    T* f = _data + (first - _data);
    T* l = _data + (last - _data);
    T* new_end = std::move(l, end(), f);
    for (T* p = new_end; p != end(); ++p) p->~T();
    _size = static_cast<std::size_t>(new_end - _data);
  }

  /// Shrinks to `n` (REQUIRES: n <= size()), or grows with T().
  void resize(std::size_t n) {
    while (_size > n) _data[--_size].~T();
    while (_size < n) emplace_back();
  }

  void clear() noexcept {
    for (std::size_t i = 0; i < _size; ++i) _data[i].~T();
    _size = 0;
  }

 private:
  // emplace_back() past the capacity, out of line: the common case stays
  // small enough to inline.
  template <typename... A>
  [[gnu::noinline]] T& grow_and_emplace_back(A&&... a) {
    // Made before the elements move: `a` may be one of them.
    T made(std::forward<A>(a)...);
    reserve(_size + 1);
    new (_data + _size) T(std::move(made));
    return _data[_size++];
  }

  bool on_heap() const noexcept { return _data != reinterpret_cast<const T*>(_inline); }
  void release_heap() noexcept {
    if (on_heap()) {
      ::operator delete(_data, std::align_val_t(alignof(T)));
      _data = reinterpret_cast<T*>(_inline);
      _capacity = N;
    }
  }
  // REQUIRES: empty, inline.
  void take(small_vector&& o) {
    if (o.on_heap()) {
      _data = std::exchange(o._data, reinterpret_cast<T*>(o._inline));
      _size = std::exchange(o._size, 0);
      _capacity = std::exchange(o._capacity, N);
      return;
    }
    if constexpr (is_trivially_relocatable<T>::value) {
      // All of the inline room (no loop, no branch); the originals are
      // forgotten, not destroyed.
      std::memcpy(static_cast<void*>(_inline), static_cast<const void*>(o._inline), sizeof(_inline));
      _size = std::exchange(o._size, 0);
      return;
    }
    for (std::size_t i = 0; i < o._size; ++i) new (_data + i) T(std::move(o._data[i]));
    _size = o._size;
    o.clear();
  }

  alignas(T) unsigned char _inline[N * sizeof(T)];
  T* _data = reinterpret_cast<T*>(_inline);
  std::size_t _size = 0;
  std::size_t _capacity = N;
};

}  // namespace reef
