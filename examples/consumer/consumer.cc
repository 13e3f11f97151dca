// Uses Reef's futures alone, with a scheduler of its own: no reactor, no
// system library. Prints the result of a short continuation chain.
#include <cstdio>
#include <deque>

#include "core/future.h"

namespace {

class fifo_scheduler final : public reef::scheduler {
 public:
  void schedule(reef::task* t) noexcept override { tasks.push_back(t); }
  void run() {
    while (!tasks.empty()) {
      reef::task* t = tasks.front();
      tasks.pop_front();
      t->run_and_dispose();
    }
  }
  std::deque<reef::task*> tasks;
};

}  // namespace

int main() {
  fifo_scheduler scheduler;
  reef::set_scheduler(&scheduler);
  reef::promise<int> p;
  reef::future<int> f = p.get_future().then([](int v) { return v * 2; }).then([](int v) {
    return v + 1;
  });
  p.set_value(20);
  scheduler.run();
  int result = f.get();
  std::printf("consumer: 20 * 2 + 1 = %d\n", result);
  reef::set_scheduler(nullptr);
  return result == 41 ? 0 : 1;
}
