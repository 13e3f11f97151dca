// Owning a pointer across shards: a foreign_ptr remembers the shard that
// created it, may be moved to and used on another shard, and is destroyed on
// the shard that owns it, whatever shard drops it.
//
//   auto p = make_foreign(std::make_unique<state>());
//   return smp::submit_to(1, [p = std::move(p)] { use(*p); });
//   // p dies on shard 1; the state is deleted on its own shard.
//
// Thread rules: the pointee belongs to its owner shard; other shards may
// read it only as far as the pointee allows (usually: const, immutable
// data). Destruction of the pointee happens on the owner shard, and only
// there: a message to it when dropped elsewhere; once smp's shutdown
// refuses messages, the owner's final drain as it stops; and if the owner
// is gone altogether (smp::run() has returned), the pointee is leaked,
// with a logged count, rather than destroyed on the wrong thread (see
// smp_internal::destroy_on).
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

#include "core/future.h"
#include "smp/smp.h"

namespace reef {

template <typename PtrType>
class foreign_ptr {
 public:
  using element_type = typename std::pointer_traits<PtrType>::element_type;

  foreign_ptr() noexcept : _owner(this_shard_id()) {}
  /// Takes `p`, owned by the calling shard.
  explicit foreign_ptr(PtrType p) noexcept : _value(std::move(p)), _owner(this_shard_id()) {}
  foreign_ptr(std::nullptr_t) noexcept : foreign_ptr() {}
  foreign_ptr(foreign_ptr&& o) noexcept : _value(std::move(o._value)), _owner(o._owner) {}
  foreign_ptr& operator=(foreign_ptr&& o) noexcept {
    if (this != &o) {
      destroy();
      _value = std::move(o._value);
      _owner = o._owner;
    }
    return *this;
  }
  foreign_ptr(const foreign_ptr&) = delete;
  foreign_ptr& operator=(const foreign_ptr&) = delete;
  ~foreign_ptr() { destroy(); }

  element_type* get() const noexcept { return std::to_address(_value); }
  element_type& operator*() const noexcept { return *_value; }
  element_type* operator->() const noexcept { return get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(_value); }

  /// The shard that owns the pointee.
  unsigned get_owner_shard() const noexcept { return _owner; }

  /// Gives up the pointer; the caller becomes responsible for destroying it
  /// on the owner shard.
  PtrType release() noexcept { return std::move(_value); }

  /// Drops the pointee (on its owner) and takes `p` from the calling shard.
  void reset(PtrType p = PtrType()) noexcept {
    destroy();
    _value = std::move(p);
    _owner = this_shard_id();
  }

  /// A second foreign_ptr to the same object, made on the owner shard (for
  /// copyable pointers such as std::shared_ptr).
  /// REQUIRES: *this is neither moved nor destroyed until the future
  /// resolves (the owner shard reads it).
  future<foreign_ptr> copy() const noexcept {
    return smp::submit_to(_owner, [v = &_value]() { return foreign_ptr(PtrType(*v)); });
  }

 private:
  // The pointee, handed to smp_internal::destroy_on().
  struct holder final : smp_internal::remote_destroyer {
    explicit holder(PtrType&& p) noexcept : value(std::move(p)) {}
    PtrType value;
  };

  void destroy() noexcept {
    if (!_value) return;
    if (this_shard_id() == _owner) {
      _value = PtrType();
      return;
    }
    // (Out of memory for the holder: fatal, as for a continuation.)
    smp_internal::destroy_on(_owner, new holder(std::move(_value)));
  }

  PtrType _value;
  unsigned _owner;
};

/// A foreign_ptr owned by the calling shard.
template <typename PtrType>
foreign_ptr<PtrType> make_foreign(PtrType p) noexcept {
  return foreign_ptr<PtrType>(std::move(p));
}

}  // namespace reef
