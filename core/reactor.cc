#include "core/reactor.h"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "core/fence.h"
#include "core/internal/blocking_pool.h"
#include "core/internal/epoll_backend.h"
#include "core/internal/preemption_timer.h"
#include "core/internal/stall_detector.h"
#include "core/internal/task_queue.h"
#include "core/log.h"

namespace reef {

namespace {

logger& reactor_logger() {
  static logger* l = new logger("reactor");
  return *l;
}

// Signals reach the one reactor that handles them through these: the
// handler records the signal and wakes that reactor, whose poller then runs
// the application's handler as a task.
constexpr int signals_max = 64;
std::atomic<std::uint64_t> pending_signals{0};
std::atomic<reactor*> signal_reactor{nullptr};

void on_signal(int signo) noexcept {
  int saved_errno = errno;
  pending_signals.fetch_or(std::uint64_t{1} << signo);
  if (reactor* r = signal_reactor.load()) r->wakeup_from_signal();
  errno = saved_errno;
}

std::int64_t steady_now_ns() noexcept { return core_internal::to_timer_ns(steady_clock_type::now()); }

}  // namespace

const char* to_string(reactor_backend backend) noexcept {
  switch (backend) {
    case reactor_backend::io_uring: return "io_uring";
    case reactor_backend::epoll: return "epoll";
  }
  return "unknown";
}

struct reactor::signal_slot {
  int signo = 0;
  noncopyable_function<void()> handler;
  struct sigaction previous {};
};

// Delivers the process's signals, on the one reactor that handles them:
// another reactor must not take the pending bits it has no handler for.
class reactor::signal_poller final : public poller {
 public:
  explicit signal_poller(reactor& r) : _reactor(r) {}
  bool poll() noexcept override {
    if (pending_signals.load(std::memory_order_relaxed) == 0 || !owns_signals()) return false;
    _reactor.run_signal_handlers(pending_signals.exchange(0));
    return true;
  }
  bool has_work() noexcept override { return pending_signals.load() != 0 && owns_signals(); }

 private:
  bool owns_signals() const noexcept {
    return signal_reactor.load(std::memory_order_relaxed) == &_reactor;
  }

 private:
  reactor& _reactor;
};

class reactor::blocking_poller final : public poller {
 public:
  explicit blocking_poller(core_internal::blocking_pool& pool) : _pool(pool) {}
  bool poll() noexcept override { return _pool.drain_completions() > 0; }
  bool has_work() noexcept override { return _pool.has_completions(); }

