// Which sanitizer the build runs under, the same way for gcc (which
// defines __SANITIZE_*__) and clang (which answers __has_feature()).
// REEF_ASAN and REEF_TSAN are 1 or undefined.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define REEF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REEF_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define REEF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define REEF_TSAN 1
#endif
#endif
