// Routes the C and C++ allocation functions to the sharded allocator
// (memory/allocator.h). Linked only into binaries that depend on
// //memory:malloc_override, and never into sanitizer builds (the sanitizers
// replace malloc themselves).
#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <new>

#include "memory/allocator.h"

namespace {

bool power_of_two(std::size_t n) { return n != 0 && (n & (n - 1)) == 0; }

void* allocate_or_throw(std::size_t size) {
  for (;;) {
    if (void* p = reef::memory::allocate(size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

void* allocate_aligned_or_throw(std::size_t size, std::align_val_t alignment) {
  for (;;) {
    if (void* p = reef::memory::allocate_aligned(static_cast<std::size_t>(alignment), size)) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) throw std::bad_alloc();
    handler();
  }
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) {
  void* p = reef::memory::allocate(size);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

void free(void* p) { reef::memory::free(p); }

void* calloc(std::size_t count, std::size_t size) {
  std::size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  void* p = reef::memory::allocate(total);
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  std::memset(p, 0, total);
  return p;
}

void* realloc(void* p, std::size_t size) {
  void* q = reef::memory::reallocate(p, size);
  if (q == nullptr && size != 0) errno = ENOMEM;
  return q;
}

void* reallocarray(void* p, std::size_t count, std::size_t size) {
  std::size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc(p, total);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (!power_of_two(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  void* p = reef::memory::allocate_aligned(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* aligned_alloc(std::size_t alignment, std::size_t size) {
  if (!power_of_two(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  void* p = reef::memory::allocate_aligned(alignment, size);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

void* memalign(std::size_t alignment, std::size_t size) { return aligned_alloc(alignment, size); }

void* valloc(std::size_t size) { return aligned_alloc(static_cast<std::size_t>(getpagesize()), size); }

void* pvalloc(std::size_t size) {
  auto page = static_cast<std::size_t>(getpagesize());
  return aligned_alloc(page, (size + page - 1) & ~(page - 1));
}

std::size_t malloc_usable_size(void* p) { return reef::memory::usable_size(p); }

}  // extern "C"

void* operator new(std::size_t size) { return allocate_or_throw(size); }
void* operator new[](std::size_t size) { return allocate_or_throw(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return reef::memory::allocate(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return reef::memory::allocate(size);
}
void* operator new(std::size_t size, std::align_val_t alignment) {
  return allocate_aligned_or_throw(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return allocate_aligned_or_throw(size, alignment);
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return reef::memory::allocate_aligned(static_cast<std::size_t>(alignment), size);
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return reef::memory::allocate_aligned(static_cast<std::size_t>(alignment), size);
}

void operator delete(void* p) noexcept { reef::memory::free(p); }
void operator delete[](void* p) noexcept { reef::memory::free(p); }
void operator delete(void* p, std::size_t) noexcept { reef::memory::free(p); }
void operator delete[](void* p, std::size_t) noexcept { reef::memory::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { reef::memory::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { reef::memory::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { reef::memory::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { reef::memory::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { reef::memory::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { reef::memory::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  reef::memory::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  reef::memory::free(p);
}
