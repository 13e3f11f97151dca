// Tutorial step 3: many things at once, with a bound.
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/coroutine.h"
#include "core/loop.h"
#include "core/reactor.h"
#include "core/semaphore.h"
#include "core/sleep.h"
#include "core/when_all.h"

using namespace std::chrono_literals;

reef::future<int> fetch(int id) {
  co_await reef::sleep(1ms);
  co_return id * 10;
}

// [snippet when_all]
reef::future<int> fetch_two() {
  auto [a, b] = co_await reef::when_all_succeed(fetch(1), fetch(2));  // both at once
  co_return a + b;
}
// [end]

// [snippet bounded]
reef::future<int> fetch_many(std::vector<int> ids) {
  reef::semaphore in_flight(4);  // at most four fetches at a time
  int total = 0;
  co_await reef::parallel_for_each(ids, [&](int id) {
    return reef::with_semaphore(in_flight, 1, [&total, id] {
      return fetch(id).then([&total](int v) { total += v; });
    });
  });
  co_return total;
}
// [end]

int main() {
  reef::reactor r;
  return r.run([]() -> reef::future<int> {
    int two = co_await fetch_two();
    int many = co_await fetch_many({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    std::printf("two %d, many %d\n", two, many);
    co_return two == 30 && many == 550 ? 0 : 1;
  });
}