 private:
  core_internal::blocking_pool& _pool;
};

reactor::reactor(reactor_options options)
    : _options(options), _tasks(std::make_unique<core_internal::run_queues>()) {
  if (core_internal::this_thread_reactor != nullptr) {
    throw std::logic_error("this thread already has a reactor");
  }
  REEF_ASSERT(_options.task_quota.count() > 0, "task quota must be positive");
  _blocking = std::make_unique<core_internal::blocking_pool>(_options.blocking_threads_max,
                                                        [this] { wakeup(); });
  if (_options.backend == reactor_backend::io_uring) {
    if (auto make_io_uring = core_internal::io_uring_backend_factory()) {
      try {
        _io = make_io_uring();
      } catch (const std::system_error& e) {
        reactor_logger().warn("io_uring unavailable ({}); falling back to the epoll backend", e.what());
      }
    } else {
      reactor_logger().warn(
          "io_uring is not linked into this program (depend on //core:io_uring_backend); using the epoll backend");
    }
    if (!_io) _options.backend = reactor_backend::epoll;
  }
  if (!_io) _io = std::make_unique<core_internal::epoll_backend>(*_blocking);
  core_internal::log_shard_id = _options.shard_id;
  _preemption = std::make_unique<core_internal::preemption_timer>(_options.task_quota, &core_internal::preempt_requested);
  _stall_detector = std::make_unique<core_internal::stall_detector>(_options.stall_threshold, _options.shard_id);
  _preemption->refresh_mask();  // the stall detector let its signal in
  _signal_poller = std::make_unique<signal_poller>(*this);
  _blocking_poller = std::make_unique<blocking_poller>(*_blocking);
  _pollers.push_back(_signal_poller.get());
  _pollers.push_back(_blocking_poller.get());
  register_metrics();  // (before the thread's globals point here: it may throw)
  core_internal::this_thread_reactor = this;
  core_internal::current_timer_queue = &_timers;
  _previous_scheduler = set_scheduler(this);
  core_internal::scheduling_group_idle = &scheduling_group_idle_here;
  core_internal::scheduling_groups_changed = &scheduling_groups_changed_here;
  lowres_clock::update();
}

reactor::~reactor() {
  while (!_at_destroy.empty()) {
    auto f = std::move(_at_destroy.back());
    _at_destroy.pop_back();
    f();
  }
  // Whatever is in flight completes (cancelled), and the continuations that
  // are left run, so that nothing they own leaks.
  _io->cancel_all();
  run_pending_tasks();
  while (_blocking->outstanding() > 0) {
    if (_blocking->drain_completions() == 0) {
      _sleeping.store(true);
      if (!_blocking->has_completions()) _io->wait(std::nullopt, _preemption->mask_while_waiting());
      _sleeping.store(false);
    }
    run_pending_tasks();
  }
  for (auto& slot : _signals) sigaction(slot->signo, &slot->previous, nullptr);
  reactor* self = this;
  signal_reactor.compare_exchange_strong(self, nullptr);
  _stall_detector.reset();
  _preemption.reset();
  // The pool's threads call wakeup(), which uses the backend: join them
  // first.
  _blocking.reset();
  _io.reset();
  set_scheduler(_previous_scheduler);
  core_internal::scheduling_group_idle = nullptr;
  core_internal::scheduling_groups_changed = nullptr;
  core_internal::current_timer_queue = nullptr;
  core_internal::this_thread_reactor = nullptr;
  core_internal::preempt_requested.store(false, std::memory_order_relaxed);
}

void reactor::schedule(task* t) noexcept { _tasks->push_back(t); }

std::size_t reactor::tasks_queued() const noexcept { return _tasks->size(); }

void reactor::submit_blocking(core_internal::blocking_work* w) { _blocking->submit(w); }

void reactor::at_destroy(noncopyable_function<void()> f) { _at_destroy.push_back(std::move(f)); }

void reactor::enter_loop() noexcept {
  // Time passed since the loop last ran: its first iteration reads the
  // clock.
  _clock_set_by_tasks = false;
  _last_iteration_did_work = true;
}

int reactor::run() {
  install_default_signal_handlers();
  enter_loop();
  while (!_stopping) {
    if (_stop_requested.load(std::memory_order_relaxed)) break;
    run_one_iteration(true);
  }
  _stopping = false;
  _stop_requested.store(false, std::memory_order_relaxed);
  // The thread leaves the loop (it may block elsewhere, or go on without
  // a reactor): no preemption signal follows it.
  _preemption->disarm();
  return _exit_code;
}

void reactor::run_until(const noncopyable_function<bool()>& done) {
  enter_loop();
  while (!done()) run_one_iteration(true);
  _preemption->disarm();
}

void reactor::run_pending_tasks() {
  enter_loop();
  while (!_tasks->empty()) run_one_iteration(false);
  _preemption->disarm();
}

void reactor::exit(int exit_code) noexcept {
  _exit_code = exit_code;
  _stopping = true;
}

void reactor::request_stop() noexcept {
  _stop_requested.store(true);
  wakeup();
}

void reactor::wakeup() noexcept {
  // On the reactor's own thread there is nobody to wake: that code runs
  // between the loop's polls (tasks, pollers, or completions that the
  // backend's wait() reaps while _sleeping still holds), and the loop
  // polls again before it sleeps. Without this, every arrival reaped
  // after a sleep would cost a write to the wakeup descriptor. A signal
  // handler, which can interrupt the thread between its last look and
  // its wait, uses wakeup_from_signal().
  if (core_internal::this_thread_reactor == this) return;
  wakeup_from_signal();
}

void reactor::wakeup_from_signal() noexcept {
  if (_sleeping.load()) _io->wakeup();
}

void reactor::on_main_failed(std::exception_ptr ex) noexcept {
  try {
    std::rethrow_exception(ex);
  } catch (const std::exception& e) {
    reactor_logger().error("main failed: {}", e.what());
  } catch (...) {
    reactor_logger().error("main failed with an unknown exception");
  }
  exit(1);
}

bool reactor::poll_once() noexcept {
  bool did_work = _io->reap();
  for (std::size_t i = 0; i < _pollers.size(); ++i) did_work |= _pollers[i]->poll();
  return did_work;
}

bool reactor::run_tasks() noexcept {
  core_internal::run_queues& queues = *_tasks;
  if (queues.empty()) return false;
  if (!_preemption->armed()) _preemption->arm();  // after a park (see sleep())
  _last_batch_time = lowres_clock::now();
  core_internal::preempt_requested.store(false, std::memory_order_relaxed);
  // The group with the least virtual runtime runs until its queue empties
  // or the quota is used; then the next, while the quota lasts. One clock
  // read per group: the first starts at the loop's clock when that is
  // fresh (read this iteration, or at the end of the last batch: the
  // group is charged the polls in between), and the last batch's end is
  // the loop's clock for the next iteration.
  std::int64_t start = _last_iteration_did_work ? core_internal::to_timer_ns(lowres_clock::now()) : steady_now_ns();
  std::uint64_t ran_total = 0;
  const std::uint8_t outer_group = core_internal::current_scheduling_group;
  do {
    const unsigned id = queues.pick();
    core_internal::group_run_queue& group = queues.groups[id];
    // (Tasks queued while the reactor slept carry the time it fell asleep.)
    const std::int64_t ready = std::max(group.ready_since_ns, _last_wake_ns);
    if (start > ready) group.wait_ns += static_cast<std::uint64_t>(start - ready);
    core_internal::current_scheduling_group = static_cast<std::uint8_t>(id);
    std::uint64_t ran = 0;
    do {
      task* t = group.tasks.pop_front();
      t->run_and_dispose();
      ++ran;
    } while (!group.tasks.empty() && !need_preempt());
    const std::int64_t end = steady_now_ns();
    const std::int64_t used = end > start ? end - start : 0;
    queues.charge(id, used, core_internal::scheduling_group_shares(id));
    group.tasks_run += ran;
    if (group.tasks.empty()) {
      queues.active &= ~(1u << id);
    } else {
      group.ready_since_ns = end;
    }
    ran_total += ran;
    start = end;
  } while (!queues.empty() && !need_preempt());
  core_internal::current_scheduling_group = outer_group;
  lowres_clock::update(lowres_clock::time_point(lowres_clock::duration(start)));
  _clock_set_by_tasks = true;
  _stats.tasks_run += ran_total;
  return true;
}

bool reactor::run_one_iteration(bool may_sleep) {
  ++_stats.iterations;
  if (core_internal::scheduling_groups_generation() != _groups_generation_seen) sync_scheduling_groups();
  // Timers and pollers run user code too (smp runs messages from its
  // poller): the stall detector watches every iteration.
  _stall_detector->on_busy();
  _stall_detector->on_iteration();
  // Reading the clock costs about as much as an empty polling iteration:
  // read it when timers wait, after an iteration that did work, and every
  // 64th idle one (a polling loop then stays fast, and the low-resolution
  // clock stays within 64 empty iterations of the truth); not when the
  // last task batch's end set it (see run_tasks()).
  if (_timers.size() > 0 || _last_iteration_did_work || (++_idle_iterations & 63) == 0) {
    if (!_clock_set_by_tasks) lowres_clock::update();
  }
  _clock_set_by_tasks = false;
  bool did_work = false;
  if (_timers.size() > 0) {
    std::size_t fired = _timers.expire(core_internal::to_timer_ns(lowres_clock::now()));
    _stats.timers_fired += fired;
    did_work |= fired > 0;
  }
  did_work |= poll_once();
  did_work |= run_tasks();
  _io->flush();
  _last_iteration_did_work = did_work;
  if (_options.idle_poll_time.count() > 0 && !_options.poll_mode) {
    // The reactor's clock, no read of our own: it was read this iteration
    // after one that did work, and at least every 64th idle one, so the
    // poll lasts idle_poll_time plus at most 64 empty iterations.
    const auto now = lowres_clock::now();
    if (did_work) {
      _last_work_time = now;
    } else if (now - _last_work_time < _options.idle_poll_time) {
      return did_work;  // keep polling a little before sleeping
    }
  }
  if (!did_work && may_sleep && !_stopping && !_options.poll_mode) {
    sleep();
    _last_iteration_did_work = true;  // time passed: read the clock next
  }
  return did_work;
}

void reactor::sleep() noexcept {
  _stall_detector->on_idle();
  // Announce the sleep before the last look, so that a thread that adds
  // work after the look sees _sleeping and wakes us.
  _sleeping.store(true);
  store_load_fence();
  bool work = _stop_requested.load();
  for (poller* p : _pollers) {
    if (work) break;
    work = p->has_work();
  }
  if (!work) {
    ++_stats.sleeps;
    auto deadline = _timers.next_deadline();
    if (_preemption->armed()) {
      // The preemption signal stays blocked while we wait (the wait's own
      // mask); after park_after without a task batch the timer stops, and
      // until then we wake at that point to stop it.
      const auto park_at = _last_batch_time + core_internal::preemption_timer::park_after;
      if (lowres_clock::now() >= park_at) {
        _preemption->disarm();
      } else {
        const auto park_ns = core_internal::to_timer_ns(park_at);
        if (!deadline || *deadline > park_ns) deadline = park_ns;
      }
    }
    // (Two clock reads per sleep, for the utilization metric: a sleep
    // costs far more.)
    const auto began = std::chrono::steady_clock::now();
    _io->wait(deadline, _preemption->mask_while_waiting());
    const auto woke = std::chrono::steady_clock::now();
    _stats.sleep_ns +=
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(woke - began).count());
    _last_wake_ns = core_internal::to_timer_ns(woke);
  }
  _sleeping.store(false, std::memory_order_relaxed);
}

