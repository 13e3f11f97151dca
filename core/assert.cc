#include "core/assert.h"

#include <execinfo.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace reef::core_internal {

void assert_failed(const char* expr, const char* file, int line, const char* message) noexcept {
  if (message != nullptr && message[0] != '\0') {
    std::fprintf(stderr, "%s:%d: assertion failed: %s (%s)\n", file, line, expr, message);
  } else {
    std::fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
  }
  std::fflush(stderr);
  void* frames[64];
  int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
  std::abort();
}

}  // namespace reef::core_internal
