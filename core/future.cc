#include "core/future.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

#include "core/log.h"

namespace reef {

broken_promise::broken_promise() : std::logic_error("broken promise") {}

namespace core_internal {

namespace {

logger& future_logger() {
  static logger* l = new logger("future");
  return *l;
}

thread_local std::size_t ignored_count = 0;

}  // namespace

void report_failed_future(const std::exception_ptr& ex) noexcept {
  ++ignored_count;
  try {
    std::string what = "an exception not derived from std::exception";
    try {
      std::rethrow_exception(ex);
    } catch (const std::exception& e) {
      int status = 0;
      char* name = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
      what = format("{} ({})", e.what(), status == 0 && name != nullptr ? name : typeid(e).name());
      std::free(name);
    } catch (...) {
    }
    future_logger().warn("exceptional future ignored: {}", what);
  } catch (...) {
    // Out of memory while reporting: the count above still records it.
  }
}

std::size_t failed_futures_ignored() noexcept { return ignored_count; }

}  // namespace core_internal

}  // namespace reef
