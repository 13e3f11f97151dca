// Tutorial step 4: shards, messages between them, and a sharded service.
#include <cstdio>
#include <functional>

#include "core/coroutine.h"
#include "smp/app_template.h"
#include "smp/sharded.h"
#include "smp/smp.h"

// [snippet sharded_service]
// One counter per shard: each shard counts what it saw, nobody locks.
class hit_counter {
 public:
  void hit() { ++_hits; }
  int hits() const { return _hits; }
  reef::future<> stop() { return reef::make_ready_future<>(); }

 private:
  int _hits = 0;
};

reef::future<int> count_everywhere() {
  reef::sharded<hit_counter> counters;
  co_await counters.start();                                   // one per shard
  co_await counters.invoke_on_all([](hit_counter& c) { c.hit(); });
  co_await counters.invoke_on(0, [](hit_counter& c) { c.hit(); });
  int total = co_await counters.map_reduce([](hit_counter& c) { return c.hits(); }, 0, std::plus<int>());
  co_await counters.stop();
  co_return total;  // one per shard, plus one
}
// [end]

int main(int argc, char** argv) {
  // [snippet app_template]
  reef::app_template app({.name = "step4", .description = "Counts hits on every shard."});
  return app.run(argc, argv, []() -> reef::future<int> {
    unsigned where = co_await reef::smp::submit_to(reef::smp::count - 1, [] { return reef::this_shard_id(); });
    int total = co_await count_everywhere();
    std::printf("%u shard(s); the last one is %u; %d hits\n", reef::smp::count, where, total);
    co_return total == static_cast<int>(reef::smp::count) + 1 ? 0 : 1;
  });
  // [end]
}
