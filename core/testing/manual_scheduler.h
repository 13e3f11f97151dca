// A scheduler for tests of futures without a reactor: tasks queue up until
// the test calls run(). Installs itself as the thread's scheduler for its
// lifetime. Single-threaded; one per thread at a time.
#pragma once

#include <cstddef>
#include <deque>

#include "core/assert.h"
#include "core/task.h"

namespace reef::testing {

class manual_scheduler final : public scheduler {
 public:
  manual_scheduler() noexcept : _previous(set_scheduler(this)) {}
  ~manual_scheduler() override {
    run();
    set_scheduler(_previous);
  }
  manual_scheduler(const manual_scheduler&) = delete;
  manual_scheduler& operator=(const manual_scheduler&) = delete;

  void schedule(task* t) noexcept override { _tasks.push_back(t); }

  /// Runs queued tasks, including those they queue, until none is left.
  /// Returns how many ran.
  std::size_t run() {
    std::size_t n = 0;
    while (!_tasks.empty()) {
      task* t = _tasks.front();
      _tasks.pop_front();
      t->run_and_dispose();
      ++n;
    }
    return n;
  }

  /// Runs the first queued task only. REQUIRES: pending() > 0.
  void run_one() {
    REEF_ASSERT(!_tasks.empty());
    task* t = _tasks.front();
    _tasks.pop_front();
    t->run_and_dispose();
  }

  std::size_t pending() const noexcept { return _tasks.size(); }

 private:
  scheduler* _previous;
  std::deque<task*> _tasks;
};

}  // namespace reef::testing
