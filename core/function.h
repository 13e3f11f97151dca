// A move-only std::function: holds callables that capture move-only state
// (promises, unique_ptrs), which std::function cannot. Small callables (up
// to three pointers) are stored inline without allocating.
//
// Thread rules: none of its own; the callable decides.
#pragma once

#include <cstddef>
#include <cstring>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

#include "core/assert.h"

namespace reef {

template <typename Signature>
class noncopyable_function;

template <typename R, typename... A>
class noncopyable_function<R(A...)> {
  static constexpr std::size_t inline_size = 3 * sizeof(void*);

  struct ops {
    R (*call)(const noncopyable_function* self, A... a);
    void (*move)(noncopyable_function* from, noncopyable_function* to) noexcept;
    void (*destroy)(noncopyable_function* self) noexcept;
  };

  template <typename F>
  static constexpr bool fits_inline = sizeof(F) <= inline_size &&
                                      alignof(F) <= alignof(void*) &&
                                      std::is_nothrow_move_constructible_v<F>;

  template <typename F>
  struct inline_ops {
    static F* get(const noncopyable_function* self) noexcept {
      return std::launder(reinterpret_cast<F*>(const_cast<unsigned char*>(self->_storage)));
    }
    static R call(const noncopyable_function* self, A... a) {
      return std::invoke(*get(self), std::forward<A>(a)...);
    }
    static void move(noncopyable_function* from, noncopyable_function* to) noexcept {
      new (to->_storage) F(std::move(*get(from)));
      get(from)->~F();
    }
    static void destroy(noncopyable_function* self) noexcept { get(self)->~F(); }
    static constexpr ops table{call, move, destroy};
  };

  template <typename F>
  struct heap_ops {
    static F* get(const noncopyable_function* self) noexcept {
      F* p;
      std::memcpy(&p, self->_storage, sizeof(p));
      return p;
    }
    static R call(const noncopyable_function* self, A... a) {
      return std::invoke(*get(self), std::forward<A>(a)...);
    }
    static void move(noncopyable_function* from, noncopyable_function* to) noexcept {
      std::memcpy(to->_storage, from->_storage, sizeof(F*));
    }
    static void destroy(noncopyable_function* self) noexcept { delete get(self); }
    static constexpr ops table{call, move, destroy};
  };

 public:
  noncopyable_function() noexcept = default;
  noncopyable_function(std::nullptr_t) noexcept {}

  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, noncopyable_function> &&
                                        std::is_invocable_r_v<R, std::decay_t<F>&, A...>>>
  noncopyable_function(F&& f) {
    using D = std::decay_t<F>;
    if constexpr (fits_inline<D>) {
      new (_storage) D(std::forward<F>(f));
      _ops = &inline_ops<D>::table;
    } else {
      D* p = new D(std::forward<F>(f));
      std::memcpy(_storage, &p, sizeof(p));
      _ops = &heap_ops<D>::table;
    }
  }

  noncopyable_function(noncopyable_function&& o) noexcept : _ops(o._ops) {
    if (_ops != nullptr) {
      _ops->move(&o, this);
      o._ops = nullptr;
    }
  }

  noncopyable_function& operator=(noncopyable_function&& o) noexcept {
    if (this != &o) {
      this->~noncopyable_function();
      new (this) noncopyable_function(std::move(o));
    }
    return *this;
  }

  noncopyable_function(const noncopyable_function&) = delete;
  noncopyable_function& operator=(const noncopyable_function&) = delete;

  ~noncopyable_function() {
    if (_ops != nullptr) _ops->destroy(this);
  }

  explicit operator bool() const noexcept { return _ops != nullptr; }

  /// REQUIRES: holds a callable.
  R operator()(A... a) const {
    REEF_ASSERT(_ops != nullptr, "calling an empty noncopyable_function");
    return _ops->call(this, std::forward<A>(a)...);
  }

 private:
  alignas(void*) unsigned char _storage[inline_size];
  const ops* _ops = nullptr;
};

}  // namespace reef
