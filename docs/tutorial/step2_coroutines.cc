// Tutorial step 2: coroutines, timers, and failures.
#include <chrono>
#include <cstdio>
#include <stdexcept>

#include "core/coroutine.h"
#include "core/reactor.h"
#include "core/sleep.h"

using namespace std::chrono_literals;

// [snippet coroutine]
reef::future<int> add_later(int a, int b) {  // parameters by value: they live in the frame
  co_await reef::sleep(1ms);                  // the reactor runs other work meanwhile
  co_return a + b;
}
// [end]

// [snippet failures]
reef::future<int> parse_port(std::string text) {
  int port = std::stoi(text);  // throws std::invalid_argument on garbage
  if (port < 0 || port > 65535) throw std::out_of_range("not a port: " + text);
  co_return port;  // a throw inside the coroutine fails its future
}

reef::future<int> port_or_default(std::string text) {
  try {
    co_return co_await parse_port(std::move(text));
  } catch (const std::exception&) {
    co_return 8080;
  }
}
// [end]

int main() {
  reef::reactor r;
  return r.run([]() -> reef::future<int> {
    int sum = co_await add_later(40, 2);
    int good = co_await port_or_default("443");
    int bad = co_await port_or_default("no");
    std::printf("sum %d, ports %d and %d\n", sum, good, bad);
    co_return sum == 42 && good == 443 && bad == 8080 ? 0 : 1;
  });
}
