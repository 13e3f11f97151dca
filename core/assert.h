// Assertions that catch bugs, not bad input.
//
// REEF_ASSERT is always on, release builds included: a broken invariant in a
// framework that owns memory and connections must stop the process with a
// message, not corrupt state. REEF_DEBUG_ASSERT is for checks too costly for
// hot paths in optimized builds (compiled out under NDEBUG). Bad input from
// outside is never an assertion: it is an error value or an exceptional
// future (STYLE.md, Errors). Safe to use on any thread.
#pragma once

namespace reef::core_internal {

/// Prints "file:line: assertion failed: expr (message)" to stderr and aborts.
[[noreturn]] void assert_failed(const char* expr, const char* file, int line,
                                const char* message) noexcept;

}  // namespace reef::core_internal

/// Aborts with a message when `cond` is false. The optional second argument
/// is a string literal explaining the invariant.
#define REEF_ASSERT(cond, ...)                                                       \
  (__builtin_expect(static_cast<bool>(cond), 1)                                      \
       ? static_cast<void>(0)                                                        \
       : ::reef::core_internal::assert_failed(#cond, __FILE__, __LINE__, "" __VA_ARGS__))

#ifdef NDEBUG
#define REEF_DEBUG_ASSERT(cond, ...) static_cast<void>(sizeof(static_cast<bool>(cond)))
#else
#define REEF_DEBUG_ASSERT(cond, ...) REEF_ASSERT(cond, ##__VA_ARGS__)
#endif