void reactor::register_metrics() {
  auto seconds = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e9; };
  _metrics.add_group(
      "reactor",
      {
          metrics::make_counter("tasks_run_total", "Tasks run.", _stats.tasks_run),
          metrics::make_gauge("tasks_pending", "Tasks queued to run.",
                              [this] { return static_cast<double>(_tasks->size()); }),
          metrics::make_counter("polls_total", "Loop iterations (each polls for I/O and messages).",
                                _stats.iterations),
          metrics::make_counter("sleeps_total", "Times the reactor slept in the kernel for lack of work.",
                                _stats.sleeps),
          metrics::make_counter("sleep_seconds_total", "Seconds asleep in the kernel.",
                                [this, seconds] { return seconds(_stats.sleep_ns); }),
          // (Utilization is 1 - rate(sleep_seconds_total): a scrape-side
          // rate, so that two scrapers do not disturb each other.)
          metrics::make_counter("awake_seconds_total", "Seconds since the reactor was made, less those asleep.",
                                [this, seconds] {
                                  const auto lived = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      std::chrono::steady_clock::now() - _created);
                                  const auto lived_ns = static_cast<std::uint64_t>(lived.count());
                                  return seconds(lived_ns > _stats.sleep_ns ? lived_ns - _stats.sleep_ns : 0);
                                }),
          metrics::make_counter("timers_fired_total", "Timers that fired.", _stats.timers_fired),
          metrics::make_gauge("timers_pending", "Timers armed.", [this] { return static_cast<double>(_timers.size()); }),
          metrics::make_counter("stalls_total", "Stalls the stall detector reported.",
                                [this] { return static_cast<double>(_stall_detector->stalls_reported()); }),
          metrics::make_counter("preemptions_total", "Preemption signals (task quota ticks).",
                                [this] { return static_cast<double>(_preemption->ticks()); }),
          metrics::make_counter("signals_total", "Signals delivered to handlers.", _stats.signals_delivered),
          metrics::make_gauge("io_in_flight", "I/O operations submitted to the backend and not yet complete.",
                              [this] { return static_cast<double>(_io->in_flight()); }),
          metrics::make_counter("io_submissions_total", "I/O operations submitted to the backend.",
                                [this] { return static_cast<double>(_io->operations_submitted()); }),
          metrics::make_counter("io_completions_total", "I/O operations the backend completed.",
                                [this] { return static_cast<double>(_io->operations_completed()); }),
      });
}

