// The main of tests that run inside a reactor: GoogleTest's flags first,
// then Reef's (e.g. --reactor-backend=epoll), then one reactor on this
// thread for all the tests.
#include <gtest/gtest.h>

#include <cstdio>
#include <exception>

#include "core/reactor.h"
#include "core/reactor_flags.h"
#include "core/testing/test.h"

namespace reef::testing {

void run_in_reactor(noncopyable_function<future<>()> body) {
  reactor& r = engine();
  std::optional<future<>> result;
  r.schedule(make_task([&] { result.emplace(futurize_invoke(body)); }));
  r.run_until([&] { return result && result->available(); });
  if (result->failed()) {
    std::exception_ptr ex = result->get_exception();
    try {
      std::rethrow_exception(ex);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the test's future failed: " << e.what();
    } catch (...) {
      ADD_FAILURE() << "the test's future failed with an unknown exception";
    }
  }
  // Continuations the test left behind run now, inside this test.
  r.run_pending_tasks();
}

}  // namespace reef::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  reef::command_line cl = reef::parse_command_line(argc, argv);
  if (!cl.error.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], cl.error.c_str());
    return 2;
  }
  reef::reactor_options options;
  try {
    options = reef::reactor_options_from_flags();
    reef::apply_log_flags();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
  // Tests decide what signals do.
  options.stop_on_sigint_sigterm = false;
  reef::reactor r(options);
  std::fprintf(stderr, "reef test: reactor backend %s\n", r.io().name());
  return RUN_ALL_TESTS();
}
