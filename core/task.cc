#include "core/task.h"

#include <cstdio>
#include <cstdlib>

namespace reef::internal {

void no_scheduler() noexcept {
  std::fputs("reef: a task was scheduled on a thread with no scheduler (no running reactor)\n",
             stderr);
  std::abort();
}

}  // namespace reef::internal
