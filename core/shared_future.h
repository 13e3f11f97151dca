// A future several consumers can wait for: each get_future() is a future of
// its own that resolves with a copy of the value (or the exception).
//
// Thread rules: one thread (shard). T must be copyable.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "core/assert.h"
#include "core/future.h"

namespace reef {

template <typename T = void>
class shared_future {
  using stored = core_internal::stored_t<T>;

  struct state {
    bool resolved = false;
    std::optional<stored> value;
    std::exception_ptr exception;
    std::vector<promise<T>> waiters;

    void resolve(future<T>&& f) noexcept {
      resolved = true;
      if (f.failed()) {
        exception = f.get_exception();
      } else if constexpr (std::is_void_v<T>) {
        f.get();
        value.emplace();
      } else {
        value.emplace(f.get());
      }
      for (auto& w : waiters) deliver(w);
      waiters.clear();
    }

    void deliver(promise<T>& pr) noexcept {
      if (exception) {
        pr.set_exception(exception);
      } else if constexpr (std::is_void_v<T>) {
        pr.set_value();
      } else {
        try {
          pr.set_value(*value);
        } catch (...) {
          pr.set_exception(std::current_exception());
        }
      }
    }
  };

 public:
  /// Shares `f`'s result.
  shared_future(future<T>&& f) : _state(std::make_shared<state>()) {
    if (f.available()) {
      _state->resolve(std::move(f));
    } else {
      (void)f.then_wrapped([st = _state](future<T>&& done) { st->resolve(std::move(done)); });
    }
  }
  shared_future() noexcept = default;
  shared_future(const shared_future&) = default;
  shared_future& operator=(const shared_future&) = default;
  shared_future(shared_future&&) noexcept = default;
  shared_future& operator=(shared_future&&) noexcept = default;

  /// A new future of the shared result.
  /// REQUIRES: valid().
  future<T> get_future() const noexcept {
    REEF_ASSERT(valid(), "get_future() on an empty shared_future");
    if (_state->resolved) {
      promise<T> pr;
      future<T> f = pr.get_future();
      _state->deliver(pr);
      return f;
    }
    try {
      _state->waiters.emplace_back();
      return _state->waiters.back().get_future();
    } catch (...) {
      return make_exception_future<T>(std::current_exception());
    }
  }

  bool available() const noexcept { return valid() && _state->resolved; }
  bool failed() const noexcept { return available() && _state->exception != nullptr; }
  bool valid() const noexcept { return _state != nullptr; }

 private:
  std::shared_ptr<state> _state;
};

}  // namespace reef