void reactor::sync_scheduling_groups() noexcept {
  _groups_generation_seen = core_internal::scheduling_groups_generation();
  std::vector<core_internal::scheduling_group_info> live;
  try {
    live = core_internal::live_scheduling_groups();
  } catch (const std::exception& e) {
    reactor_logger().error("scheduling group metrics not updated: {}", e.what());
    return;
  }
  std::array<const core_internal::scheduling_group_info*, scheduling_group::groups_max> by_id{};
  for (const auto& g : live) by_id[g.id] = &g;
  // First every id whose group changed lets its metrics go (a new group
  // may have a name that another id's old group had), then the new ones
  // register.
  std::array<bool, scheduling_group::groups_max> changed{};
  for (unsigned id = 0; id < scheduling_group::groups_max; ++id) {
    const std::uint32_t incarnation = by_id[id] != nullptr ? by_id[id]->incarnation : 0;
    if (incarnation == _group_incarnation_seen[id]) continue;
    changed[id] = true;
    _group_incarnation_seen[id] = incarnation;
    _group_metrics[id].clear();
    if (id != 0 && by_id[id] != nullptr) {
      // A new group in this id: its counts start at zero, and it owes
      // nothing for an old group's time (a destroyed group's tasks still
      // queued run on in it).
      auto& group = _tasks->groups[id];
      group.runtime_ns = group.wait_ns = group.tasks_run = 0;
      group.vruntime = _tasks->min_vruntime;
    }
  }
  for (unsigned id = 0; id < scheduling_group::groups_max; ++id) {
    if (!changed[id] || by_id[id] == nullptr) continue;
    try {
      const metrics::labels labels{{"group", by_id[id]->name}};
      auto& group = _tasks->groups[id];
      auto seconds = [](const std::uint64_t& ns) { return [&ns] { return static_cast<double>(ns) / 1e9; }; };
      _group_metrics[id].add_group(
          "scheduling_group",
          {
              metrics::make_counter("runtime_seconds_total",
                                    "Seconds the group's tasks ran (wall-clock time of its task batches).",
                                    seconds(group.runtime_ns), labels),
              metrics::make_counter("wait_seconds_total",
                                    "Seconds the group had tasks queued while others (or no batch) ran.",
                                    seconds(group.wait_ns), labels),
              metrics::make_counter("tasks_run_total", "Tasks of the group run.", group.tasks_run, labels),
              metrics::make_gauge("tasks_pending", "Tasks of the group queued to run.",
                                  [&group] { return static_cast<double>(group.tasks.size()); }, labels),
              metrics::make_gauge("shares", "The group's shares of the CPU.",
                                  [id] { return static_cast<double>(core_internal::scheduling_group_shares(id)); },
                                  labels),
          });
    } catch (const std::exception& e) {
      // (Not tried again while the group lives.)
      reactor_logger().error("metrics of scheduling group \"{}\" not registered: {}", by_id[id]->name, e.what());
    }
  }
}

