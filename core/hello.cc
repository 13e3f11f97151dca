// The demo behind the README's run command: starts a reactor, runs a few
// continuations, a coroutine, a periodic timer and a blocking call, and
// prints what it did. Takes the reactor flags (e.g. --reactor-backend epoll).
#include <cstdio>
#include <exception>
#include <thread>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "core/reactor_flags.h"
#include "core/sleep.h"

namespace {

using namespace std::chrono_literals;

reef::future<int> add_later(int a, int b) {
  co_await reef::sleep(1ms);
  co_return a + b;
}

reef::future<int> demo() {
  std::printf("reef hello: reactor up on the %s backend\n", reef::engine().io().name());

  // Continuations: each step runs when the previous one's value is ready.
  int doubled = co_await reef::make_ready_future<int>(21).then([](int v) { return v * 2; });
  std::printf("continuation: 21 * 2 = %d\n", doubled);

  // A coroutine that waits on a timer.
  int sum = co_await add_later(40, 2);
  std::printf("coroutine: 40 + 2 = %d (after a 1 ms sleep)\n", sum);

  // A periodic timer, cancelled by its third tick.
  int ticks = 0;
  reef::promise<> third;
  reef::timer<> tick;
  tick.set_callback([&] {
    std::printf("timer: tick %d\n", ++ticks);
    if (ticks == 3) {
      tick.cancel();
      third.set_value();
    }
  });
  tick.arm_periodic(5ms);
  co_await third.get_future();

  // Work the reactor must not wait for runs on a blocking-call thread.
  auto reactor_thread = std::this_thread::get_id();
  bool elsewhere = co_await reef::run_blocking(
      [reactor_thread] { return std::this_thread::get_id() != reactor_thread; });
  std::printf("run_blocking: ran on another thread: %s\n", elsewhere ? "yes" : "no");

  auto stats = reef::engine().stats();
  std::printf("reactor: %lu tasks run, %lu timers fired, %lu sleeps; exiting\n",
              static_cast<unsigned long>(stats.tasks_run),
              static_cast<unsigned long>(stats.timers_fired),
              static_cast<unsigned long>(stats.sleeps));
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  reef::command_line cl = reef::parse_command_line(argc, argv);
  if (cl.help) {
    std::fputs(reef::usage(argv[0]).c_str(), stdout);
    return 0;
  }
  if (!cl.error.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], cl.error.c_str());
    return 2;
  }
  try {
    reef::reactor_options options = reef::reactor_options_from_flags();
    reef::apply_log_flags();
    reef::reactor r(options);
    return r.run(demo);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 2;
  }
}
