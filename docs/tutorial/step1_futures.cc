// Tutorial step 1: futures and continuations, on one reactor.
#include <cstdio>

#include "core/future.h"
#include "core/reactor.h"

// [snippet first_future]
reef::future<int> answer_later(reef::promise<int>& p) { return p.get_future(); }

reef::future<int> first_future() {
  reef::promise<int> p;
  reef::future<int> f = answer_later(p)
                            .then([](int v) { return v + 1; })   // runs when p is fulfilled
                            .then([](int v) { return v * 2; });
  p.set_value(20);  // the chain runs now: (20 + 1) * 2
  return f;
}
// [end]

int main() {
  // [snippet run_a_reactor]
  reef::reactor r;
  return r.run([]() -> reef::future<int> {
    return first_future().then([](int v) {
      std::printf("first future: %d\n", v);  // 42
      return v == 42 ? 0 : 1;
    });
  });
  // [end]
}