void reactor::scheduling_groups_changed_here() noexcept {
  if (reactor* r = core_internal::this_thread_reactor) r->sync_scheduling_groups();
}

bool reactor::scheduling_group_idle_here(unsigned id) noexcept {
  reactor* r = core_internal::this_thread_reactor;
  if (r == nullptr) return true;
  return core_internal::current_scheduling_group != id && r->_tasks->groups[id].tasks.empty();
}

reactor::scheduling_group_stats reactor::stats(scheduling_group sg) const noexcept {
  const auto& group = _tasks->groups[sg.id()];
  scheduling_group_stats s;
  s.runtime = std::chrono::nanoseconds(group.runtime_ns);
  s.wait_time = std::chrono::nanoseconds(group.wait_ns);
  s.tasks_run = group.tasks_run;
  s.tasks_queued = group.tasks.size();
  return s;
}

reactor_stats reactor::stats() const noexcept {
  reactor_stats s = _stats;
  s.stalls_reported = _stall_detector->stalls_reported();
  s.preemption_ticks = _preemption->ticks();
  return s;
}

void reactor::add_poller(poller* p) {
  for (poller* q : _pollers) REEF_ASSERT(q != p, "poller registered twice");
  _pollers.push_back(p);
}

void reactor::remove_poller(poller* p) noexcept {
  for (std::size_t i = 0; i < _pollers.size(); ++i) {
    if (_pollers[i] == p) {
      _pollers.erase(_pollers.begin() + static_cast<std::ptrdiff_t>(i));
      return;
    }
  }
}

