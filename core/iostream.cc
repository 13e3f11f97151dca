#include "core/iostream.h"

#include "core/log.h"

namespace reef::core_internal {

void report_unflushed_output(std::size_t bytes) noexcept {
  static logger* log = new logger("iostream");
  try {
    log->warn("an output_stream was destroyed holding {} unflushed bytes; they are lost (flush() or close() first)",
              bytes);
  } catch (...) {
  }
}

}  // namespace reef::core_internal
