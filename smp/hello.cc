// The demo behind the README's run command: an app_template program that
// runs continuations, a coroutine, a timer and a blocking call on shard 0,
// then work on every shard (invoke_on_all, map_reduce, a sharded service),
// and prints what it did. Takes every app_template flag (--smp, --cpuset,
// --reactor-backend, ...) and one of its own: --wait-for-signal keeps it
// running until SIGINT/SIGTERM, then runs its stop path.
#include <absl/flags/flag.h>

#include <cstdio>
#include <functional>
#include <memory>
#include <thread>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "core/sleep.h"
#include "memory/allocator.h"
#include "smp/app_template.h"
#include "smp/sharded.h"
#include "smp/smp.h"

ABSL_FLAG(bool, wait_for_signal, false,
          "After the demo, wait for SIGINT or SIGTERM, then stop cleanly");

namespace {

using namespace std::chrono_literals;

// One per shard: counts the greetings it received.
class greeter {
 public:
  explicit greeter(int base) : _count(base) {}
  int greet() { return ++_count; }
  reef::future<> stop() {
    std::printf("sharded: greeter on shard %u stopped after %d greetings\n", reef::this_shard_id(),
                _count);
    return reef::make_ready_future<>();
  }

 private:
  int _count;
};

reef::future<int> add_later(int a, int b) {
  co_await reef::sleep(1ms);
  co_return a + b;
}

reef::future<int> demo() {
  std::printf("reef hello: %u shard(s), reactor backend %s\n", reef::smp::count,
              reef::engine().io().name());

  int doubled = co_await reef::make_ready_future<int>(21).then([](int v) { return v * 2; });
  std::printf("continuation: 21 * 2 = %d\n", doubled);

  int sum = co_await add_later(40, 2);
  std::printf("coroutine: 40 + 2 = %d (after a 1 ms sleep)\n", sum);

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

  auto reactor_thread = std::this_thread::get_id();
  bool elsewhere = co_await reef::run_blocking(
      [reactor_thread] { return std::this_thread::get_id() != reactor_thread; });
  std::printf("run_blocking: ran on another thread: %s\n", elsewhere ? "yes" : "no");

  // Every shard says hello, in the order their answers arrive.
  co_await reef::smp::invoke_on_all([] {
    std::printf("invoke_on_all: hello from shard %u\n", reef::this_shard_id());
  });
  unsigned ids = co_await reef::smp::map_reduce([] { return reef::this_shard_id(); }, 0u,
                                                std::plus<unsigned>());
  std::printf("map_reduce: the shard ids add up to %u\n", ids);

  reef::sharded<greeter> greeters;
  co_await greeters.start(100);
  co_await greeters.invoke_on_all([](greeter& g) { g.greet(); });
  int greetings = co_await greeters.map_reduce([](greeter& g) { return g.greet(); }, 0,
                                              std::plus<int>());
  std::printf("sharded: %d greetings counted over %u shard(s)\n", greetings, reef::smp::count);
  co_await greeters.stop();

  // The sharded allocator (this program links //memory:malloc_override).
  auto probe = std::make_unique<int>(1);
  if (reef::memory::owns(probe.get())) {
    std::size_t in_use = co_await reef::smp::map_reduce(
        [] { return reef::memory::local_stats().bytes_in_use; }, std::size_t{0},
        std::plus<std::size_t>());
    auto s = reef::memory::local_stats();
    std::printf("memory: %zu bytes in use over all shards; shard 0: %llu mallocs, %llu frees, "
                "%llu from other shards, limit %zu MiB\n",
                in_use, static_cast<unsigned long long>(s.mallocs),
                static_cast<unsigned long long>(s.frees),
                static_cast<unsigned long long>(s.cross_shard_frees), s.limit_bytes >> 20);
  }

  if (absl::GetFlag(FLAGS_wait_for_signal)) {
    std::printf("waiting for SIGINT or SIGTERM\n");
    std::fflush(stdout);
    co_await reef::app_template::stop_signal();
    std::printf("stop path: a signal arrived; stopping cleanly\n");
  }
  std::printf("done\n");
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  reef::app_template app({.name = "hello", .description = "Reef's demo."});
  return app.run(argc, argv, demo);
}