std::array<int, 2> reactor_signals() noexcept {
  return {core_internal::stall_detector::backtrace_signal(), core_internal::preemption_timer::signal_number()};
}

void reactor::handle_signal(int signo, noncopyable_function<void()> handler) {
  if (signo <= 0 || signo >= signals_max || signo == SIGKILL || signo == SIGSTOP ||
      signo == core_internal::stall_detector::backtrace_signal() ||
      signo == core_internal::preemption_timer::signal_number()) {
    throw std::invalid_argument(format("handle_signal: signal {} cannot be handled", signo));
  }
  reactor* expected = nullptr;
  if (!signal_reactor.compare_exchange_strong(expected, this) && expected != this) {
    throw std::logic_error("handle_signal: another reactor handles this process's signals");
  }
  for (auto& slot : _signals) {
    if (slot->signo == signo) {
      slot->handler = std::move(handler);
      return;
    }
  }
  auto slot = std::make_unique<signal_slot>();
  slot->signo = signo;
  slot->handler = std::move(handler);
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  if (sigaction(signo, &sa, &slot->previous) < 0) {
    throw std::system_error(errno, std::system_category(), "sigaction");
  }
  _signals.push_back(std::move(slot));
  // The signal may be blocked on this thread (inherited mask): let it in.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  _preemption->refresh_mask();  // waits let it in too
}

void reactor::install_default_signal_handlers() {
  if (!_options.stop_on_sigint_sigterm) return;
  for (int signo : {SIGINT, SIGTERM}) {
    bool handled = false;
    for (auto& slot : _signals) handled |= slot->signo == signo;
    if (handled) continue;
    reactor* owner = signal_reactor.load();
    if (owner != nullptr && owner != this) return;  // another reactor owns signals
    handle_signal(signo, [this, signo] {
      reactor_logger().info("signal {} received: stopping", signo);
      stop();
    });
  }
}

void reactor::run_signal_handlers(std::uint64_t pending) noexcept {
  for (auto& slot : _signals) {
    if (!(pending & (std::uint64_t{1} << slot->signo))) continue;
    ++_stats.signals_delivered;
    signal_slot* s = slot.get();
    try {
      schedule(make_task([s] { s->handler(); }));
    } catch (const std::bad_alloc&) {
      s->handler();
    }
  }
}

}  // namespace reef
