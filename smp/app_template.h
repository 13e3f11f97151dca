// The application template: what a Reef program's main() is made of.
//
//   int main(int argc, char** argv) {
//     reef::app_template app({.name = "counter", .description = "Counts things."});
//     return app.run(argc, argv, [&]() -> reef::future<int> {
//       co_await start_services();
//       co_await reef::app_template::stop_signal();  // SIGINT or SIGTERM
//       co_await stop_services();
//       co_return 0;
//     });
//   }
//
// run() parses the command line with Abseil flags, Seastar style (dashes:
// --smp, --cpuset, --memory, --reserve-memory, --task-quota-ms,
// --reactor-backend, --blocked-reactor-notify-ms, --poll-mode,
// --default-log-level, --logger-log-level name=level, plus the program's
// own ABSL_FLAGs); --help lists them; a bad or unknown flag stops start-up
// with a message naming it and exit status 2. It then starts the shards
// (smp::run), runs `main` on shard 0 and returns main's exit code.
//
// Stopping: SIGINT and SIGTERM resolve stop_signal() on shard 0, which is
// where the application runs its stop path; if nothing waits for
// stop_signal(), the signal stops the reactor and smp shuts the shards down.
//
// Thread rules: construct and run() on the process's main thread;
// stop_signal() on shard 0 inside run().
#pragma once

#include <string>
#include <vector>

#include "core/function.h"
#include "core/future.h"
#include "smp/smp.h"

namespace reef {

/// What a linked library does on the main thread once the flags are
/// parsed and the shards' CPUs chosen, before any shard starts (DPDK's
/// EAL and ports), and after the shards are gone. `start` throws
/// std::invalid_argument for a bad flag (the program exits with status
/// 2) or another exception saying why the program cannot start (status
/// 1); `stop` (may be null) runs only after its `start` succeeded.
/// Register before main() (a static initializer of the library).
struct startup_step {
  void (*start)(const smp_options& options) = nullptr;
  void (*stop)() = nullptr;
};
void add_startup_step(startup_step step);

class app_template {
 public:
  struct config {
    std::string name = "reef";
    std::string description;
  };

  app_template();
  explicit app_template(config cfg);
  app_template(const app_template&) = delete;
  app_template& operator=(const app_template&) = delete;

  /// See the file comment. Returns main's value, 1 if it failed, 2 for a
  /// bad command line, 0 after --help.
  int run(int argc, char** argv, noncopyable_function<future<int>()> main);
  int run(int argc, char** argv, noncopyable_function<future<>()> main);

  /// The arguments that were not flags.
  const std::vector<std::string>& arguments() const noexcept { return _arguments; }

  /// On shard 0, inside run(): resolves at the first SIGINT or SIGTERM.
  static future<> stop_signal();

 private:
  config _config;
  std::vector<std::string> _arguments;
};

}  // namespace reef
